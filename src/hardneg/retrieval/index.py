"""Dense indexes over corpus embeddings: exact (``flat``) or approximate (FAISS ``ivf``, ``hnsw``) inner product.

`flat` is the exact search of `hardneg.retrieval.dense` (no index is built; the right choice up to a few hundred
thousand passages). For corpora of millions the approximate indexes trade a little recall for much less search
time:

- ``ivf``: an inverted file (`faiss.IndexIVFFlat`) of ``nlist`` lists, trained by k-means on the corpus; a query
  visits ``nprobe`` lists. Defaults: ``nlist = 4 sqrt(n)``, capped so that each list has at least 39 training
  points (FAISS's own rule of thumb), and ``nprobe = max(8, nlist / 2)``: chosen for recall. On SciFact (2,000
  passages, MiniLM) a quarter of the lists kept only 0.84 of flat's top 100, half of them 0.96; pass a smaller
  `nprobe` to `DenseIndex` for speed when a lower recall will do.
- ``hnsw``: a graph (`faiss.IndexHNSWFlat`, ``M = 32`` links, ``efConstruction = 200``); a query explores
  ``efSearch = max(128, 2k)`` candidates.

At these defaults both keep recall@100 at or above 0.95 of flat's on SciFact (tests/retrieval/test_index.py;
`bench/mine.py --index` prints the recall@k of each against flat). Scores are inner products of the same
embeddings as flat's, so margins and cuts mean the same; only which documents are found can differ.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from hardneg.errors import ConfigError
from hardneg.progress import StageProgress
from hardneg.retrieval.dense import dense_search

IndexKind = Literal["flat", "ivf", "hnsw"]
INDEX_KINDS: tuple[str, ...] = ("flat", "ivf", "hnsw")
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128


def check_index(kind: str, param: str = "index") -> None:
    """`ConfigError` naming `param` unless `kind` is one of `INDEX_KINDS`."""
    if kind not in INDEX_KINDS:
        raise ConfigError(f"expected one of {', '.join(INDEX_KINDS)}; got {kind!r}", param=param)


def default_nlist(n: int) -> int:
    """IVF lists for `n` vectors: 4 sqrt(n), with at least 39 vectors per list to train on."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


class DenseIndex:
    """Top-k inner-product search over `corpus_emb` with index `kind` (see the module docstring).

    `nlist` / `nprobe` tune ``ivf``, `ef_search` ``hnsw``; None takes the defaults above. `seed` fixes the IVF
    k-means, so the same corpus gives the same index.
    """

    def __init__(
        self,
        corpus_emb: np.ndarray,
        kind: str = "flat",
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        seed: int = 0,
    ) -> None:
        check_index(kind)
        self.kind = kind
        self.size, self.dim = int(corpus_emb.shape[0]), int(corpus_emb.shape[1])
        self.ef_search = ef_search or HNSW_EF_SEARCH
        self._xb = np.ascontiguousarray(corpus_emb, dtype=np.float32)
        self._index: Any = None
        self.nlist = self.nprobe = 0
        if kind == "flat":
            return
        import faiss

        if kind == "ivf":
            self.nlist = min(nlist or default_nlist(self.size), self.size)
            self.nprobe = min(nprobe or max(8, self.nlist // 2), self.nlist)
            quantizer = faiss.IndexFlatIP(self.dim)
            index: Any = faiss.IndexIVFFlat(quantizer, self.dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.train(self._xb)
            index.add(self._xb)
            index.nprobe = self.nprobe
            self._quantizer = quantizer  # the IVF index points at it: keep it alive
        else:
            index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.add(self._xb)
        self._index = index
        self._xb = None  # type: ignore[assignment]  # the index holds its own copy

    def describe(self) -> dict[str, Any]:
        """The index and its settings, as the mining report gives them."""
        if self.kind == "ivf":
            return {"index": "ivf", "nlist": self.nlist, "nprobe": self.nprobe}
        if self.kind == "hnsw":
            return {"index": "hnsw", "M": HNSW_M, "ef_search": self.ef_search}
        return {"index": "flat"}

    def search(
        self, query_emb: np.ndarray, k: int, *, block_size: int = 1024, progress: StageProgress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, indices)``, each ``(nq, min(k, corpus size))``, best first; missing hits have index -1."""
        if self._index is None:
            return dense_search(query_emb, self._xb, k, block_size=block_size, progress=progress)
        k = min(k, self.size)
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.ef_search, 2 * k)
        nq = query_emb.shape[0]
        scores = np.empty((nq, k), dtype=np.float32)
        indices = np.empty((nq, k), dtype=np.int64)
        for start in range(0, nq, block_size):
            xq = np.ascontiguousarray(query_emb[start : start + block_size], dtype=np.float32)
            s, i = self._index.search(xq, k)
            scores[start : start + len(xq)] = s
            indices[start : start + len(xq)] = i
            if progress:
                progress("search", min(start + block_size, nq), nq)
        return scores, indices


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k (`exact` indices) that `approx` found too."""
    if not len(exact):
        return 1.0
    found = [len(set(a[a >= 0].tolist()) & set(e[e >= 0].tolist())) / max(1, int((e >= 0).sum())) for a, e in
             zip(approx, exact, strict=True)]  # fmt: skip
    return float(np.mean(found))
