"""Fixtures for the API-judge tests: a real llama.cpp OpenAI-compatible server and small real instances
(helpers in tests/support/api_judge.py).

The server runs SmolLM2-135M (judges near random: these tests check mechanics, not verdict quality) with an
API key, so the tests also prove the client sends the key it reads from the environment.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardneg.data.io import write_instances
from support.api_judge import KEY_ENV, MODEL, small_instances


def _need_server_packages() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'hardneg[local]')")
    for name in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        pytest.importorskip(name, reason=f"{name} is missing: pip install 'hardneg[api]'")


@pytest.fixture(scope="session")
def api_key() -> str:
    return "sk-hardneg-test-" + secrets.token_hex(12)


@pytest.fixture(scope="session")
def llama_server(api_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """llama-cpp-python's server on a free 127.0.0.1 port, requiring `api_key`."""
    _need_server_packages()
    from support import LlamaServer

    log = tmp_path_factory.mktemp("llama") / "server.log"
    # one thread: the CI machine is small and shared; more threads only contend
    with LlamaServer("smollm2-135m", api_key=api_key, model_alias=MODEL, n_ctx=2048, n_threads=1, log_path=log) as srv:
        yield srv


@pytest.fixture()
def key_env(api_key: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, api_key)
    return KEY_ENV


@pytest.fixture()
def tiny_file(rlhn_stage1: Path, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    write_instances(path, small_instances(rlhn_stage1, 4))
    return path
