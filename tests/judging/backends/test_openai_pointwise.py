"""Pointwise judging through an OpenAI-compatible server: scores from the first token's top logprobs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardneg.data.io import read_instances
from hardneg.data.sample import sample_train_path
from hardneg.judging import JudgmentStore, build_judge, parse_config, run_cascade
from hardneg.judging.backends.openai_pointwise import OpenAIPointwiseJudge


def _completion(tokens: dict[str, float], content: str = "yes") -> dict:
    top = [{"token": t, "logprob": lp} for t, lp in tokens.items()]
    return {
        "model": "m",
        "choices": [
            {"message": {"content": content}, "logprobs": {"content": [{"token": content, "top_logprobs": top}]}}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 1},
    }


def test_scores_from_top_logprobs() -> None:
    judge = OpenAIPointwiseJudge("m", base_url="http://127.0.0.1:9/v1")
    out = judge.output_from_completion(
        _completion({"yes": math.log(0.6), " Yes": math.log(0.1), "no": math.log(0.1)}), ["d"]
    )
    assert out.status == "ok" and out.scores == pytest.approx({"d": 0.7 / 0.8}) and out.tokens_in == 100
    graded = OpenAIPointwiseJudge("m", base_url="http://127.0.0.1:9/v1", scale="graded")
    out = graded.output_from_completion(_completion({"3": math.log(0.5), "1": math.log(0.5)}, "3"), ["d"])
    assert out.scores == pytest.approx({"d": 2.0})
    assert graded.config()["scale"] == "graded" and judge.config() != graded.config()


def test_no_answer_token_is_a_parse_error_never_a_zero() -> None:
    judge = OpenAIPointwiseJudge("m", base_url="http://127.0.0.1:9/v1")
    out = judge.output_from_completion(_completion({"maybe": -0.1, "The": -2.0}, "maybe"), ["d"])
    assert out.status == "parse_error" and out.scores is None and "no answer token" in out.reason
    bare = {"choices": [{"message": {"content": "yes"}}], "usage": {}}
    out = judge.output_from_completion(bare, ["d"])
    assert out.status == "parse_error" and "no logprobs" in out.reason


def test_one_request_per_negative() -> None:
    inst = next(iter(read_instances(sample_train_path())))
    judge = OpenAIPointwiseJudge("m", base_url="http://127.0.0.1:9/v1")
    prepared = judge._prepare(inst, inst.negative_ids[:3])
    assert prepared.chunks == [[d] for d in inst.negative_ids[:3]]
    body = judge.request_body(prepared.prompts[0])
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["messages"][0]["role"] == "system"
    assert list(body) == ["model", "messages", "temperature", "max_tokens", "logprobs", "top_logprobs"]
    assert (body["model"], body["temperature"], body["top_logprobs"]) == ("m", 0.0, 20)
    assert inst.negatives[0].text[:30] in body["messages"][1]["content"]


@pytest.fixture(scope="module")
def logprobs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("uvicorn")
    from support import LlamaServer

    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer("smollm2-135m", n_ctx=2048, n_threads=1, logits_all=True, log_path=log) as server:
        yield server


@pytest.mark.slow
def test_against_a_real_server_in_a_cascade(logprobs_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instances = list(read_instances(sample_train_path()))[:2]
    for inst in instances:
        inst.negatives = inst.negatives[:2]
    stage = {"name": "p", "backend": "openai-pointwise", "t_better": 0.5,
             "params": {"model": "local-judge", "base_url": logprobs_server.base_url, "scale": "graded"}}  # fmt: skip
    stage["t_better"] = 2.0
    config = parse_config({"stages": [stage]})
    with JudgmentStore(tmp_path / "j.sqlite") as store:
        report = run_cascade(instances, config, store)
        assert report.stages[0].judged_now == 2 and report.failed == 0
        for record in store.iter_judgments(stage=1):
            assert set(record.scores) == set(record.docids) and all(0.0 <= s <= 3.0 for s in record.scores.values())
        again = run_cascade(instances, config, store)  # resumed: nothing sent
        assert again.stages[0].judged_now == 0 and again.stages[0].reused == 2
    judge = build_judge("openai-pointwise", model="local-judge", base_url=logprobs_server.base_url)
    out = judge.judge(instances[0], instances[0].negative_ids)
    assert out.status == "ok" and all(0.0 <= s <= 1.0 for s in out.scores.values())
