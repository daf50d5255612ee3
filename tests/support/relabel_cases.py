"""Hand-built instances and verdicts for relabel tests, whose answer is known: docids are `{qid}-p{i}` for
positives and `{qid}-n{i}` for negatives (negative i scores i)."""

from __future__ import annotations

import random

from hardneg.data.records import Instance, Passage
from hardneg.judging.verdicts import FinalVerdict


def make(qid: str, negs: int = 6, pos: int = 1, subset: str = "fiqa", shuffle_seed: int | None = None) -> Instance:
    negatives = [Passage(f"{qid}-n{i}", f"negative {i} of {qid}", extra={"score": float(i)}) for i in range(negs)]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(negatives)
    return Instance(
        query_id=qid,
        query=f"query {qid}",
        positives=[Passage(f"{qid}-p{i}", f"positive {i}") for i in range(pos)],
        negatives=negatives,
        subset=subset,
        extra={"note": qid},
    )


def verdict(qid: str, better: list[int], worse: list[int], status: str = "ok", stage: int = 2) -> FinalVerdict:
    return FinalVerdict(
        query_id=qid,
        stage=stage,
        better=[f"{qid}-n{i}" for i in better],
        worse=[f"{qid}-n{i}" for i in worse],
        status=status,  # type: ignore[arg-type]
    )
