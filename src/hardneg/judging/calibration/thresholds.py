"""Turning a pointwise judge's scores into better / worse thresholds, measured on held-out queries.

Labels come from a stronger judge (for example GPT-4o's verdicts) or from qrels, per (query_id, docid):
0 = not relevant, 1 = relevant but worse than the positive, 2 = better (at least as good as the positive).
Binary labels (0/1, e.g. from qrels) mean relevant / not.

Queries are split in two halves (seeded): thresholds are tuned on one half and every reported metric is
measured on the other, so the numbers are not inflated by tuning on the data they describe.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from hardneg.errors import ConfigError

Pair = tuple[str, str]  # (query_id, docid)
Target = Literal["relevant", "better"]
Objective = Literal["kappa", "f1", "recall@precision"]

# Candidate thresholds are capped so tuning stays fast on large label sets.
_MAX_CANDIDATES = 1000


@dataclass(slots=True)
class CalibrationResult:
    """Thresholds (tuned on one half of the queries) and their metrics on the other half."""

    t_better: float
    t_worse: float
    auc: float  # held-out ROC AUC of the score for `target`
    kappa: float  # held-out Cohen's kappa of (score >= threshold) vs the labels, for `target`
    precision: float
    recall: float
    n_pairs: int  # all labelled pairs with a score
    held_out_metrics: dict[str, Any] = field(default_factory=dict)  # per target, plus split sizes
    target: str = "relevant"
    objective: str = "kappa"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RoutingResult:
    """A stage-1 routing cut: negatives scoring >= threshold go on to the next stage."""

    threshold: float
    target_recall: float
    recall_tune: float
    recall_held_out: float  # share of held-out relevant negatives at or above the cut
    routed_share_held_out: float  # share of held-out negatives at or above the cut (the stage-2 load)
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_queries(query_ids: Iterable[str], holdout_fraction: float = 0.5, seed: int = 0) -> tuple[set, set]:
    """(tune, held-out) query ids: a seeded shuffle of the sorted ids, so the split is reproducible."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ConfigError(f"holdout_fraction must be in (0, 1), not {holdout_fraction}")
    ids = sorted(set(query_ids))
    if len(ids) < 2:
        raise ConfigError(f"calibration needs at least 2 labelled queries to split, got {len(ids)}")
    random.Random(seed).shuffle(ids)
    n_held = min(len(ids) - 1, max(1, round(holdout_fraction * len(ids))))
    return set(ids[n_held:]), set(ids[:n_held])


def _arrays(
    scores: Mapping[Pair, float], labels: Mapping[Pair, int], queries: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted(p for p in labels if p in scores and p[0] in queries)
    s = np.asarray([scores[p] for p in pairs], dtype=np.float64)
    y = np.asarray([int(labels[p]) for p in pairs], dtype=np.int64)
    return s, y


def _binary(y: np.ndarray, target: Target) -> np.ndarray:
    return (y >= 2).astype(int) if target == "better" else (y >= 1).astype(int)


def _candidates(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.metrics import precision_recall_curve

    # precision_recall_curve returns exactly the distinct score values at which the prediction changes.
    _, _, thresholds = precision_recall_curve(y, s)
    if len(thresholds) > _MAX_CANDIDATES:
        thresholds = np.quantile(thresholds, np.linspace(0.0, 1.0, _MAX_CANDIDATES))
    return thresholds


def _metrics(s: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of predicting `score >= threshold` for binary labels y."""
    from sklearn.metrics import cohen_kappa_score, precision_score, recall_score, roc_auc_score

    pred = (s >= threshold).astype(int)
    both = len(set(y.tolist())) > 1
    return {
        "auc": float(roc_auc_score(y, s)) if both else math.nan,
        "kappa": float(cohen_kappa_score(y, pred)) if len(set((y + 2 * pred).tolist())) > 1 else 0.0,
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "flagged_share": float(pred.mean()) if len(pred) else 0.0,
        "n_pairs": len(y),
        "n_relevant": int(y.sum()),
    }


def tune_threshold(s: np.ndarray, y: np.ndarray, objective: Objective = "kappa", min_precision: float = 0.5) -> float:
    """The threshold on `s` that best predicts binary labels `y` under `objective`."""
    from sklearn.metrics import cohen_kappa_score, precision_score, recall_score

    if y.sum() == 0 or y.sum() == len(y):
        raise ConfigError("cannot tune a threshold: the tuning half has only one class of labels")
    best_t, best_v = math.inf, -math.inf
    for t in _candidates(s, y):
        pred = (s >= t).astype(int)
        if objective == "kappa":
            value = cohen_kappa_score(y, pred)
        elif objective == "f1":
            p = precision_score(y, pred, zero_division=0)
            r = recall_score(y, pred, zero_division=0)
            value = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        elif objective == "recall@precision":
            p = precision_score(y, pred, zero_division=0)
            value = recall_score(y, pred, zero_division=0) if p >= min_precision else -1.0 + p
        else:
            raise ConfigError(f"unknown objective {objective!r}: kappa, f1 or recall@precision")
        if value > best_v:
            best_t, best_v = float(t), float(value)
    return best_t


def calibrate(
    scores: Mapping[Pair, float],
    labels: Mapping[Pair, int],
    *,
    holdout_fraction: float = 0.5,
    seed: int = 0,
    target: Target = "relevant",
    objective: Objective = "kappa",
    min_precision: float = 0.5,
) -> CalibrationResult:
    """Tune t_worse on "relevant" (label >= 1) and t_better on "better" (label 2), then measure held out.

    With binary labels there is no "better" class: t_better = t_worse (every flagged negative is better).
    `target` picks which threshold the headline fields (auc, kappa, precision, recall) describe.
    """
    if target not in ("relevant", "better"):
        raise ConfigError(f"target must be 'relevant' or 'better', not {target!r}")
    bad = {v for v in labels.values() if v not in (0, 1, 2)}
    if bad:
        raise ConfigError(f"labels must be 0 (none), 1 (worse / relevant) or 2 (better); got {sorted(bad)[:5]}")
    labelled = {p for p in labels if p in scores}
    if not labelled:
        raise ConfigError("no scored pair has a label: do the query_ids and docids of scores and labels match?")
    graded = any(labels[p] == 2 for p in labelled)
    if target == "better" and not graded:
        raise ConfigError("target 'better' needs graded labels (2 = better); these labels are binary")
    tune_q, held_q = split_queries((q for q, _ in labelled), holdout_fraction, seed)
    s_tune, y_tune = _arrays(scores, labels, tune_q)
    s_held, y_held = _arrays(scores, labels, held_q)
    t_worse = tune_threshold(s_tune, _binary(y_tune, "relevant"), objective, min_precision)
    t_better = tune_threshold(s_tune, _binary(y_tune, "better"), objective, min_precision) if graded else t_worse
    t_better = max(t_better, t_worse)  # the cascade requires t_better >= t_worse
    held: dict[str, Any] = {
        "relevant": _metrics(s_held, _binary(y_held, "relevant"), t_worse),
        "tune_relevant": _metrics(s_tune, _binary(y_tune, "relevant"), t_worse),
        "n_queries_tune": len(tune_q),
        "n_queries_held_out": len(held_q),
    }
    if graded:
        held["better"] = _metrics(s_held, _binary(y_held, "better"), t_better)
        held["tune_better"] = _metrics(s_tune, _binary(y_tune, "better"), t_better)
    head = held[target]
    return CalibrationResult(
        t_better=t_better,
        t_worse=t_worse,
        auc=head["auc"],
        kappa=head["kappa"],
        precision=head["precision"],
        recall=head["recall"],
        n_pairs=len(labelled),
        held_out_metrics=held,
        target=target,
        objective=objective,
    )


def routing_threshold(
    scores: Mapping[Pair, float],
    labels: Mapping[Pair, int],
    *,
    recall: float = 0.9,
    holdout_fraction: float = 0.5,
    seed: int = 0,
) -> RoutingResult:
    """The highest score cut that keeps at least `recall` of the tuning half's relevant negatives (label >= 1).

    Stage 1 passes negatives scoring >= the cut on to stage 2; the held-out half tells how many relevant
    negatives really get through and what share of all negatives stage 2 then has to judge.
    """
    if not 0.0 < recall <= 1.0:
        raise ConfigError(f"recall must be in (0, 1], not {recall}")
    labelled = {p for p in labels if p in scores}
    if not labelled:
        raise ConfigError("no scored pair has a label")
    tune_q, held_q = split_queries((q for q, _ in labelled), holdout_fraction, seed)
    s_tune, y_tune = _arrays(scores, labels, tune_q)
    s_held, y_held = _arrays(scores, labels, held_q)
    relevant = np.sort(s_tune[y_tune >= 1])[::-1]
    if len(relevant) == 0:
        raise ConfigError("cannot place a routing cut: the tuning half has no relevant negative")
    # Keep the top ceil(recall * n) relevant scores: the cut is the lowest of them.
    threshold = float(relevant[max(0, math.ceil(recall * len(relevant)) - 1)])
    held_rel = s_held[y_held >= 1]
    return RoutingResult(
        threshold=threshold,
        target_recall=recall,
        recall_tune=float((relevant >= threshold).mean()),
        recall_held_out=float((held_rel >= threshold).mean()) if len(held_rel) else math.nan,
        routed_share_held_out=float((s_held >= threshold).mean()) if len(s_held) else math.nan,
        n_pairs=len(labelled),
    )
