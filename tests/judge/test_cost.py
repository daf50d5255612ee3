"""API-judge pieces that need no server: strict JSON verdicts, request ids, rate limits, prices, budget, estimate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hardneg.errors import ConfigError
from hardneg.judge.backends.openai_batch import custom_id
from hardneg.judge.backends.openai_chat import OpenAIJudge, _retry_after, parse_json_verdict
from hardneg.judge.backends.ratelimit import RateLimiter
from hardneg.judge.cost import (
    Budget,
    PriceTable,
    StageSpec,
    cost_of,
    count_tokens,
    estimate,
    load_stage_specs,
    tokenizer_name,
)

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


def test_custom_id_is_stable_and_safe() -> None:
    assert custom_id("abcdef0123456789", "q-1.a", 0) == "abcdef012345:q-1.a:0"
    odd = custom_id("abcdef0123456789", "what? /é " * 10, 2)
    assert odd == custom_id("abcdef0123456789", "what? /é " * 10, 2)
    assert len(odd) <= 64 and all(c.isalnum() or c in "_.:-" for c in odd)
    assert custom_id("abcdef0123456789", "a b", 0) != custom_id("abcdef0123456789", "a_b", 0)


def test_rate_limiter_waits_for_tokens_and_requests() -> None:
    now = [0.0]
    limiter = RateLimiter(rpm=2, tpm=600, clock=lambda: now[0])
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def run() -> None:
        original = asyncio.sleep
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            await limiter.acquire(100)
            await limiter.acquire(100)  # burst: both fit in the first minute
            assert slept == []
            await limiter.acquire(100)  # a third request waits for one request's refill (30 s at 2 rpm)
            assert sum(slept) == pytest.approx(30.0)
            await limiter.acquire(590)  # tokens: 600 - 300 + 30 s * 10/s = 600 left... 590 fits
            await limiter.acquire(500)  # now short of tokens and requests
            assert sum(slept) > 30.0
        finally:
            asyncio.sleep = original  # type: ignore[assignment]

    asyncio.run(run())


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


def test_tokenizer_is_real_o200k() -> None:
    assert tokenizer_name("gpt-4o-mini") == "o200k_base"
    assert count_tokens("hello world", "gpt-4o") == 2
    assert count_tokens("hello world", "gpt-3.5-turbo") == 2  # cl100k


def test_prices_and_budget(tmp_path: Path) -> None:
    table = PriceTable.default()
    assert cost_of((1_000_000, 1_000_000), "gpt-4o-mini-2024-07-18", table) == pytest.approx(0.75)
    assert cost_of({"prompt_tokens": 1_000_000, "completion_tokens": 0}, "gpt-4o", table, batch=True) == 1.25
    custom = tmp_path / "prices.yaml"
    custom.write_text("date: 2030-01\nmy-model: {input: 1.0, output: 2.0, batch_discount: 0.5}\n")
    loaded = PriceTable.load(custom)
    assert loaded.get("my-model").output == 2.0 and loaded.has("gpt-4o") and loaded.date == "2030-01"
    with pytest.raises(ConfigError, match="no price for model"):
        loaded.get("unknown-model")
    (tmp_path / "bad.json").write_text('{"m": {"input": "x"}}')
    with pytest.raises(ConfigError, match="numeric"):
        PriceTable.load(tmp_path / "bad.json")

    budget = Budget(0.01, PriceTable({"m": {"input": 1.0, "output": 1.0}}))  # 10,000 tokens' worth
    first = budget.reserve("m", 3000, 2000)
    assert first is not None
    assert budget.reserve("m", 3000, 2000) is not None
    assert budget.reserve("m", 1, 1) is None  # would exceed: refused, not sent
    budget.settle(first, 3000, 100)  # the real answer was short: room again
    assert budget.reserve("m", 1000, 500) is not None
    assert budget.report()["requests_refused"] == 1


def test_estimate_renders_real_templates(rlhn_stage1: Path, tmp_path: Path) -> None:
    config = tmp_path / "cascade.yaml"
    config.write_text(
        "stages:\n"
        "  - {name: cheap, backend: openai, params: {model: gpt-4o-mini, template: stage1}}\n"
        "  - {name: strong, backend: openai-batch, params: {model: gpt-4o, template: stage2}}\n"
    )
    specs = load_stage_specs(config)
    assert [s.batch for s in specs] == [False, True]
    est = estimate(rlhn_stage1, config, routing_rate=0.68)
    assert est.instances == 25 and est.tokenizer == "o200k_base"
    s1, s2 = est.stages
    assert s1.calls == 25 and s2.calls == pytest.approx(25 * 0.68)
    # 15 FiQA negatives per prompt: a few thousand tokens each (the reference bill: ~3,780 in per instance)
    assert 1000 < s1.prompt_tokens / 25 < 6000
    assert s1.cost_usd < s1.cost_upper_usd and s2.cost_usd > s1.cost_usd
    # stage 2 uses the batch price: half of what the same tokens cost online
    online = PriceTable.default().get("gpt-4o").cost(int(s2.prompt_tokens), int(s2.output_tokens))
    assert s2.cost_usd == pytest.approx(online / 2, rel=1e-3)
    assert json.dumps(est.to_dict())  # JSON-able for --json
    compact = estimate(rlhn_stage1, [StageSpec("c", "gpt-4o-mini", template="compact")])
    assert compact.stages[0].output_tokens == 25 * 50


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARDNEG_NO_SUCH_KEY", raising=False)
    judge = OpenAIJudge("gpt-4o-mini", api_key_env="HARDNEG_NO_SUCH_KEY")
    with pytest.raises(ConfigError, match="HARDNEG_NO_SUCH_KEY"):
        judge._api_key()
    with pytest.raises(ConfigError, match="json_schema"):
        OpenAIJudge("m", json_schema="yes")
    assert "api_key" not in json.dumps(judge.config()).lower()


def test_estimate_cli(rlhn_stage1: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hardneg.cli import app

    config = tmp_path / "cascade.yaml"
    config.write_text("stages:\n  - {name: cheap, backend: openai, params: {model: gpt-4o-mini, template: compact}}\n")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o-mini": {"input": 10.0, "output": 10.0}}))
    runner = CliRunner()
    default = runner.invoke(app, ["--quiet", "estimate", str(rlhn_stage1), "--config", str(config), "--json"])
    assert default.exit_code == 0, default.output
    custom = runner.invoke(
        app, ["--quiet", "estimate", str(rlhn_stage1), "--config", str(config), "--prices", str(prices), "--json"]
    )
    a, b = json.loads(default.stdout), json.loads(custom.stdout)
    assert a["instances"] == 25 and a["stages"][0]["calls"] == 25
    assert b["cost_usd"] > a["cost_usd"] and b["prices_source"] == str(prices)
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: []\n")
    result = runner.invoke(app, ["--quiet", "estimate", str(rlhn_stage1), "--config", str(bad)])
    assert result.exit_code == 2 and "stages" in result.output
    missing = runner.invoke(app, ["batch", "status", "--store", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "no such store file" in missing.output
