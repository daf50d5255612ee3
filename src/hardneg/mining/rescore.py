"""Rescoring mined candidates with a cross-encoder (`MineConfig.rescore`, `hardneg mine --rescore`).

For each query, the top `rescore_depth` documents of the first stage (default: `range_end`) and the query's
positives are scored by the cross-encoder, in batches that span queries (pairs sorted by length inside the
scorer). The candidates are then re-ranked by those scores: the miner applies its range, margins, score cuts and
sampling to that order, and the margins compare with the cross-encoder's scores of the positives.

Scores are on the model's own scale (`hardneg.retrieval.cross_encoder`: sigmoid for the one-label models `hardneg
train reranker` writes), as `CrossEncoder.predict` returns them; the order follows the raw logits, so two
documents whose sigmoid rounds to the same value keep their order. Ties keep the first-stage order.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hardneg.data.records import Passage, passage_text
from hardneg.mining.config import MineConfig
from hardneg.progress import StageProgress
from hardneg.retrieval.cross_encoder import check_cross_encoder, load_cross_encoder

# Queries are scored together until a chunk holds this many batches of pairs (then progress is reported).
_BATCHES_PER_CHUNK = 16


def _negated(values: Any, i: int) -> float:
    return -float(values[i])


def check_rescore(config: MineConfig) -> None:
    """Before any mining: `config.rescore`, when set, is a cross-encoder folder (`ConfigError` naming `rescore`
    for a missing folder or a bi-encoder, `hardneg.retrieval.cross_encoder.check_cross_encoder`)."""
    if config.rescore is not None:
        check_cross_encoder(config.rescore, param="rescore")


@dataclass
class Rescored:
    """One query after rescoring: the rescored list and the cross-encoder's scores."""

    ranked: list[tuple[int, float]]  # (doc index, cross-encoder score), best first: the top `depth`, re-sorted
    scores: dict[str, float] = field(default_factory=dict)  # docid -> score, for the ranked docs and positives
    pairs: int = 0  # pairs scored for this query


class Rescorer:
    """Scores each query's first-stage candidates and positives with the cross-encoder of `config.rescore`.

    `scorer` may be passed to reuse a loaded cross-encoder (`hardneg.retrieval.cross_encoder.load_cross_encoder`).
    """

    def __init__(
        self,
        config: MineConfig,
        corpus: Mapping[str, Passage],
        docids: Sequence[str],
        doc_index: Mapping[str, int],
        *,
        scorer: Any = None,
        progress: StageProgress | None = None,
        total_queries: int = 0,
    ) -> None:
        if scorer is None:
            if config.rescore is None:
                raise ValueError("Rescorer needs config.rescore or a scorer")
            scorer = load_cross_encoder(
                config.rescore, backend=config.backend, max_length=config.rescore_max_length, param="rescore"
            )
        self.scorer = scorer
        self.config = config
        self.corpus = corpus
        self.docids = docids
        self.doc_index = doc_index
        self.depth = config.depth
        self.progress = progress
        self.total_queries = total_queries
        self.done_queries = 0
        self.pairs_scored = 0

    @property
    def backend(self) -> str:
        return str(getattr(self.scorer, "backend", "torch"))

    def _text(self, index: int) -> str:
        return passage_text(self.corpus[self.docids[index]], with_title=self.config.use_title)

    def rescore_block(
        self, queries: Sequence[str], positives: Sequence[Sequence[str]], hits: Sequence[Sequence[tuple[int, float]]]
    ) -> list[Rescored]:
        """Rescore one block of queries: their texts, positive docids and first-stage hits (doc index, score)."""
        plans: list[list[int]] = []
        for ranked, pos in zip(hits, positives, strict=True):
            head = [index for index, _ in ranked[: self.depth]]
            present = set(head)
            extra = [self.doc_index[d] for d in pos if self.doc_index[d] not in present]
            plans.append(head + extra)
        out: list[Rescored] = []
        chunk = max(1, self.config.batch_size * _BATCHES_PER_CHUNK)
        start = 0
        while start < len(plans):
            stop, size = start, 0
            while stop < len(plans) and (size == 0 or size + len(plans[stop]) <= chunk):
                size += len(plans[stop])
                stop += 1
            pairs = [(queries[q], self._text(i)) for q in range(start, stop) for i in plans[q]]
            logits = self.scorer.logits(pairs, batch_size=self.config.batch_size)
            scores = self.scorer.activate(logits)
            offset = 0
            for q in range(start, stop):
                plan = plans[q]
                n_head = min(len(hits[q]), self.depth)
                part_logits = logits[offset : offset + len(plan)]
                part_scores = scores[offset : offset + len(plan)]
                offset += len(plan)
                # Stable: equal logits keep the first-stage order.
                order = sorted(range(n_head), key=functools.partial(_negated, part_logits))
                out.append(
                    Rescored(
                        ranked=[(plan[i], float(part_scores[i])) for i in order],
                        scores={self.docids[i]: float(s) for i, s in zip(plan, part_scores, strict=True)},
                        pairs=len(plan),
                    )
                )
            self.pairs_scored += len(pairs)
            self.done_queries += stop - start
            if self.progress:
                self.progress("rescore", self.done_queries, self.total_queries or self.done_queries)
            start = stop
        return out
