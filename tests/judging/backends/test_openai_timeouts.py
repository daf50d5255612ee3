"""Client timeouts: a request the client gave up on may still run, and be billed, on the server.

Against the real llama.cpp server (SmolLM2-135M) through `FaultProxy`, whose hang fault holds a request until
the client's timeout fires: a timeout is recorded as a timeout, counted as possibly billed in the stage report
and in `Budget.report()`, and under --budget the cost spent includes it (charged at its upper bound), so that a
retry is paid out of what is really left. `timeout: auto` (the default): the ceiling until 5 answers arrived,
then max(60 s, 4 x the slowest answer), capped by the ceiling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.backends.openai_chat import (
    AUTO_TIMEOUT_AFTER,
    AUTO_TIMEOUT_CEILING,
    AUTO_TIMEOUT_FACTOR,
    AUTO_TIMEOUT_FLOOR,
    OpenAIJudge,
)
from hardneg.judging.cost import PriceTable, prompt_tokens
from hardneg.judging.store import JudgmentStore
from support import FaultPlan, FaultProxy
from support.api_judge import MODEL
from support.slow_server import SlowServer

runner = CliRunner()
CHAT = "/v1/chat/completions"
PRICES = {MODEL: {"input": 1000.0, "output": 2000.0}}  # USD per 1M tokens: large enough to see each call
MAX_TOKENS = 24


def short_instances(sample_train: Path, n: int) -> list[Instance]:
    """The first n instances of the shipped sample cut short (2 negatives, 120-character passages), so that a 135M
    model on a small shared CPU answers in a second or two."""
    out = []
    for instance in read_instances(sample_train):
        instance.negatives = instance.negatives[:2]
        instance.positives = instance.positives[:1]
        for passage in instance.positives + instance.negatives:
            passage.text = passage.text[:120]
        out.append(instance)
        if len(out) == n:
            break
    return out


def params(base_url: str, key_env: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "base_url": base_url,
        "api_key_env": key_env,
        "template": "compact",
        "json_schema": "json_object",
        "max_tokens": MAX_TOKENS,
        "concurrency": 2,
        "backoff_base": 0.05,
        "backoff_max": 0.1,
        **extra,
    }


def run_judge(tmp_path: Path, file: Path, name: str, stage_params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    config = tmp_path / f"{name}.yaml"
    stage = {"name": "api", "backend": "openai", "params": stage_params}
    config.write_text(yaml.safe_dump({"name": name, "stages": [stage]}), encoding="utf-8")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES), encoding="utf-8")
    args = ["judge", str(file), "--store", str(tmp_path / f"{name}.db"), "--config", str(config)]
    result = runner.invoke(app, [*args, "--budget", "100", "--prices", str(prices), "--json"])
    assert result.exit_code in (0, 3), result.output
    return result.exit_code, json.loads(result.stdout)


def upper_bound(instances: list[Instance], judge: OpenAIJudge) -> float:
    """What a timed-out call of each instance is charged: its prompt and max_tokens at the table's price."""
    price = PriceTable(PRICES).get(MODEL)
    return sum(price.cost(prompt_tokens(judge.render(i, i.negative_ids), MODEL), MAX_TOKENS) for i in instances)


@pytest.mark.slow
def test_timeouts_are_recorded_counted_and_charged(llama_server, key_env, sample_train: Path, tmp_path: Path) -> None:
    instances = short_instances(sample_train, 2)
    file = tmp_path / "two.jsonl"
    write_instances(file, instances)
    judge = OpenAIJudge(MODEL, base_url="http://unused", template="compact", json_schema="json_object")
    bound = upper_bound(instances, judge)

    # every request hangs past the client's 1 s timeout, and is not retried: the calls fail as timeouts
    with FaultProxy(llama_server.url, FaultPlan(timeout=1.0, hang_s=5.0)) as proxy:
        code, report = run_judge(tmp_path, file, "hang", params(proxy.base_url, key_env, timeout=1, max_retries=0))
    assert proxy.faults["timeout"] == proxy.requests[CHAT] == 2
    assert code == 3 and report["failures_now"] == {"timeout": 2}
    assert report["stages"][0]["possibly_billed"] == 2
    budget = report["budget"]
    assert budget["possibly_billed"] == 2
    assert budget["possibly_billed_usd"] == pytest.approx(bound, rel=1e-6)
    assert budget["spent_usd"] == pytest.approx(bound, rel=1e-6)  # nothing was answered, yet this may be owed
    with JudgmentStore(tmp_path / "hang.db", readonly=True) as store:
        records = list(store.iter_judgments())
    assert len(records) == 2 and all(r.status == "failed" and "Timeout" in r.reason for r in records)

    # the first attempt of each call hangs, its retry is answered: spent = the answers + the timed-out attempts
    # (the timeout, 60 s, well above a real answer's time even on a loaded shared machine; the hang above it)
    plan = FaultPlan(timeout=1.0, hang_s=120.0, only_first_attempt=True)
    with FaultProxy(llama_server.url, plan) as proxy:
        code, report = run_judge(tmp_path, file, "retry", params(proxy.base_url, key_env, timeout=60, max_retries=1))
    assert proxy.faults["timeout"] == 2 and proxy.requests[CHAT] == 4 and sum(proxy.delivered.values()) == 2
    assert report["failures_now"].get("timeout", 0) == 0  # answered on the retry (a parse error may remain)
    assert report["stages"][0]["possibly_billed"] == 2
    with JudgmentStore(tmp_path / "retry.db", readonly=True) as store:
        records = list(store.iter_judgments())
    assert len(records) == 2 and all(r.tokens_in > 0 for r in records)
    price = PriceTable(PRICES).get(MODEL)
    answered = sum(price.cost(r.tokens_in, r.tokens_out) for r in records)
    budget = report["budget"]
    assert budget["possibly_billed"] == 2 and budget["possibly_billed_usd"] == pytest.approx(bound, rel=1e-6)
    assert budget["spent_usd"] == pytest.approx(answered + bound, rel=1e-6)


def test_auto_timeout_is_the_ceiling_until_5_answers_then_4x_the_slowest() -> None:
    judge = OpenAIJudge(MODEL, base_url="http://127.0.0.1:9/v1")  # timeout "auto" is the default
    assert judge.settings.auto_timeout and judge._request_timeout() == AUTO_TIMEOUT_CEILING == 600.0
    assert (AUTO_TIMEOUT_AFTER, AUTO_TIMEOUT_FLOOR, AUTO_TIMEOUT_FACTOR) == (5, 60.0, 4.0)
    for latency in (1.0, 2.0, 30.0, 4.0):
        judge._latencies.append(latency)
        assert judge._request_timeout() == 600.0  # fewer than 5 answers: the ceiling
    judge._latencies.append(5.0)
    assert judge._request_timeout() == 120.0  # 4 x the slowest (30 s)
    judge._latencies[:] = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert judge._request_timeout() == 60.0  # never below the floor
    judge._latencies.append(400.0)
    assert judge._request_timeout() == 600.0  # never above the ceiling
    fixed = OpenAIJudge(MODEL, base_url="http://127.0.0.1:9/v1", timeout=7.5)
    fixed._latencies.extend([1.0] * 10)
    assert fixed._request_timeout() == 7.5
    with pytest.raises(ConfigError, match="timeout"):
        OpenAIJudge(MODEL, base_url="http://127.0.0.1:9/v1", timeout="soon")


@pytest.mark.slow
def test_auto_timeout_follows_the_real_answers(llama_server, key_env, sample_train: Path) -> None:
    instances = short_instances(sample_train, AUTO_TIMEOUT_AFTER + 1)
    with FaultProxy(llama_server.url) as proxy:
        judge = OpenAIJudge(**params(proxy.base_url, key_env, concurrency=1, max_tokens=8))
        used: list[float] = []
        real = judge._request_timeout

        def spy() -> float:  # records the timeout of each request sent
            used.append(real())
            return used[-1]

        judge._request_timeout = spy  # type: ignore[method-assign]
        outputs = [out for _, out in judge.judge_many((i, i.negative_ids) for i in instances)]
    assert len(outputs) == len(used) == proxy.requests[CHAT] == AUTO_TIMEOUT_AFTER + 1
    assert used[:AUTO_TIMEOUT_AFTER] == [AUTO_TIMEOUT_CEILING] * AUTO_TIMEOUT_AFTER
    latencies = judge._latencies
    assert len(latencies) == len(instances) and all(t > 0 for t in latencies)
    # one call at a time: request k (k > 5) was sent after k-1 answers
    for k in range(AUTO_TIMEOUT_AFTER, len(used)):
        expected = min(AUTO_TIMEOUT_CEILING, max(AUTO_TIMEOUT_FLOOR, AUTO_TIMEOUT_FACTOR * max(latencies[:k])))
        assert used[k] == pytest.approx(expected)
    assert judge._request_timeout() == pytest.approx(max(AUTO_TIMEOUT_FLOOR, AUTO_TIMEOUT_FACTOR * max(latencies)))


# -- a server slower than the client's timeout: possibly billed calls stay bounded over runs (issue 20) -------------


def test_the_timeout_grows_after_each_timeout_of_an_instance_up_to_a_cap() -> None:
    judge = OpenAIJudge(MODEL, base_url="http://unused", template="compact", timeout=30)
    assert [judge._grown_timeout(n) for n in range(6)] == [30, 60, 120, 240, 480, 600]
    assert OpenAIJudge(MODEL, base_url="http://unused", timeout=900)._grown_timeout(3) == 900
    with pytest.raises(ConfigError, match="max_timeouts"):
        OpenAIJudge(MODEL, base_url="http://unused", max_timeouts=0)


@pytest.mark.slow  # a few seconds: the openai client and OpenAI's tokenizer load
def test_possibly_billed_timeouts_are_bounded_over_runs(
    sample_train: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: with the server slower than the client timeout, 5 instances cost 30 possibly billed requests per
    run (max_retries 5), 90 after three runs. Now each instance pays at most `max_timeouts` over all runs, and
    `--retry-failed` sends it again (at most `max_timeouts` more)."""
    monkeypatch.setenv("SLOW_KEY", "sk-test-slow")
    file = tmp_path / "three.jsonl"
    write_instances(file, short_instances(sample_train, 3))
    with SlowServer() as slow:
        stage_params = {
            "model": MODEL, "base_url": slow.server.url + "/v1", "api_key_env": "SLOW_KEY", "template": "compact",
            "max_tokens": 8, "concurrency": 3, "timeout": 0.2, "max_retries": 5, "backoff_base": 0.01,
            "backoff_max": 0.02,
        }  # fmt: skip
        config = tmp_path / "slow.yaml"
        stage = {"name": "api", "backend": "openai", "params": stage_params}
        config.write_text(yaml.safe_dump({"name": "slow", "max_timeouts": 2, "stages": [stage]}), encoding="utf-8")
        args = ["judge", str(file), "--store", str(tmp_path / "slow.db"), "--config", str(config), "--json"]
        reports = []
        for _ in range(3):
            result = runner.invoke(app, args)
            assert result.exit_code == 3, result.output
            reports.append(json.loads(result.stdout))
        assert slow.total == 3 * 2  # 2 per instance over the three runs (was 6 per instance per run)
        assert [r["possibly_billed"] for r in reports] == [6, 0, 0]
        assert reports[0]["stages"][0]["possibly_billed"] == 6 and reports[0]["failures_now"] == {"timeout": 3}
        assert reports[1]["failed"] == 3 and reports[1]["stages"][0]["judged_now"] == 0
        assert "sent again only with --retry-failed" in " ".join(result.stderr.split())
        with JudgmentStore(tmp_path / "slow.db", readonly=True) as store:
            records = list(store.iter_judgments())
        assert len(records) == 3 and {(r.status, r.extra["timeouts"]) for r in records} == {("failed", 2)}
        again = runner.invoke(app, [*args, "--retry-failed"])
        assert again.exit_code == 3 and json.loads(again.stdout)["possibly_billed"] == 6
        assert slow.total == 12
