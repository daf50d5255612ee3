"""sentence-transformers models on torch, loaded offline (the default embedder is the packaged MiniLM)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardneg.models import ModelError, minilm_path
from hardneg.retrieval.keys import path_key


def _load_offline(load: Callable[[], Any], task: str, kind: str, name: str) -> Any:
    """`load()` with the hub switched off (nothing may be downloaded here: a missing model must fail fast, not
    hang on the hub). A missing torch / sentence-transformers is a `ModelError` naming the `task` that needs
    them; a model that cannot be loaded one naming its `kind` and `name`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        return load()
    except ImportError as exc:
        raise ModelError(
            f"{task} needs torch and sentence-transformers ({exc.name} is missing): pip install 'hardneg[train]' "
            "(or 'hardneg[local]' for the offline judges)"
        ) from None
    except ModelError:
        raise
    except Exception as exc:  # ST raises OSError / ValueError / HF errors for a missing model
        raise ModelError(f"cannot load {kind} {name!r} offline: {exc}") from exc


def load_sentence_transformer(
    model_name_or_path: str | os.PathLike[str] | None = None, *, device: str | None = None
) -> Any:
    """A SentenceTransformer (default: the embedded all-MiniLM-L6-v2), on ``cuda`` when available, else ``cpu``.

    It carries its cache key (`_hardneg_key`). Raises `ModelError` when the model cannot be found locally:
    nothing is downloaded.
    """
    name = str(model_name_or_path) if model_name_or_path else minilm_path()

    def load() -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return SentenceTransformer(name, device=chosen)

    model = _load_offline(load, "encoding with a sentence-transformers model", "sentence-transformers model", name)
    model._hardneg_key = path_key(name)
    return model


def load_torch_cross_encoder(
    model_name_or_path: str | os.PathLike[str], *, device: str | None = None, max_length: int | None = None
) -> Any:
    """A sentence-transformers CrossEncoder from a local folder, offline; `ModelError` when it cannot be loaded."""
    name = str(model_name_or_path)

    def load() -> Any:
        from sentence_transformers.cross_encoder import CrossEncoder

        if not Path(name).is_dir():
            raise ModelError(f"no such cross-encoder folder: {name} (e.g. one from `hardneg train reranker`)")
        return CrossEncoder(name, device=device, max_length=max_length)

    return _load_offline(load, "scoring with a cross-encoder", "cross-encoder", name)
