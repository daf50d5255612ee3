"""Calibrated default thresholds of the local score judges (read by `hardneg.judge.cascade` and the CLI flags).

Calibrated on people: NovelEval (../shared/data/noveleval: 21 questions, every passage graded 0-2 by people) built
into a testbed (`hardneg testbed`: one grade-2 passage per query as the positive, the top 10 of the other 19 by
BM25 as negatives, a negative graded >= 1 is a false negative: 84 of 210, base rate 0.40). The queries are split
in two seeded halves (seed 0, `hardneg.judge.calibration.split_queries`). Objective, stated before looking at the
held-out half: the highest recall at precision >= 0.6, the cut chosen on the tuning half (11 queries, 110
negatives); every figure below is measured on the held-out half (10 queries, 100 negatives, 39 false negatives).
Regenerate with `python bench/judges.py` then `python bench/calibrate_defaults.py`; on your own data, build a
testbed and run `hardneg judge-eval --target "precision>=0.6"`, or `hardneg calibrate` on your labels.

Held-out results (seed 0):
- embedding, MiniLM cos(reference) >= 0.6969: precision 0.651, recall 0.718, kappa 0.463, ROC-AUC 0.776.
- Qwen2.5-Coder-1.5B P(yes) >= 0.5704: precision 0.512, recall 0.538, kappa 0.209, ROC-AUC 0.702.
- its expected grade (0-3) >= 1.6549: precision 0.568, recall 0.538, kappa 0.279, ROC-AUC 0.756.
- cos + P(yes) (plain sum) >= 1.1499: precision 0.509, recall 0.744, kappa 0.263, ROC-AUC 0.775. It had the best
  recall on the tuning half (0.756 at precision 0.618) and lost on the held-out half.
The LLM does not beat the embedding judge on held-out pairs at about a hundred times its seconds per negative, so
the default cascade (`default.yaml`) is the embedding stage alone. The targets we set (kappa >= 0.6, recall >= 0.8
at precision >= 0.6) are not met by any local judge; with 100 held-out pairs, treat these as directions.
Second opinion: at its cut, the embedding judge against GPT-4o's verdicts of the 25 FiQA instances of
../shared/data/rlhn-sample (375 pairs, 23 relevant): precision 0.167, recall 0.043, kappa 0.045. GPT-4o is not
ground truth (the paper measures its kappa with people at 0.39), and the two samples disagree: measure on yours.

`FIQA_GPT4O` keeps the earlier calibration against those GPT-4o verdicts, which the LLM cascade of
examples/judge-local-llm.yaml uses (routing and fused cuts have no human-calibrated counterpart).
"""

from __future__ import annotations

# backend -> (t_better, t_worse): score >= t_better -> better; t_worse <= score < t_better -> worse.
# Calibrated on people (NovelEval, see above).
THRESHOLDS: dict[str, dict[str, float]] = {
    "embedding": {"t_better": 0.6969, "t_worse": 0.6969},
    "llm-pointwise": {"t_better": 0.5704, "t_worse": 0.5704},
    "llm-graded": {"t_better": 1.6549, "t_worse": 1.6549},
}

# The held-out metrics behind each default (for reports and docs).
HELD_OUT: dict[str, dict[str, float]] = {
    "embedding": {"auc": 0.776, "kappa": 0.463, "precision": 0.651, "recall": 0.718, "n_pairs": 100,
                  "n_relevant": 39},
    "llm-pointwise": {"auc": 0.702, "kappa": 0.209, "precision": 0.512, "recall": 0.538, "n_pairs": 100,
                      "n_relevant": 39},
    "llm-graded": {"auc": 0.756, "kappa": 0.279, "precision": 0.568, "recall": 0.538, "n_pairs": 100,
                   "n_relevant": 39},
}  # fmt: skip

# The earlier calibration on GPT-4o's verdicts of 25 FiQA instances (rlhn-sample; 180 held-out pairs, 8 relevant):
# the cuts of examples/judge-local-llm.yaml.
FIQA_GPT4O: dict[str, dict[str, float]] = {
    "embedding": {"t_better": 0.5339, "t_worse": 0.5339},
    "llm-pointwise": {"t_better": 0.4868, "t_worse": 0.4680},
    "llm-pointwise+fused": {"t_better": 0.5714, "t_worse": 0.3571},
}
# Stage-1 routing cut of that cascade: cos(reference) of a negative worth a second look.
FIQA_GPT4O_ROUTE_MIN_SCORE: float = 0.4184


def thresholds(backend: str, *, fused: bool = False) -> tuple[float, float] | None:
    """(t_better, t_worse) calibrated for a score backend, or None. `fused`: its rank average with stage 1, which
    only the GPT-4o calibration has (`FIQA_GPT4O`)."""
    found = FIQA_GPT4O.get(f"{backend}+fused") if fused else THRESHOLDS.get(backend)
    return None if found is None else (found["t_better"], found["t_worse"])
