"""Judging one stage over a batch of instances in memory: no file, no store.

This is the unit of work the cascade runner is built on, and what a distributed worker calls: a judge and
(instance, docids) pairs in, each instance's `JudgeOutput` out, checked against what the stage reads. An ok
answer that lacks what the stage reads (no verdict lists from a listwise judge, a missing score) becomes
`failed`, so that it is retried and never read as "no false negatives". Storing the results is the caller's job.

Example (the shipped sample, the embedding judge; runs offline)::

    from hardneg.data.io import read_instances
    from hardneg.data.sample import sample_train_path
    from hardneg.judging import build_judge, judge_batch

    instances = list(read_instances(sample_train_path()))[:4]
    judge = build_judge("embedding")
    for call in judge_batch(judge, [(inst, inst.negative_ids) for inst in instances]):
        print(call.query_id, call.output.status, max(call.output.scores.values()))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.base import Judge
from hardneg.judging.registry import LISTWISE_BACKENDS
from hardneg.judging.verdicts import JudgeOutput

StageMode = Literal["verdict", "score"]
STAGE_MODES: tuple[str, ...] = ("verdict", "score")


@dataclass(slots=True)
class JudgeCall:
    """One instance's answer from a judge: the negatives asked about and the checked output."""

    query_id: str
    docids: list[str]
    output: JudgeOutput


def mode_of(judge: Judge) -> StageMode:
    """``verdict`` for judges that answer with better / worse lists, ``score`` for pointwise judges."""
    return "verdict" if judge.kind in LISTWISE_BACKENDS else "score"


def check_output(mode: StageMode, out: JudgeOutput, docids: Sequence[str]) -> JudgeOutput:
    """An ok answer that lacks what a `mode` stage reads is marked failed (retried), never a clean verdict."""
    if not out.docids:
        out.docids = list(docids)
    if out.status != "ok":
        return out
    if mode == "verdict":
        if out.better is None or out.worse is None:
            out.status, out.reason = "failed", "listwise stage: the judge returned no better/worse verdict"
        return out
    scores = out.scores or {}
    missing = [d for d in docids if d not in scores]
    if missing:
        out.status, out.reason = "failed", f"the judge returned no score for {len(missing)} negative(s)"
    return out


def judge_items(
    judge: Judge, items: Iterable[tuple[Instance, Sequence[str]]], *, mode: StageMode | None = None
) -> Iterator[tuple[Instance, JudgeOutput]]:
    """Stream (instance, checked output) as the judge finishes each one (any order; concurrent judges overlap).

    Only the docids of the calls in flight are held, so `items` may be a generator over millions of instances.
    """
    mode = mode or mode_of(judge)
    if mode not in STAGE_MODES:
        raise ConfigError(f"expected one of {', '.join(STAGE_MODES)}; got {mode!r}", param="mode")
    asked: dict[str, list[str]] = {}

    def tracked() -> Iterator[tuple[Instance, list[str]]]:
        for instance, docids in items:
            asked[instance.query_id] = list(docids)
            yield instance, asked[instance.query_id]

    for instance, out in judge.judge_many(tracked()):
        yield instance, check_output(mode, out, asked.pop(instance.query_id))


def judge_batch(
    judge: Judge, items: Iterable[tuple[Instance, Sequence[str]]], *, mode: StageMode | None = None
) -> list[JudgeCall]:
    """Judge a batch of (instance, docids) and return one `JudgeCall` per instance the judge answered.

    `mode` (``verdict`` or ``score``) defaults to the judge's kind. Instances a budget refused are not returned.
    """
    calls = []
    for instance, out in judge_items(judge, items, mode=mode):
        calls.append(JudgeCall(instance.query_id, list(out.docids), out))
    return calls
