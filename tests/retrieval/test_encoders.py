"""The encoder backend: torch, onnx, or auto (ONNX on a CPU when it is installed)."""

from __future__ import annotations

import pytest

from hardneg.errors import ConfigError
from hardneg.mining import MineConfig
from hardneg.retrieval.encoders import resolve_backend

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


def test_resolve_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("torch") == "torch"
    assert resolve_backend("onnx", "cuda") == "onnx"
    assert resolve_backend("auto", "cuda") == "torch"  # ONNX here is CPU only: a GPU is faster with torch
    assert resolve_backend("auto", "cpu") == "onnx"
    monkeypatch.setattr("hardneg.retrieval.onnx.onnx_runtime_installed", lambda: False)
    assert resolve_backend("auto", "cpu") == "torch"
    # the library names its parameter; the CLI maps it to --backend (tests/cli)
    with pytest.raises(ConfigError, match=r"^backend: ") as raised:
        resolve_backend("tensorflow")
    assert raised.value.param == "backend"
    with pytest.raises(ConfigError, match=r"^backend: "):
        MineConfig(method="dense", backend="tensorflow").check()
