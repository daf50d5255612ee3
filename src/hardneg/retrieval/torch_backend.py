"""sentence-transformers models on torch, loaded offline (the default embedder is the packaged MiniLM)."""

from __future__ import annotations

import os
from typing import Any

from hardneg.models import ModelError, minilm_path
from hardneg.retrieval.keys import path_key


def load_sentence_transformer(
    model_name_or_path: str | os.PathLike[str] | None = None, *, device: str | None = None
) -> Any:
    """A SentenceTransformer (default: the embedded all-MiniLM-L6-v2), on ``cuda`` when available, else ``cpu``.

    It carries its cache key (`_hardneg_key`). Raises `ModelError` when the model cannot be found locally:
    nothing is downloaded.
    """
    # Nothing may be downloaded here: a missing model must fail fast, not hang on the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(
            f"encoding with a sentence-transformers model needs torch and sentence-transformers ({exc.name} is "
            "missing): pip install 'hardneg[train]' (or 'hardneg[local]' for the offline judges)"
        ) from None

    name = str(model_name_or_path) if model_name_or_path else minilm_path()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = SentenceTransformer(name, device=device)
    except Exception as exc:  # ST raises OSError / ValueError / HF errors for a missing model
        raise ModelError(f"cannot load sentence-transformers model {name!r} offline: {exc}") from exc
    model._hardneg_key = path_key(name)
    return model
