"""The local answer-centric judge: whatever a small model writes is recorded, never read as clean."""

from __future__ import annotations

import pytest

from hardneg.data.io import read_instances
from hardneg.data.sample import sample_train_path
from hardneg.judging.backends.llama_answer import LlamaAnswerJudge


def test_config_is_the_call_identity() -> None:
    judge = LlamaAnswerJudge("qwen2.5-coder-1.5b")
    assert judge.kind == "llm-answer" and "ANSWER:" in judge.config()["prompt"]["user"]
    assert LlamaAnswerJudge("qwen2.5-coder-1.5b", max_tokens=64).config() != judge.config()


@pytest.mark.slow
def test_answers_of_a_real_small_model() -> None:
    pytest.importorskip("llama_cpp")
    inst = next(iter(read_instances(sample_train_path())))
    judge = LlamaAnswerJudge("smollm2-135m", n_ctx=2048, max_tokens=48, max_passage_chars=300)
    try:
        out = judge.judge(inst, inst.negative_ids[:2])
    finally:
        judge.close()
    assert out.status in ("ok", "parse_error")
    if out.status == "ok":
        assert set(out.better or []) | set(out.worse or []) <= set(inst.negative_ids[:2])
        assert set(out.scores) == set(inst.negative_ids[:2])
    else:
        assert out.better is None and out.reason
    assert out.tokens_out > 0 and all(f"answer:{d}" in out.extra for d in inst.negative_ids[:2])
