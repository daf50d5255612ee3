"""Exact dense search: inner-product top-k with FAISS, one query block at a time."""

from __future__ import annotations

import numpy as np

from hardneg.progress import StageProgress


def dense_search(
    query_emb: np.ndarray,
    corpus_emb: np.ndarray,
    k: int,
    *,
    block_size: int = 1024,
    progress: StageProgress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k (cosine on normalised embeddings): ``(scores, indices)``, each ``(nq, k')``.

    ``k' = min(k, len(corpus_emb))``. FAISS's flat inner-product search runs one block of `block_size`
    queries at a time and keeps top-k only (`faiss.knn`, the IndexFlatIP kernel without copying the corpus
    into an index), so memory is ``block_size x k`` per block, never queries x corpus.
    """
    import faiss

    k = min(k, corpus_emb.shape[0])
    nq = query_emb.shape[0]
    scores = np.empty((nq, k), dtype=np.float32)
    indices = np.empty((nq, k), dtype=np.int64)
    xb = np.ascontiguousarray(corpus_emb, dtype=np.float32)
    for start in range(0, nq, block_size):
        xq = np.ascontiguousarray(query_emb[start : start + block_size], dtype=np.float32)
        s, i = faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
        scores[start : start + len(xq)] = s
        indices[start : start + len(xq)] = i
        if progress:
            progress("search", min(start + block_size, nq), nq)
    return scores, indices
