"""hardneg: find and fix false negatives in retrieval training data.

The pipeline, each stage a plain function over data in memory (instances, a `datasets.Dataset`) or on disk::

    import hardneg
    from hardneg.data.sample import sample_beir_dir

    train = hardneg.mine(sample_beir_dir(), split="train", negatives=8)       # list[Instance]
    report = hardneg.judge(train, store="judgments.sqlite")                   # the default local cascade
    cleaned = hardneg.relabel(train, report.verdicts, treatment="rlhn")
    # or both at once: hardneg.clean(train, store="judgments.sqlite")
    model = hardneg.train_retriever(cleaned, "models/rlhn")
    print(hardneg.evaluate(model.output_dir, sample_beir_dir(), split="test").metrics)

The verbs live at the top level; each stage's package is named as a noun (`hardneg.mining`, `hardneg.judging`,
`hardneg.relabeling`, `hardneg.training`, `hardneg.evaluation`), so `from hardneg.judging import Judge` is the
judge contract. The 0.1 paths (`hardneg.judge.store`, ...) still import, with a DeprecationWarning, until 0.3
(`hardneg.deprecated`).
"""

from typing import Any

from hardneg import deprecated
from hardneg.data.beir import BeirData, load_beir
from hardneg.data.records import Instance, Passage
from hardneg.data.source import from_dataset, to_dataset
from hardneg.errors import ConfigError, HardnegError, InputError
from hardneg.evaluation.run import EvalResult, evaluate
from hardneg.judging.base import JudgeStopped
from hardneg.judging.cascade import CascadeConfig, CascadeReport, load_cascade
from hardneg.judging.run import judge
from hardneg.judging.store import JudgmentStore, PartialCascade
from hardneg.judging.verdicts import FinalVerdict, JudgeOutput
from hardneg.mining.config import MineConfig, MineReport
from hardneg.mining.miner import mine
from hardneg.pipeline import CleanReport, clean
from hardneg.relabeling.run import relabel
from hardneg.relabeling.treatments import RelabelOptions, RelabelReport
from hardneg.training.common import TrainResult
from hardneg.training.reranker import RerankerConfig, train_reranker
from hardneg.training.retriever import RetrieverConfig, train_retriever

__version__ = "0.2.0"

__all__ = [
    "BeirData",
    "CascadeConfig",
    "CascadeReport",
    "CleanReport",
    "ConfigError",
    "EvalResult",
    "FinalVerdict",
    "HardnegError",
    "InputError",
    "Instance",
    "JudgeOutput",
    "JudgeStopped",
    "JudgmentStore",
    "MineConfig",
    "MineReport",
    "PartialCascade",
    "Passage",
    "RelabelOptions",
    "RelabelReport",
    "RerankerConfig",
    "RetrieverConfig",
    "TrainResult",
    "__version__",
    "clean",
    "evaluate",
    "from_dataset",
    "judge",
    "load_beir",
    "load_cascade",
    "mine",
    "relabel",
    "to_dataset",
    "train_reranker",
    "train_retriever",
]

deprecated.install()


def __getattr__(name: str) -> Any:
    """`hardneg.load_config` (0.1) is `hardneg.load_cascade`; it warns until 0.3."""
    if name in deprecated.RENAMED_NAMES:
        deprecated.warn(f"hardneg.{name}", f"hardneg.{deprecated.RENAMED_NAMES[name]}")
        return globals()[deprecated.RENAMED_NAMES[name]]
    raise AttributeError(f"module 'hardneg' has no attribute {name!r}")
