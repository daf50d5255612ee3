"""Judging: the judge contract, its backends, prompts, the judgment store, the cascade, calibration and cost.

Calling the package runs the cascade: ``hardneg.judge(data, config, store)`` (`hardneg.judge.run.judge`).

The contract, for a backend of your own::

    from hardneg.judge import Judge, JudgeOutput, register_backend

    class Overlap(Judge):
        kind = "overlap"
        def config(self):
            return {"kind": self.kind}
        def judge(self, instance, docids):
            words = set(instance.query.lower().split())
            scores = {d: len(words & set(instance.negative(d).text.lower().split())) / max(1, len(words))
                      for d in docids}
            return JudgeOutput(docids=list(docids), scores=scores)

    register_backend("overlap", Overlap)   # now `backend: overlap` works in a cascade YAML

Layout: `verdicts` (the vocabulary), `base` (the contract), `registry` (backends by name), `batch` (one stage
over a batch in memory), `store` (SQLite), `cascade/` (config, routing, runner), `backends/`, `prompts/`,
`calibration/`, `cost`, `importer`, `defaults`.
"""

from hardneg.judge.base import Judge, config_hash
from hardneg.judge.batch import JudgeCall, check_output, judge_batch, judge_items
from hardneg.judge.cascade import (
    CascadeConfig,
    CascadeReport,
    StageConfig,
    StageReport,
    default_config_path,
    load_config,
    load_default_config,
    parse_config,
    run_cascade,
    shipped_configs,
)
from hardneg.judge.cost import Budget, PriceTable
from hardneg.judge.importer import import_judgments
from hardneg.judge.registry import BACKENDS, LISTWISE_BACKENDS, build_judge, known_backends, register_backend
from hardneg.judge.run import judge
from hardneg.judge.store import JudgmentStore, open_store
from hardneg.judge.verdicts import FinalVerdict, JudgeOutput, Judgment, StageVerdict, Status
from hardneg.stagemodule import make_callable

__all__ = [
    "BACKENDS",
    "LISTWISE_BACKENDS",
    "Budget",
    "CascadeConfig",
    "CascadeReport",
    "FinalVerdict",
    "Judge",
    "JudgeCall",
    "JudgeOutput",
    "Judgment",
    "JudgmentStore",
    "PriceTable",
    "StageConfig",
    "StageReport",
    "StageVerdict",
    "Status",
    "build_judge",
    "check_output",
    "config_hash",
    "default_config_path",
    "import_judgments",
    "judge",
    "judge_batch",
    "judge_items",
    "known_backends",
    "load_config",
    "load_default_config",
    "open_store",
    "parse_config",
    "register_backend",
    "run_cascade",
    "shipped_configs",
]

make_callable(__name__, judge)
