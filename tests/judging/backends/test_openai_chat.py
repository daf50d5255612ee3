"""OpenAIJudge: strict JSON verdicts, Retry-After, the API key; then against a real OpenAI-compatible server
(llama-cpp-python + SmolLM2-135M) over HTTP.

Traffic goes through `FaultProxy` (a real HTTP service on 127.0.0.1) so the tests can count requests and, in the
fault test, break a seeded share of them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from hardneg.errors import ConfigError
from hardneg.judging.backends.openai_chat import (
    OpenAIJudge,
    _retry_after,
    completion_data,
    parse_json_verdict,
    reply_text,
    usage_tokens,
)
from hardneg.judging.cost import Budget, PriceTable, prompt_tokens
from hardneg.judging.store import JudgmentStore
from support import FaultPlan, FaultProxy
from support.api_judge import MODEL, small_instances
from support.proxy import prompt_key

CHAT = "/v1/chat/completions"


def _db_bytes(path: Path) -> bytes:
    """The store file and its WAL, as they are on disk."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.mark.slow
@pytest.mark.shared
def test_judge_many_real_server(llama_server, key_env, api_key, rlhn_stage1, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK's and httpx's debug logs too: the key must not be in any of them
    instances = small_instances(rlhn_stage1, 2, negatives=3)
    with FaultProxy(llama_server.url) as proxy:
        judge = OpenAIJudge(
            MODEL,
            base_url=proxy.base_url,
            api_key_env=key_env,
            template="compact",
            max_tokens=40,
            concurrency=2,
            json_schema="json_object",  # llama-cpp-python's structured-output form
            max_negatives_per_call=2,  # 3 negatives -> 2 calls per instance, merged
        )
        results = {i.query_id: (i, out) for i, out in judge.judge_many((i, i.negative_ids) for i in instances)}
        store_path = tmp_path / "judgments.sqlite"
        with JudgmentStore(store_path) as store:
            for qid, (_, out) in results.items():
                store.put(qid, 1, "api", judge.config(), out)

    assert set(results) == {i.query_id for i in instances}
    for instance, out in results.values():
        assert out.docids == instance.negative_ids  # chunks merged back in prompt order
        assert out.extra["calls"] == 2
        assert out.tokens_in > 0 and out.tokens_out > 0  # usage read from the responses
        assert out.status in ("ok", "parse_error"), out.reason
        if out.status == "ok":
            assert set(out.better) | set(out.worse) <= set(instance.negative_ids)
        else:
            assert out.better is None and out.reason
    assert proxy.requests[CHAT] == 4
    assert judge.stats["tokens_in"] == sum(o.tokens_in for _, o in results.values())
    # the key read from the environment reached the server (which requires it) ...
    assert f"Bearer {api_key}" in proxy.auth_headers
    # ... and is nowhere else
    assert api_key not in str(judge.config()) and "key" not in " ".join(judge.config())
    assert api_key not in caplog.text
    assert api_key.encode() not in _db_bytes(store_path)


@pytest.mark.slow
@pytest.mark.shared
def test_wrong_key_fails_without_retry_and_without_echo(llama_server, rlhn_stage1, monkeypatch) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    monkeypatch.setenv("HARDNEG_TEST_WRONG_KEY", wrong)
    (instance,) = small_instances(rlhn_stage1, 1)
    with FaultProxy(llama_server.url) as proxy:
        judge = OpenAIJudge(
            MODEL, base_url=proxy.base_url, api_key_env="HARDNEG_TEST_WRONG_KEY", template="compact", max_tokens=8
        )
        out = judge.judge(instance, instance.negative_ids)
    assert out.status == "failed" and "401" in out.reason and "1 attempt" in out.reason
    assert wrong not in out.reason
    assert proxy.requests[CHAT] == 1  # an auth error is not retried


@pytest.mark.slow
@pytest.mark.shared
def test_budget_stops_before_exceeding(llama_server, key_env, rlhn_stage1) -> None:
    instances = small_instances(rlhn_stage1, 4)
    prices = PriceTable({MODEL: {"input": 1.0, "output": 1.0}})
    with FaultProxy(llama_server.url) as proxy:
        judge = OpenAIJudge(
            MODEL, base_url=proxy.base_url, api_key_env=key_env, template="compact", max_tokens=40, concurrency=1
        )
        bounds = [prices.get(MODEL).cost(prompt_tokens(judge.render(i, i.negative_ids)), 40) for i in instances]
        judge.budget = Budget(2.2 * max(bounds), prices)  # room for about two calls, never four
        results = [out for _, out in judge.judge_many((i, i.negative_ids) for i in instances)]
    assert 1 <= len(results) <= 2 and proxy.requests[CHAT] == len(results)
    # the rest is left unjudged (not failed, not yielded) and reported
    assert judge.unjudged == [i.query_id for i in instances[len(results) :]]
    report = judge.budget.report()
    assert report["requests_refused"] >= 1 and report["requests_sent"] == len(results)
    real = sum(prices.get(MODEL).cost(o.tokens_in, o.tokens_out) for o in results)
    assert report["spent_usd"] == pytest.approx(real, abs=1e-6)
    assert real <= judge.budget.usd  # the server's own token counts stay under the cap


@pytest.mark.slow
@pytest.mark.shared
def test_faults_every_instance_judged_or_failed_once(llama_server, key_env, rlhn_stage1, tmp_path) -> None:
    instances = small_instances(rlhn_stage1, 6)
    # Seeded: with these prompts seed 126 injects every kind of fault, one hang among them (a hang costs the
    # client timeout, which must stay well above a real call's time on a loaded 2-core machine).
    plan = FaultPlan(
        error_500=0.12,
        rate_429=0.12,
        timeout=0.06,
        drop=0.08,
        bad_body=0.08,
        truncate=0.1,
        garbage=0.1,
        seed=126,
        retry_after_s=0.3,
        hang_s=46.0,
    )
    with FaultProxy(llama_server.url, plan) as proxy:
        judge = OpenAIJudge(
            MODEL,
            base_url=proxy.base_url,
            api_key_env=key_env,
            template="compact",
            max_tokens=40,
            concurrency=1,
            timeout=45,  # below hang_s: a hang becomes a client timeout
            max_retries=3,
            json_schema="json_object",
            backoff_base=0.05,
            backoff_max=0.3,
            seed=1,
        )
        # one instance's call always fails: it must end "failed", never clean
        doomed = instances[0]
        plan.permanent.add(prompt_key(judge.render(doomed, doomed.negative_ids)))
        store_path = tmp_path / "faults.sqlite"
        seen: list[str] = []
        with JudgmentStore(store_path) as store:
            for instance, out in judge.judge_many((i, i.negative_ids) for i in instances):
                seen.append(instance.query_id)
                store.put(instance.query_id, 1, "api", judge.config(), out)
            records = {r.query_id: r for r in store.iter_judgments(stage=1)}

    assert sorted(seen) == sorted(i.query_id for i in instances)  # each exactly once
    assert len(records) == len(instances)
    for qid, record in records.items():
        assert record.status in ("ok", "parse_error", "failed")
        if record.status != "ok":
            assert record.reason and record.better is None and record.worse is None, qid
    assert records[doomed.query_id].status == "failed"
    assert "HTTP 500" in records[doomed.query_id].reason and "after 4 attempt(s)" in records[doomed.query_id].reason
    # the faults really happened, and the judge retried through them
    kinds = {k for k, v in proxy.faults.items() if v}
    assert {"error_500", "rate_429", "timeout"} <= kinds and len(kinds) >= 5, proxy.faults
    assert judge.stats["retries"] >= 3
    # a truncated or garbage completion is a parse error with its reason, not an empty verdict (the model may add
    # parse errors of its own, never fewer)
    reasons = [r.reason for r in records.values() if r.status == "parse_error"]
    assert len(reasons) >= sum(proxy.faults[k] for k in ("truncate", "garbage")), (reasons, proxy.faults)
    if proxy.faults["truncate"]:
        assert any("truncated" in r for r in reasons)
    con = sqlite3.connect(store_path)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT query_id) FROM judgments").fetchone() == (6, 6)
    con.close()


DOCS = ["d1", "d2", "d3"]


def test_json_verdict_strict() -> None:
    out = parse_json_verdict('{"better": [2], "worse": [3, 2]}', DOCS, "stop")
    assert (out.status, out.better, out.worse) == ("ok", ["d2"], ["d3"])
    bad = {
        '{"better": [4], "worse": []}': "only 1..3",
        '{"better": [1]}': "exactly the keys",
        '{"better": [1], "worse": [], "why": "x"}': "exactly the keys",
        '{"better": ["1"], "worse": []}': "list of integers",
        '{"better": [true], "worse": []}': "list of integers",
        "<verdict>[]</verdict>": "not JSON",
        "": "empty",
    }
    for text, reason in bad.items():
        out = parse_json_verdict(text, DOCS, "stop")
        assert out.status == "parse_error" and reason in out.reason, (text, out.reason)
        assert out.better is None and out.worse is None  # never "no false negatives"
    assert "truncated" in parse_json_verdict('{"better": [], "worse": []}', DOCS, "length").reason


def test_retry_after_header_forms() -> None:
    class Resp:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class Exc(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Resp(headers)

    assert _retry_after(Exc({"retry-after": "2"})) == 2.0
    assert _retry_after(Exc({"retry-after-ms": "250"})) == 0.25
    assert 0 <= _retry_after(Exc({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) <= 1  # in the past
    assert _retry_after(Exc({})) is None


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARDNEG_NO_SUCH_KEY", raising=False)
    judge = OpenAIJudge("gpt-4o-mini", api_key_env="HARDNEG_NO_SUCH_KEY")
    with pytest.raises(ConfigError, match="HARDNEG_NO_SUCH_KEY"):
        judge._api_key()
    with pytest.raises(ConfigError, match="json_schema"):
        OpenAIJudge("m", json_schema="yes")
    assert "api_key" not in json.dumps(judge.config()).lower()


def test_completion_fields() -> None:
    data = {"model": "m", "choices": [{"message": {"content": "yes"}}], "usage": {"prompt_tokens": 7}}
    assert completion_data(data) is data  # a Batch API body as it is

    class Completion:  # the SDK's object
        def model_dump(self) -> dict:
            return data

    assert completion_data(Completion()) == data
    assert reply_text(data) == "yes" and usage_tokens(data) == {"tokens_in": 7, "tokens_out": 0}
    assert reply_text({"choices": []}) == "" and reply_text({"choices": [{"message": {"content": None}}]}) == ""
    assert usage_tokens({"usage": None}) == {"tokens_in": 0, "tokens_out": 0}
    out = OpenAIJudge("m", template="compact").output_from_completion(
        {**data, "choices": [{"message": {"content": None}, "finish_reason": "stop"}]}, ["d1"]
    )
    assert out.status == "parse_error" and out.tokens_in == 7  # no text is never "no false negatives"
