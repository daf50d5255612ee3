"""First-stage retrieval over a fixed corpus, shared by mining (`hardneg.mine`) and evaluation.

- `Retriever(corpus, method, ...)`: one object for `bm25`, `dense` and `hybrid` (reciprocal rank fusion);
  `.search(queries, k)` returns ``{query_id: [(docid, score), ...]}`` best first; `.score(queries, pairs)`
  scores given (query, doc) pairs exactly, retrieved or not.
- `search(method, corpus, queries, k, ...)`: the one-call form of `Retriever(...).search(...)`.

Its parts have a module each: `encoders` (torch or ONNX Runtime, `backend="auto"`), `embed` (cached
embeddings), `dense` (FAISS), `bm25` (bm25s), `fusion` (RRF), `keys` (cache identities).
Progress callbacks have the signature ``progress(stage: str, done: int, total: int)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hardneg.cluster import EngineSpec, PoolSize, RaySession, resolve_engine
from hardneg.data.records import Passage, passage_text
from hardneg.errors import ConfigError
from hardneg.progress import StageProgress
from hardneg.retrieval.bm25 import BM25Index
from hardneg.retrieval.embed import encode_texts
from hardneg.retrieval.encoders import load_encoder
from hardneg.retrieval.fusion import DEFAULT_RRF_K, rrf_fuse
from hardneg.retrieval.index import DenseIndex, check_index
from hardneg.retrieval.sharded import RayCompute

Method = Literal["bm25", "dense", "hybrid"]
METHODS: tuple[str, ...] = ("bm25", "dense", "hybrid")


class Retriever:
    """First-stage retrieval over a fixed corpus: ``bm25``, ``dense`` or ``hybrid`` (RRF of the two).

    Build once, then `search` and `score` any number of query sets. Dense embeddings of the corpus are
    computed (or read from the cache) when the retriever is built; query embeddings per call (cached too).

    Scores: bm25 returns BM25 scores, dense the cosine similarity, hybrid the RRF score in `search`;
    `score` returns the exact similarity of given pairs (BM25 / cosine; for hybrid: cosine, since an RRF
    value only exists for retrieved documents).

    `index` is the dense index searched (`hardneg.retrieval.index`): ``flat`` (exact, the default), or FAISS
    ``ivf`` / ``hnsw`` (approximate) for corpora of millions; `score` stays exact. `engine="ray"` encodes the
    corpus and the queries on an actor pool (`pool`, a `hardneg.cluster.PoolSize`; `ray_address` the cluster) into
    the same embedding cache (`hardneg.retrieval.sharded`); search runs here. `model` is then a name or path.
    """

    def __init__(
        self,
        corpus: Mapping[str, Passage] | Sequence[Passage],
        method: str = "bm25",
        *,
        model: Any = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        query_max_length: int | None = None,
        passage_max_length: int | None = None,
        batch_size: int = 64,
        use_title: bool = True,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        rrf_k: int = DEFAULT_RRF_K,
        progress: StageProgress | None = None,
        backend: str = "torch",
        index: str = "flat",
        engine: str | EngineSpec = "local",
        ray_address: str | None = None,
        pool: PoolSize | None = None,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"expected one of {', '.join(METHODS)}; got {method!r}", param="method")
        check_index(index)
        self.engine = resolve_engine(engine, ray_address)
        self.pool = pool or PoolSize()
        self._session: RaySession | None = None
        if self.engine.distributed:
            if method != "bm25" and model is not None and not isinstance(model, (str, os.PathLike)):
                raise ConfigError("engine ray loads the model in each actor: give its name or path", param="model")
            self._session = RaySession(self.engine.ray_address)
        self._source = str(model) if isinstance(model, (str, os.PathLike)) else None
        passages = list(corpus.values()) if isinstance(corpus, Mapping) else list(corpus)
        if not passages:
            raise ConfigError("the corpus is empty")
        self.method = method
        self.docids: list[str] = [p.docid for p in passages]
        self.doc_index: dict[str, int] = {d: i for i, d in enumerate(self.docids)}
        self.query_prefix = query_prefix
        self.query_max_length = query_max_length
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.rrf_k = rrf_k
        self._bm25: BM25Index | None = None
        self._model: Any = None
        self._corpus_emb: np.ndarray | None = None
        self._index: DenseIndex | None = None
        texts = [passage_text(p, with_title=use_title) for p in passages]
        del passages
        if method in ("bm25", "hybrid"):
            if progress:
                progress("bm25 index", 0, 1)
            self._bm25 = BM25Index(texts)
            if progress:
                progress("bm25 index", 1, 1)
        if method in ("dense", "hybrid"):
            self._model = model if model is not None and not isinstance(model, (str, os.PathLike)) else None
            if self._model is None:
                self._model = load_encoder(model, backend=backend)
            try:
                self._corpus_emb = self._encode(texts, passage_prefix, passage_max_length, "encode corpus", progress)
            except BaseException:
                self.close()
                raise
            if progress and index != "flat":
                progress(f"{index} index", 0, 1)
            self._index = DenseIndex(self._corpus_emb, index)
            if progress and index != "flat":
                progress(f"{index} index", 1, 1)

    @property
    def index(self) -> DenseIndex | None:
        """The dense index searched (dense/hybrid): exact ``flat``, or FAISS ``ivf`` / ``hnsw``."""
        return self._index

    @property
    def model(self) -> Any:
        """The encoder of a dense/hybrid retriever: a SentenceTransformer or an `OnnxEncoder` (None for bm25)."""
        return self._model

    def encode_queries(self, queries: Sequence[str], *, progress: StageProgress | None = None) -> np.ndarray:
        """Embeddings of query texts with this retriever's query prefix and max length (dense/hybrid only)."""
        if self._model is None:
            raise ConfigError("encode_queries needs a dense or hybrid retriever")
        return self._encode(queries, self.query_prefix, self.query_max_length, "encode queries", progress)

    def _encode(
        self, texts: Sequence[str], prefix: str, max_length: int | None, stage: str, progress: StageProgress | None
    ) -> np.ndarray:
        """`encode_texts` with this retriever's encoder, batch size and cache: here, or on the Ray actor pool
        (`engine="ray"`)."""
        compute = RayCompute(self._session, self.pool, source=self._source) if self._session is not None else None
        return encode_texts(
            self._model, texts, prefix=prefix, max_length=max_length, batch_size=self.batch_size,
            cache_dir=self.cache_dir, use_cache=self.use_cache, progress=progress, stage=stage, compute=compute,
        )  # fmt: skip

    def close(self) -> None:
        """Shut down a Ray this retriever started (`engine="ray"` without a cluster); search goes on working."""
        if self._session is not None:
            self._session.close()

    def search_indices(
        self, queries: Sequence[str], k: int, *, query_emb: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top-k ``(doc index, score)`` per query text, best first (the index-level form of `search`)."""
        dense_hits = bm25_hits = None
        if self.method in ("dense", "hybrid"):
            if query_emb is None:
                query_emb = self.encode_queries(queries)
            assert self._index is not None
            dense_hits = self._index.search(query_emb, k)
        if self.method in ("bm25", "hybrid"):
            assert self._bm25 is not None
            bm25_hits = self._bm25.search(queries, k)
        results: list[list[tuple[int, float]]] = []
        for row in range(len(queries)):
            if self.method == "hybrid":
                assert dense_hits is not None and bm25_hits is not None
                results.append(rrf_fuse([dense_hits[1][row], bm25_hits[1][row]], k, rrf_k=self.rrf_k))
            else:
                scores, indices = dense_hits if dense_hits is not None else bm25_hits  # type: ignore[misc]
                results.append([(int(i), float(s)) for s, i in zip(scores[row], indices[row], strict=True) if i >= 0])
        return results

    def iter_search(
        self,
        queries: Mapping[str, str],
        k: int,
        *,
        block_size: int = 1024,
        exclude_self: bool = False,
        progress: StageProgress | None = None,
    ) -> Iterator[tuple[str, list[tuple[str, float]]]]:
        """Stream ``(query_id, [(docid, score), ...])`` one query block at a time (memory flat in #queries).

        `exclude_self` drops a hit whose docid equals the query id (ArguAna, Quora) and still returns k hits.
        """
        qids = list(queries)
        depth = k + 1 if exclude_self else k
        query_emb = None
        if self.method in ("dense", "hybrid"):
            query_emb = self.encode_queries([queries[q] for q in qids], progress=progress)
        for start in range(0, len(qids), block_size):
            block = qids[start : start + block_size]
            emb = query_emb[start : start + block_size] if query_emb is not None else None
            hits = self.search_indices([queries[q] for q in block], depth, query_emb=emb)
            for qid, row in zip(block, hits, strict=True):
                ranked = [(self.docids[i], s) for i, s in row]
                if exclude_self:
                    ranked = [(d, s) for d, s in ranked if d != qid]
                yield qid, ranked[:k]
            if progress:
                progress("search", min(start + block_size, len(qids)), len(qids))

    def search(
        self,
        queries: Mapping[str, str],
        k: int,
        *,
        block_size: int = 1024,
        exclude_self: bool = False,
        progress: StageProgress | None = None,
    ) -> dict[str, list[tuple[str, float]]]:
        """``{query_id: [(docid, score), ...]}``, top-k best first (see `iter_search`)."""
        return dict(self.iter_search(queries, k, block_size=block_size, exclude_self=exclude_self, progress=progress))

    def score_indices(self, query: str, indices: Sequence[int], *, query_emb: np.ndarray | None = None) -> np.ndarray:
        """Exact similarity of one query with the given document indices (BM25, or cosine for dense/hybrid)."""
        if not len(indices):
            return np.zeros(0, dtype=np.float32)
        if self.method == "bm25":
            assert self._bm25 is not None
            return self._bm25.score(query, indices)
        assert self._corpus_emb is not None
        if query_emb is None:
            query_emb = self.encode_queries([query])[0]
        return (self._corpus_emb[list(indices)] @ query_emb).astype(np.float32)

    def score(self, queries: Mapping[str, str], pairs: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
        """Exact scores of given (query, docid) pairs, retrieved or not: ``{query_id: {docid: score}}``.

        Docids not in the corpus are left out.
        """
        qids = [q for q in pairs if q in queries]
        query_emb = None
        if self.method != "bm25":
            query_emb = self.encode_queries([queries[q] for q in qids])
        out: dict[str, dict[str, float]] = {}
        for row, qid in enumerate(qids):
            docids = [d for d in pairs[qid] if d in self.doc_index]
            emb = query_emb[row] if query_emb is not None else None
            values = self.score_indices(queries[qid], [self.doc_index[d] for d in docids], query_emb=emb)
            out[qid] = {d: float(v) for d, v in zip(docids, values, strict=True)}
        return out


def search(
    method: str,
    corpus: Mapping[str, Passage] | Sequence[Passage],
    queries: Mapping[str, str],
    k: int,
    *,
    model: Any = None,
    exclude_self: bool = False,
    **options: Any,
) -> dict[str, list[tuple[str, float]]]:
    """Retrieve the top `k` docids for each query: ``{query_id: [(docid, score), ...]}``, best first.

    `options` go to `Retriever` (query_prefix, passage_prefix, query_max_length, passage_max_length,
    batch_size, use_title, cache_dir, use_cache, rrf_k, progress, backend).
    """
    progress = options.get("progress")
    retriever = Retriever(corpus, method, model=model, **options)
    return retriever.search(queries, k, exclude_self=exclude_self, progress=progress)
