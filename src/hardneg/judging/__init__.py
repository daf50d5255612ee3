"""Judging: the judge contract, its backends, prompts, the judgment store, the cascade, calibration and cost.

The stage's verb is `hardneg.judge(data, config, store)` (`hardneg.judging.run.judge`).

The contract, for a backend of your own::

    from hardneg.judging import Judge, JudgeOutput, register_backend

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

from hardneg.judging.base import Judge, config_hash
from hardneg.judging.batch import JudgeCall, check_output, judge_batch, judge_items
from hardneg.judging.cascade import (
    CascadeConfig,
    CascadeReport,
    StageConfig,
    StageReport,
    default_config_path,
    load_cascade,
    load_default_config,
    parse_config,
    run_cascade,
    shipped_configs,
)
from hardneg.judging.cost import Budget, PriceTable
from hardneg.judging.importer import import_judgments
from hardneg.judging.registry import BACKENDS, LISTWISE_BACKENDS, build_judge, known_backends, register_backend
from hardneg.judging.run import judge
from hardneg.judging.store import JudgmentStore, open_store
from hardneg.judging.verdicts import FinalVerdict, JudgeOutput, Judgment, StageVerdict, Status

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
    "load_cascade",
    "load_default_config",
    "open_store",
    "parse_config",
    "register_backend",
    "run_cascade",
    "shipped_configs",
]
