"""Corpus embeddings: the cache file, its key and a damaged cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardneg.retrieval import embedding_cache_path, encode_texts, load_encoder


@pytest.mark.slow
def test_encode_cache_hit_and_damaged_cache(tmp_path: Path) -> None:
    model = load_encoder()
    texts = ["first text", "second, longer text about retrieval", "third"]
    first = encode_texts(model, texts, cache_dir=tmp_path, prefix="q: ")
    path = embedding_cache_path(model, texts, prefix="q: ", cache_dir=tmp_path)
    assert path.is_file()
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    # Prove the second call reads the file: put known values there.
    marker = np.full_like(first, 0.5)
    np.save(path, marker)
    assert np.array_equal(encode_texts(model, texts, cache_dir=tmp_path, prefix="q: "), marker)
    # Another prefix or max length is another key.
    assert embedding_cache_path(model, texts, prefix="", cache_dir=tmp_path) != path
    assert embedding_cache_path(model, texts, prefix="q: ", max_length=32, cache_dir=tmp_path) != path
    # A damaged file (wrong shape) is recomputed.
    np.save(path, np.zeros((1, 3), dtype=np.float32))
    np.testing.assert_allclose(encode_texts(model, texts, cache_dir=tmp_path, prefix="q: "), first, atol=1e-5)
