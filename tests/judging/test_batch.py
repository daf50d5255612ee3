"""One stage over a batch in memory: what a worker calls, and what the cascade runner is built on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.data.sample import sample_train_path
from hardneg.errors import ConfigError
from hardneg.judging import Judge, JudgeOutput, build_judge, judge_batch
from hardneg.judging.batch import check_output, judge_items, mode_of


class _Partial(Judge):
    """Scores only the first negative: an answer the score stage cannot use (a fault a real judge may make)."""

    kind = "partial"

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        return JudgeOutput(docids=list(docids), scores={docids[0]: 1.0})


def test_check_output_never_passes_an_incomplete_answer() -> None:
    scored = check_output("score", JudgeOutput(docids=["a", "b"], scores={"a": 0.1}), ["a", "b"])
    assert scored.status == "failed" and "no score for 1" in scored.reason
    listwise = check_output("verdict", JudgeOutput(docids=["a"], scores={"a": 1.0}), ["a"])
    assert listwise.status == "failed"
    filled = check_output("score", JudgeOutput(docids=[], scores={"a": 0.5}), ["a"])
    assert filled.status == "ok" and filled.docids == ["a"]
    with pytest.raises(ConfigError) as raised:
        list(judge_items(_Partial(), [], mode="pairwise"))  # type: ignore[arg-type]
    assert raised.value.param == "mode"


def test_modes_follow_the_backend() -> None:
    assert mode_of(_Partial()) == "score"
    assert mode_of(build_judge("openai", model="m", base_url="http://127.0.0.1:9/v1")) == "verdict"


def test_a_batch_of_partial_answers_is_failed_not_clean() -> None:
    instances = list(read_instances(sample_train_path()))[:3]
    calls = judge_batch(_Partial(), [(i, i.negative_ids) for i in instances])
    assert [c.query_id for c in calls] == [i.query_id for i in instances]
    assert all(c.output.status == "failed" for c in calls)


@pytest.mark.slow
def test_embedding_judge_on_a_batch_in_memory() -> None:
    instances = list(read_instances(sample_train_path()))[:5]
    judge = build_judge("embedding")
    try:
        calls = judge_batch(judge, [(i, i.negative_ids[:3]) for i in instances])
    finally:
        judge.close()
    assert sorted(c.query_id for c in calls) == sorted(i.query_id for i in instances)
    for call in calls:
        assert call.output.status == "ok" and set(call.output.scores) == set(call.docids) and len(call.docids) == 3
