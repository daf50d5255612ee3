"""hardneg: find and fix false negatives in retrieval training data.

The pipeline, each stage a function over data in memory (instances, a `datasets.Dataset`) or on disk::

    import hardneg
    from hardneg.data.sample import sample_beir_dir

    train = hardneg.mine(sample_beir_dir(), split="train", negatives=8)       # list[Instance]
    report = hardneg.judge(train, None, "judgments.sqlite")                   # the default local cascade
    cleaned = hardneg.relabel(train, report.verdicts, treatment="rlhn")
    # or both at once: hardneg.clean(train, store="judgments.sqlite")
    model = hardneg.train_retriever(cleaned, "models/rlhn")
    print(hardneg.evaluate(model.output_dir, sample_beir_dir(), split="test").metrics)

`hardneg.mine`, `hardneg.judge`, `hardneg.relabel` and `hardneg.evaluate` are also the packages of their stage
(`from hardneg.judge import Judge` is the judge contract); calling them runs the stage.
"""

from hardneg import evaluate, judge, mine, relabel
from hardneg.data.beir import BeirData, load_beir
from hardneg.data.records import Instance, Passage
from hardneg.data.source import from_dataset, to_dataset
from hardneg.errors import ConfigError, HardnegError, InputError
from hardneg.judge.cascade import CascadeConfig, CascadeReport, load_config
from hardneg.judge.store import JudgmentStore
from hardneg.judge.verdicts import FinalVerdict, JudgeOutput
from hardneg.mine.config import MineConfig, MineReport
from hardneg.pipeline import CleanReport, clean
from hardneg.relabel.treatments import RelabelOptions, RelabelReport
from hardneg.train.reranker import RerankerConfig, train_reranker
from hardneg.train.retriever import RetrieverConfig, train_retriever

__version__ = "0.1.0"

__all__ = [
    "BeirData",
    "CascadeConfig",
    "CascadeReport",
    "CleanReport",
    "ConfigError",
    "FinalVerdict",
    "HardnegError",
    "InputError",
    "Instance",
    "JudgeOutput",
    "JudgmentStore",
    "MineConfig",
    "MineReport",
    "Passage",
    "RelabelOptions",
    "RelabelReport",
    "RerankerConfig",
    "RetrieverConfig",
    "__version__",
    "clean",
    "evaluate",
    "from_dataset",
    "judge",
    "load_beir",
    "load_config",
    "mine",
    "relabel",
    "to_dataset",
    "train_reranker",
    "train_retriever",
]
