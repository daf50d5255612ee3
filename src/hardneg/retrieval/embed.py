"""Embedding texts with an encoder, cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.data.atomic import atomic_path
from hardneg.models import cache_dir as default_cache_dir
from hardneg.progress import StageProgress
from hardneg.retrieval.encoders import load_encoder
from hardneg.retrieval.keys import key_slug, model_key, texts_digest

# Fills `out` with the embeddings of texts in place of the local forward passes (see `encode_texts`).
Compute = Callable[..., None]
# Texts are encoded in chunks of this many batches, so memory stays flat and progress is reported often: four
# batches of 64 passages of 256 tokens take about ten seconds on two CPU cores (MiniLM).
_BATCHES_PER_CHUNK = 4


def embedding_cache_path(
    model: Any,
    texts: Sequence[str],
    *,
    prefix: str = "",
    max_length: int | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Where `encode_texts` keeps the embeddings of `texts` (keyed by model, texts, prefix and max length)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "embeddings"
    key = json.dumps(
        {"model": model_key(model), "texts": texts_digest(texts), "prefix": prefix, "max_length": max_length, "v": 1}
    )
    return folder / f"{key_slug(model_key(model))}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"


def encode_texts(
    model: Any,
    texts: Sequence[str],
    *,
    prefix: str = "",
    max_length: int | None = None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: StageProgress | None = None,
    stage: str = "encode",
    compute: Compute | None = None,
) -> np.ndarray:
    """Embed `texts` (each prefixed with `prefix`) as a float32, L2-normalised ``(len(texts), dim)`` array.

    `model` is a SentenceTransformer or a name/path for `load_encoder`. `max_length` caps the token length
    (the model's own limit when None). Results are cached on disk under `cache_dir` (default
    ``hardneg.models.cache_dir()/embeddings``), keyed by model, the texts' hash, prefix and max length;
    a cache hit reads the file instead of running the model. Texts are encoded longest-first in chunks
    written into one preallocated array, so memory is one copy of the output plus one chunk.

    `compute` replaces the local forward passes on a cache miss (`hardneg.retrieval.sharded`: Ray actors): it is
    called as ``compute(model, texts, out, prefix=, max_length=, batch_size=, progress=, stage=)`` and fills
    `out`; the cache is read and written here either way.
    """
    if isinstance(model, (str, os.PathLike)) or model is None:
        model = load_encoder(model)
    path = embedding_cache_path(model, texts, prefix=prefix, max_length=max_length, cache_dir=cache_dir)
    cached = read_cached(path, len(texts)) if use_cache else None
    if cached is not None:
        if progress:
            progress(stage, len(texts), len(texts))
        return cached

    out = np.empty((len(texts), embedding_dimension(model)), dtype=np.float32)
    if compute is not None:
        if len(texts):
            compute(
                model, texts, out, prefix=prefix, max_length=max_length, batch_size=batch_size, progress=progress,
                stage=stage,
            )  # fmt: skip
        if use_cache:
            write_cached(path, out)
        return out
    order = longest_first(texts)
    chunk = max(1, batch_size * _BATCHES_PER_CHUNK)
    old_max = model.max_seq_length
    if max_length is not None:
        model.max_seq_length = max_length
    if progress:
        progress(stage, 0, len(order))  # the stage starts now, before its first (longest, slowest) chunk
    try:
        for start in range(0, len(order), chunk):
            ids = order[start : start + chunk]
            emb = model.encode(
                [prefix + texts[i] for i in ids],
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            out[ids] = emb
            if progress:
                progress(stage, min(start + chunk, len(order)), len(order))
    finally:
        model.max_seq_length = old_max
    if use_cache:
        write_cached(path, out)
    return out


def read_cached(path: Path, rows: int) -> np.ndarray | None:
    """The cached embeddings at `path` when the file is there, whole, float32 and `rows` long; else None (a damaged
    cache file is recomputed, not trusted)."""
    if not path.is_file():
        return None
    try:
        cached = np.load(path)
    except (OSError, ValueError):
        return None
    return cached if cached.shape[0] == rows and cached.dtype == np.float32 else None


def write_cached(path: Path, embeddings: np.ndarray) -> None:
    """Store `embeddings` at `path` (atomically: a reader never sees half a file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, embeddings)


def embedding_dimension(model: Any) -> int:
    # get_embedding_dimension is the sentence-transformers >= 5 name; older releases only have the long one.
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get_dim())


def longest_first(texts: Sequence[str]) -> list[int]:
    """Row order for encoding: longest first, so batches of similar length waste little padding and the peak comes
    early."""
    return sorted(range(len(texts)), key=lambda i: -len(texts[i]))
