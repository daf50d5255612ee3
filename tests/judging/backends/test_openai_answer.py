"""Answer-centric judging through an OpenAI-compatible server."""

from __future__ import annotations

from hardneg.data.io import read_instances
from hardneg.data.sample import sample_train_path
from hardneg.judging.backends.openai_answer import OpenAIAnswerJudge


def _completion(text: str) -> dict:
    return {"choices": [{"message": {"content": text}}], "usage": {"prompt_tokens": 50, "completion_tokens": 9}}


def test_answers_are_checked_against_the_passage_they_were_asked_about() -> None:
    inst = next(iter(read_instances(sample_train_path())))
    judge = OpenAIAnswerJudge("m", base_url="http://127.0.0.1:9/v1")
    first, second = inst.negative_ids[:2]
    prepared = judge._prepare(inst, [first, second])
    assert prepared.chunks == [[first], [second]]
    quote = " ".join(inst.negative(first).text.split()[:6])
    out = judge.output_from_completion(_completion(f"ANSWER: {quote}\nCOVERAGE: full"), [first])
    assert out.status == "ok" and out.better == [first] and out.tokens_out == 9
    # the same words are not in the other passage: NONE, and recorded as a span not in the passage
    out = judge.output_from_completion(_completion(f"ANSWER: {quote} and more\nCOVERAGE: full"), [second])
    assert out.status == "ok" and out.better == [] and out.worse == []
    assert "does not occur" in out.extra[f"answer:{second}"]["reason"]
    assert judge._passages == {}  # nothing held once the answers are read
    out = judge.output_from_completion(_completion("I think it is relevant."), [first])
    assert out.status == "parse_error"


def test_one_greedy_request_per_negative() -> None:
    inst = next(iter(read_instances(sample_train_path())))
    judge = OpenAIAnswerJudge("m", base_url="http://127.0.0.1:9/v1", max_tokens=64)
    prepared = judge._prepare(inst, inst.negative_ids[:2])
    assert prepared.chunks == [[d] for d in inst.negative_ids[:2]] and prepared.tokens_in > 0
    messages = prepared.prompts[0]
    assert messages[0]["role"] == "system" and inst.negatives[0].text[:30] in messages[-1]["content"]
    # the body it always sent: no response format, greedy, its own max_tokens
    assert judge.request_body(messages) == {"model": "m", "messages": messages, "temperature": 0.0, "max_tokens": 64}
    assert judge._passages == {d: [inst.negative(d).text, 1] for d in inst.negative_ids[:2]}
