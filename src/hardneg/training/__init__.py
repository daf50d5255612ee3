"""Fine-tuning retrievers (bi-encoders) and rerankers (cross-encoders) on Tevatron-style instances.

Heavy libraries (torch, sentence-transformers) are imported inside the training functions.
"""

from hardneg.training.common import TrainResult, read_metadata
from hardneg.training.data import SamplingStats, build_examples
from hardneg.training.reranker import RerankerConfig, train_reranker
from hardneg.training.retriever import RetrieverConfig, train_retriever
from hardneg.training.teacher import Teacher, parse_teacher, score_instances

__all__ = [
    "RerankerConfig",
    "RetrieverConfig",
    "SamplingStats",
    "Teacher",
    "TrainResult",
    "build_examples",
    "parse_teacher",
    "read_metadata",
    "score_instances",
    "train_reranker",
    "train_retriever",
]
