"""Calibrated default thresholds of the local pointwise judges (read by `hardneg.judge.cascade`).

Calibrated on the rlhn-sample (../shared/data/rlhn-sample): 25 real FiQA training instances, 15 negatives each
(375 query-negative pairs). Labels: GPT-4o's final verdict of the paper's reference implementation (its stage-2
verdict where the instance was routed to stage 2, else GPT-4o-mini's stage-1 verdict); "relevant" = listed in
`<better>` or `<worse>`: 23 of the 375 pairs. Thresholds maximise Cohen's kappa on a seeded half of the queries
(seed 0) and are measured on the other half (12 queries, 180 pairs, only 8 relevant): treat the held-out figures
as directions, not final numbers. Regenerate with `python bench/calibrate_defaults.py` (prints these blocks), or
calibrate on your own labels with `hardneg calibrate`.

Held-out results (seed 0):
- embedding, MiniLM cos(reference): score >= 0.5339 flags a negative; AUC 0.717, kappa 0.096, precision 0.098,
  recall 0.50 (GPT-4o rarely lists a FiQA negative, so precision is low at any cut).
  GPT-4o's "better" list gives no separate cut on this sample (its tuned cut falls below the relevant one), so
  t_better = t_worse: every flagged negative counts as better.
- stage-1 routing: negatives with cos(reference) >= 0.4184 go on to the LLM stage (keeps 90% of the tuning
  half's relevant negatives); held out it kept 0.75 of the relevant negatives and routed 0.48 of all negatives.

- stage 2, Qwen2.5-Coder-1.5B P(yes) on the 184 negatives the default cascade routes (0.78 of the relevant ones
  reach it; negatives not routed count as unflagged): raw P(yes) >= 0.4868 better, >= 0.4680 worse; held out
  AUC 0.640, kappa 0.113, precision 0.108, recall 0.50.
- stage 2 fused (rank average of stage 1 and the LLM within the routed negatives, `fuse: rank-average`):
  >= 0.5714 better, >= 0.3571 worse; held out AUC 0.597, kappa 0.037, precision 0.063, recall 0.50.
  On this sample the fused score did worse than the LLM alone (within the routed pairs: AUC embedding 0.630,
  LLM 0.645, fused 0.516), while the larger 50-instance measurement in docs/judges.md found the rank average best
  (AUC 0.83 vs 0.78 / 0.80). With 8 relevant held-out pairs neither result is decisive: the shipped cascade keeps
  the fusion and additionally requires the LLM's own calibrated cut (`min_raw_score` = 0.4680), so a negative is
  flagged only when both agree. Calibrate on your own labels before trusting any of these.
"""

from __future__ import annotations

# backend -> (t_better, t_worse): score >= t_better -> better; t_worse <= score < t_better -> worse.
THRESHOLDS: dict[str, dict[str, float]] = {
    "embedding": {"t_better": 0.5339, "t_worse": 0.5339},
    "llm-pointwise": {"t_better": 0.4868, "t_worse": 0.4680},
    "llm-pointwise+fused": {"t_better": 0.5714, "t_worse": 0.3571},
}

# Stage-1 routing cut for the embedding judge (cos(reference) of a negative worth a second look).
ROUTE_MIN_SCORE: float = 0.4184

# The held-out metrics behind each default (for reports and docs).
HELD_OUT: dict[str, dict[str, float]] = {
    "embedding": {"auc": 0.717, "kappa": 0.096, "precision": 0.098, "recall": 0.50, "n_pairs": 180, "n_relevant": 8},
    "routing": {"recall": 0.75, "routed_share": 0.48, "n_pairs": 180, "n_relevant": 8},
    "llm-pointwise": {
        "auc": 0.640,
        "kappa": 0.113,
        "precision": 0.108,
        "recall": 0.50,
        "n_pairs": 180,
        "n_relevant": 8,
    },
    "llm-pointwise+fused": {
        "auc": 0.597,
        "kappa": 0.037,
        "precision": 0.063,
        "recall": 0.50,
        "n_pairs": 180,
        "n_relevant": 8,
    },
}


def thresholds(backend: str, *, fused: bool = False) -> tuple[float, float] | None:
    """(t_better, t_worse) calibrated for a score backend (`fused`: its rank average with stage 1), or None."""
    key = f"{backend}+fused" if fused else backend
    found = THRESHOLDS.get(key)
    return None if found is None else (found["t_better"], found["t_worse"])
