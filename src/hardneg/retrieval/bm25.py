"""BM25 with bm25s: Lucene scoring, English stopwords and Snowball stemming, as BEIR's Elasticsearch baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hardneg.data.records import Passage, passage_text
from hardneg.models import ModelError


def _load_stemmer(language: str | None) -> Any:
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
    items: Any = corpus.values() if isinstance(corpus, Mapping) else corpus
    texts = [item if isinstance(item, str) else passage_text(item, with_title=use_title) for item in items]
    return BM25Index(texts).search(queries, k)
