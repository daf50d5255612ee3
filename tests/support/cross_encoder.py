"""A small cross-encoder trained on the shipped sample, once per test session (shared by the rescoring,
teacher and distillation tests), and a deterministic stand-in scorer for the fast tests.

`sample_cross_encoder(tmp_path_factory)` trains MiniLM with a one-logit head for a few steps on
`hardneg.data.sample` (about 20-30 s on 2 cores) into the session's base temp folder; later calls reuse it.
Its scores are far from a good reranker's, but they are its own: tests compare what hardneg does with what
the model says.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hardneg.data.sample import sample_train_path


def sample_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's sample cross-encoder folder (trained on first use)."""
    from hardneg.training.reranker import RerankerConfig, train_reranker

    folder = tmp_path_factory.getbasetemp() / "sample-cross-encoder"
    with open(tmp_path_factory.getbasetemp() / ".sample-cross-encoder.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "config.json").is_file():
            train_reranker(
                sample_train_path(), folder,
                RerankerConfig(negatives=3, batch_size=8, max_length=64, lr=1e-4, max_steps=6, warmup=0, quiet=True),
            )  # fmt: skip
    return folder


class StubScorer:
    """A cross-encoder stand-in: a fixed logit per passage text (a hash), or the values of `table`
    (keyed by passage text, matched by prefix). Counts the pairs it scored."""

    backend = "stub"
    activation = "sigmoid"
    max_length = 512
    query_prefix = ""
    passage_prefix = ""

    def __init__(self, table: dict[str, float] | None = None) -> None:
        self.table = table or {}
        self.pairs = 0
        self.calls = 0

    def value(self, text: str) -> float:
        for prefix, value in self.table.items():
            if text.startswith(prefix):
                return value
        digest = hashlib.sha256(text.encode()).digest()
        return (int.from_bytes(digest[:4], "little") / 2**32) * 8 - 4

    def logits(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32) -> np.ndarray:
        self.pairs += len(pairs)
        self.calls += 1
        return np.array([self.value(p) for _q, p in pairs], dtype=np.float32)

    def activate(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
