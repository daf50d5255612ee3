"""Rank fusion, one module for both uses: retrieval runs (reciprocal rank fusion of BM25 and dense hits) and
judge scores (per-instance rank averaging of pointwise judges).

Ranks are taken within one ranking or one instance, so scores on different scales (BM25, cosines,
probabilities) combine without calibration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from hardneg.errors import ConfigError

DEFAULT_RRF_K = 60

Missing = Literal["skip", "min", "error"]


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


def normalized_ranks(scores: Mapping[str, float]) -> dict[str, float]:
    """Ranks scaled to [0, 1] within one instance: highest score 1.0, lowest 0.0, ties share their mean rank.

    A single docid gets 0.5 (no evidence either way).
    """
    if not scores:
        return {}
    docids = list(scores)
    values = np.asarray([scores[d] for d in docids], dtype=np.float64)
    if len(values) == 1:
        return {docids[0]: 0.5}
    from scipy.stats import rankdata  # heavy: imported when fusing, not with hardneg

    ranks = rankdata(values, method="average")  # 1..n, ties averaged
    scaled = (ranks - 1.0) / (len(values) - 1.0)
    return {d: float(r) for d, r in zip(docids, scaled, strict=True)}


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores rescaled to [0, 1] within one instance; all-equal scores map to 0.5."""
    if not scores:
        return {}
    values = np.asarray(list(scores.values()), dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high == low:
        return dict.fromkeys(scores, 0.5)
    return {d: (float(s) - low) / (high - low) for d, s in scores.items()}


def rank_average(
    score_dicts: Sequence[Mapping[str, float]],
    *,
    weights: Sequence[float] | None = None,
    missing: Missing = "skip",
) -> dict[str, float]:
    """Weighted mean of per-judge normalised ranks for one instance, in [0, 1] (higher = more likely relevant).

    Ranks are normalised within each dict over the docids that dict scored. A docid absent from some dicts:
    - "skip" (default): averaged over the dicts that scored it (a negative an LLM stage never saw keeps the
      rank of the stages that did);
    - "min": counted as rank 0.0 in the dicts that lack it (unscored means least likely relevant);
    - "error": ValueError.
    """
    if not score_dicts:
        return {}
    if weights is None:
        weights = [1.0] * len(score_dicts)
    if len(weights) != len(score_dicts):
        raise ConfigError(f"rank_average: {len(weights)} weights for {len(score_dicts)} score dicts")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError("rank_average: weights must be >= 0 with a positive sum")
    if missing not in ("skip", "min", "error"):
        raise ConfigError(f"rank_average: missing must be skip, min or error, not {missing!r}")
    ranked = [normalized_ranks(scores) for scores in score_dicts]
    docids: dict[str, None] = {}
    for scores in score_dicts:
        docids.update(dict.fromkeys(scores))
    fused: dict[str, float] = {}
    for docid in docids:
        total = 0.0
        weight_sum = 0.0
        for ranks, weight in zip(ranked, weights, strict=True):
            if docid in ranks:
                total += weight * ranks[docid]
                weight_sum += weight
            elif missing == "min":
                weight_sum += weight
            elif missing == "error":
                raise ValueError(f"rank_average: docid {docid!r} is missing from one of the score dicts")
        fused[docid] = total / weight_sum if weight_sum > 0 else 0.0
    return fused
