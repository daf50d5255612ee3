"""Calibrated default thresholds of the local score judges (read by `hardneg.judging.cascade` and the CLI flags).

Calibrated on people: NovelEval (../shared/data/noveleval: 21 questions, every passage graded 0-2 by people) built
into a testbed (`hardneg testbed`: one grade-2 passage per query as the positive, the top 10 of the other 19 by
BM25 as negatives, a negative graded >= 1 is a false negative: 84 of 210, base rate 0.40). The queries are split
in two seeded halves (seed 0, `hardneg.judging.calibration.split_queries`). Every cut is chosen on the tuning half
(11 queries, 110 negatives); every figure below is measured on the held-out half (10 queries, 100 negatives, 39
false negatives). Regenerate with `python bench/judges.py` then `python bench/calibrate_defaults.py`; on your own
data, build a testbed and run `hardneg judge-eval --target "precision>=0.7"`, or `hardneg calibrate` on your labels.

Operating points of the embedding judge (MiniLM cos(reference), the default cascade's only stage), one per kind of
treatment (`OPERATING_POINTS`, `TREATMENT_POINTS`): a relabelled true negative teaches the retriever a wrong
positive, a removed one only costs a negative. Held-out results (seed 0):
- precision-first (rlhn, rlhn+filter, default): the highest recall at precision >= 0.7 on the tuning half; cut
  0.7265: precision 0.743, recall 0.667, kappa 0.529 (35 of 100 flagged).
- recall-first (remove, hn_remove): the highest precision at recall >= 0.8 on the tuning half; cut 0.6197:
  precision 0.508, recall 0.795, kappa 0.275 (61 of 100 flagged).

Choosing the judge (objective: the highest recall at precision >= 0.6 on the tuning half), held-out results:
- embedding, MiniLM cos(reference) >= 0.6969: precision 0.651, recall 0.718, kappa 0.463, ROC-AUC 0.776.
- Qwen2.5-Coder-1.5B P(yes) >= 0.5704: precision 0.512, recall 0.538, kappa 0.209, ROC-AUC 0.702.
- its expected grade (0-3) >= 1.6549: precision 0.568, recall 0.538, kappa 0.279, ROC-AUC 0.756.
- cos + P(yes) (plain sum) >= 1.1499: precision 0.509, recall 0.744, kappa 0.263, ROC-AUC 0.775. It had the best
  recall on the tuning half (0.756 at precision 0.618) and lost on the held-out half.
The LLM does not beat the embedding judge on held-out pairs at about a hundred times its seconds per negative, so
the default cascade (`default.yaml`) is the embedding stage alone. The targets we set (kappa >= 0.6, recall >= 0.8
at precision >= 0.6) are not met by any local judge; with 100 held-out pairs, treat these as directions.
Second opinion: the embedding judge against GPT-4o's verdicts of the 25 FiQA instances of
../shared/data/rlhn-sample (375 pairs, 23 relevant): at 0.6969 precision 0.167, recall 0.043, kappa 0.045; at the
precision-first cut 0.7265 precision 0.500, recall 0.043, kappa 0.071 (2 flagged). GPT-4o is not
ground truth (the paper measures its kappa with people at 0.39), and the two samples disagree: measure on yours.

`FIQA_GPT4O` keeps the earlier calibration against those GPT-4o verdicts, which the LLM cascade of
examples/judge-local-llm.yaml uses (routing and fused cuts have no human-calibrated counterpart).
"""

from __future__ import annotations

# The embedding judge's operating points: the cut chosen on NovelEval's tuning half, its tuning figures and its
# held-out precision / recall / kappa. Measured (AMD EPYC, 2 cores, CPU; MiniLM only, seconds) by
#     python bench/calibrate_defaults.py --judges embedding
OPERATING_POINTS: dict[str, dict[str, float]] = {
    "precision-first": {"cut": 0.7265, "tune_precision": 0.719, "tune_recall": 0.511,
        "precision": 0.743, "recall": 0.667, "kappa": 0.529, "n_pairs": 100, "n_relevant": 39},
    "recall-first": {"cut": 0.6197, "tune_precision": 0.571, "tune_recall": 0.800,
        "precision": 0.508, "recall": 0.795, "kappa": 0.275, "n_pairs": 100, "n_relevant": 39},
}  # fmt: skip

# The objective of each operating point, as stated before looking at the held-out half.
OBJECTIVES: dict[str, str] = {
    "precision-first": "the highest recall at precision >= 0.7",
    "recall-first": "the highest precision at recall >= 0.8",
}

# treatment -> operating point: treatments that turn negatives into positives relabel only at precision-first;
# those that only remove negatives use recall-first. `default` changes nothing and takes precision-first.
TREATMENT_POINTS: dict[str, str] = {
    "rlhn": "precision-first",
    "rlhn+filter": "precision-first",
    "default": "precision-first",
    "remove": "recall-first",
    "hn_remove": "recall-first",
}

# backend -> (t_better, t_worse): score >= t_better -> better; t_worse <= score < t_better -> worse.
# Calibrated on people (NovelEval, see above); the embedding judge's is its precision-first cut.
THRESHOLDS: dict[str, dict[str, float]] = {
    "embedding": {"t_better": 0.7265, "t_worse": 0.7265},
    "llm-pointwise": {"t_better": 0.5704, "t_worse": 0.5704},
    "llm-graded": {"t_better": 1.6549, "t_worse": 1.6549},
}

# The held-out metrics behind each default (for reports and docs; the LLM judges' cuts: precision >= 0.6).
HELD_OUT: dict[str, dict[str, float]] = {
    "embedding": {"auc": 0.776, "kappa": 0.529, "precision": 0.743, "recall": 0.667, "n_pairs": 100,
                  "n_relevant": 39},  # at the precision-first cut
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


def operating_point(treatment: str) -> tuple[str, dict[str, float]]:
    """(name, figures) of the embedding judge's operating point for `treatment` (`TREATMENT_POINTS`)."""
    name = TREATMENT_POINTS.get(treatment, "precision-first")
    return name, OPERATING_POINTS[name]
