"""Fine-tuning retrievers (bi-encoders) and rerankers (cross-encoders) on Tevatron-style instances.

Heavy libraries (torch, sentence-transformers) are imported inside the training functions.
"""

from hardneg.train.common import TrainResult, read_metadata
from hardneg.train.data import SamplingStats, build_examples
from hardneg.train.reranker import RerankerConfig, train_reranker
from hardneg.train.retriever import RetrieverConfig, train_retriever

__all__ = [
    "RerankerConfig",
    "RetrieverConfig",
    "SamplingStats",
    "TrainResult",
    "build_examples",
    "read_metadata",
    "train_reranker",
    "train_retriever",
]
