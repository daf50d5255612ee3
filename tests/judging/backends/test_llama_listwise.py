"""The llama.cpp listwise judge on smollm2-135m: mechanics and failure modes only (its verdicts are noise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.backends.llama_listwise import LlamaListwiseJudge

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.slow, pytest.mark.shared]


@pytest.fixture(scope="module")
def instance(rlhn_stage1: Path) -> Instance:
    inst = next(iter(read_instances(rlhn_stage1)))
    # Short passages keep the tiny model's prompt small and fast.
    for passage in [*inst.positives, *inst.negatives]:
        passage.text = passage.text[:200]
    return inst


@pytest.fixture(scope="module")
def judge() -> Iterator[LlamaListwiseJudge]:
    judge = LlamaListwiseJudge("smollm2-135m", n_ctx=2048, max_tokens=48)
    yield judge
    judge.close()


def test_whatever_it_answers_is_recorded_never_clean_when_unparseable(
    judge: LlamaListwiseJudge, instance: Instance
) -> None:
    docids = instance.negative_ids[:3]
    out = judge.judge(instance, docids)
    assert out.status in ("ok", "parse_error")
    assert out.raw_response is not None and out.tokens_in > 0 and out.tokens_out > 0
    assert out.template_hash == judge.template.sha256
    if out.status == "ok":
        assert set(out.better or []) | set(out.worse or []) <= set(docids)
    else:
        assert out.reason and out.better is None and out.worse is None


def test_truncated_answer_is_a_parse_error(instance: Instance, judge: LlamaListwiseJudge) -> None:
    short = LlamaListwiseJudge("smollm2-135m", n_ctx=2048, max_tokens=1)
    short._llm = judge.llm  # same model file: reuse the loaded weights
    out = short.judge(instance, instance.negative_ids[:2])
    assert out.finish_reason == "length"
    assert out.status == "parse_error" and "truncated" in out.reason
    assert out.better is None


def test_prompt_that_does_not_fit_fails_with_a_reason(instance: Instance) -> None:
    tight = LlamaListwiseJudge("smollm2-135m", n_ctx=512, max_tokens=400)
    try:
        out = tight.judge(instance, instance.negative_ids)
        assert out.status == "failed"
        assert "exceeds n_ctx 512" in out.reason and out.tokens_out == 0
    finally:
        tight.close()


def test_chunks_are_merged_by_docid(instance: Instance, judge: LlamaListwiseJudge) -> None:
    chunked = LlamaListwiseJudge("smollm2-135m", n_ctx=2048, max_tokens=1, max_negatives_per_call=2)
    chunked._llm = judge.llm
    docids = instance.negative_ids[:3]
    out = chunked.judge(instance, docids)
    assert out.docids == docids  # two calls (2 + 1 negatives), one output
    assert out.status == "parse_error"  # any failed chunk fails the instance: no partial verdicts


def test_bad_arguments(instance: Instance, judge: LlamaListwiseJudge) -> None:
    assert judge.judge(instance, ["unknown"]).status == "failed"
    empty = judge.judge(instance, [])
    assert empty.status == "ok" and empty.better == [] and empty.worse == []
    with pytest.raises(ConfigError):
        LlamaListwiseJudge("smollm2-135m", n_ctx=512, max_tokens=600)
    with pytest.raises(ConfigError):
        LlamaListwiseJudge("smollm2-135m", template="no-such-template")
    assert judge.config()["template"] == "compact" and len(judge.config()["template_sha256"]) == 64
