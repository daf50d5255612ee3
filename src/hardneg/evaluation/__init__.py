"""BEIR-style evaluation with trec_eval semantics, TREC run files and paired significance tests.

The stage's verb is `hardneg.evaluate(model, beir, split="test")` (`hardneg.evaluation.run.evaluate`).
"""

from hardneg.evaluation.compare import compare_runs
from hardneg.evaluation.metrics import (
    DEFAULT_METRICS,
    QueryOverlap,
    evaluate_run,
    query_overlap,
    read_qrels,
    read_run,
    write_run,
)
from hardneg.evaluation.run import EvalResult, evaluate, evaluate_bm25, evaluate_model, rerank

__all__ = [
    "DEFAULT_METRICS",
    "EvalResult",
    "QueryOverlap",
    "compare_runs",
    "evaluate",
    "evaluate_bm25",
    "evaluate_model",
    "evaluate_run",
    "query_overlap",
    "read_qrels",
    "read_run",
    "rerank",
    "write_run",
]
