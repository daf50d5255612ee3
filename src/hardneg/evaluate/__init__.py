"""BEIR-style evaluation with trec_eval semantics, TREC run files and paired significance tests.

Calling the package runs `evaluate` (`hardneg.evaluate(model, beir, split="test")`).
"""

from hardneg.evaluate.compare import compare_runs
from hardneg.evaluate.metrics import (
    DEFAULT_METRICS,
    QueryOverlap,
    evaluate_run,
    query_overlap,
    read_qrels,
    read_run,
    write_run,
)
from hardneg.evaluate.run import EvalResult, evaluate, evaluate_bm25, evaluate_model, rerank
from hardneg.stagemodule import make_callable

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

make_callable(__name__, evaluate)
