"""A pool of OpenAI-compatible endpoints behind one API stage (`base_urls`): least-loaded, per-endpoint
concurrency, an endpoint that fails taken out for a while and its requests sent to the others.

The slow test runs a real llama.cpp server (the `llama_server` fixture) behind a pool with a dead port (connection
refused) and a fault proxy that answers every call with HTTP 500: every instance is judged, the bad endpoints are
taken out after their first failures, and the verdicts are stored under the same key as a one-server run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.data.sample import sample_train_path
from hardneg.errors import ConfigError
from hardneg.judging import JudgmentStore, build_judge, parse_config, run_cascade
from hardneg.judging.backends.endpoints import Endpoint, EndpointPool
from support import FaultPlan, FaultProxy, free_port
from support.api_judge import MODEL


class _Client:
    closed = False

    async def close(self) -> None:
        self.closed = True


def _pool(n: int, concurrency: int, cooldown: float = 30.0) -> EndpointPool:
    return EndpointPool([Endpoint(f"http://e{i}", _Client()) for i in range(n)], concurrency, cooldown)


def test_least_loaded_with_a_cap_per_endpoint() -> None:
    async def run() -> None:
        pool = _pool(3, concurrency=2)
        held = [await pool.acquire() for _ in range(6)]
        assert sorted(e.in_flight for e in pool.endpoints) == [2, 2, 2]
        assert {e.url for e in held} == {"http://e0", "http://e1", "http://e2"}
        blocked = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        assert not blocked.done()  # every endpoint is at its cap
        await pool.release(held[0])
        assert (await asyncio.wait_for(blocked, 1)) is held[0]
        await pool.close()
        assert all(e.client.closed for e in pool.endpoints)

    asyncio.run(run())


def test_a_failing_endpoint_is_taken_out_then_comes_back() -> None:
    async def run() -> None:
        pool = _pool(2, concurrency=4, cooldown=0.3)
        bad = pool.endpoints[0]
        pool.failed(bad)
        assert pool.others_up(bad) and not pool.others_up(pool.endpoints[1])
        picked = [await pool.acquire() for _ in range(4)]
        assert all(e is pool.endpoints[1] for e in picked)  # nothing goes to the endpoint that is out
        for e in picked:
            await pool.release(e)
        other = pool.endpoints[1]
        pool.failed(other)
        pool.failed(other)  # both out, the other for twice as long: the next request waits for `bad`
        back = await asyncio.wait_for(pool.acquire(), 5)
        assert back is bad and time.monotonic() >= bad.down_until  # not handed out before it came back
        assert [r["taken_out"] for r in pool.report()] == [1, 2]

    asyncio.run(run())


def test_one_endpoint_is_never_taken_out() -> None:
    async def run() -> None:
        pool = _pool(1, concurrency=1, cooldown=60.0)
        only = pool.endpoints[0]
        pool.failed(only)
        assert (await asyncio.wait_for(pool.acquire(), 1)) is only  # its retries back off instead

    asyncio.run(run())


def test_endpoints_are_not_part_of_the_identity() -> None:
    one = build_judge("openai", model="m", base_url="http://127.0.0.1:1/v1")
    pool = build_judge("openai", model="m", base_urls=["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"])
    assert one.config() == pool.config()
    for backend in ("openai-pointwise", "openai-answer"):
        a = build_judge(backend, model="m", base_url="http://127.0.0.1:1/v1")
        b = build_judge(backend, model="m", base_urls=["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"])
        assert a.config() == b.config() and b.base_urls == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    with pytest.raises(ConfigError):
        build_judge("openai", model="m", base_url="http://a/v1", base_urls=["http://b/v1"])
    with pytest.raises(ConfigError):
        build_judge("openai", model="m", base_urls="http://a/v1")
    parse_config({"stages": [{"name": "s", "backend": "openai", "params": {"model": "m", "base_urls": ["http://a"]}}]})


def _small(n: int) -> list[Instance]:
    out = []
    for instance in list(read_instances(sample_train_path()))[:n]:
        instance.negatives = instance.negatives[:3]
        instance.positives = instance.positives[:1]
        for passage in instance.positives + instance.negatives:
            passage.text = passage.text[:150]
        out.append(instance)
    return out


def api_stage(key_env: str, **endpoint: Any) -> dict[str, Any]:
    """A listwise API stage a 135M model answers fast and deterministically (greedy, JSON grammar)."""
    params = {
        "model": MODEL, "api_key_env": key_env, "template": "compact", "json_schema": "json_object",
        "max_tokens": 40, "temperature": 0.0, "concurrency": 1, "backoff_base": 0.05, "max_retries": 6, **endpoint,
    }  # fmt: skip
    return {"name": "api", "backend": "openai", "params": params}


@pytest.mark.slow
def test_a_pool_with_a_dead_and_a_failing_endpoint(llama_server: Any, key_env: str, tmp_path: Path) -> None:
    instances = _small(4)
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    with FaultProxy(llama_server.url, FaultPlan(error_500=1.0)) as failing:
        pool = [dead, failing.base_url, llama_server.base_url]
        config = parse_config({"stages": [api_stage(key_env, base_urls=pool, endpoint_cooldown=60.0)]})
        judge = build_judge("openai", **config.stages[0].params)
        with JudgmentStore(tmp_path / "j.sqlite") as store:
            report = run_cascade(instances, config, store, judges={"api": judge})
            assert report.stages[0].judged_now == 4 and report.failed == 0
            by_url = {e["url"]: e for e in judge.endpoints}
            # each bad endpoint failed once, was taken out, and got nothing more for the rest of the run
            assert by_url[dead]["failures"] == by_url[dead]["requests"] == 1
            assert by_url[failing.base_url]["failures"] == by_url[failing.base_url]["requests"] == 1
            assert by_url[llama_server.base_url]["requests"] == 4 and by_url[llama_server.base_url]["failures"] == 0
            assert failing.faults["error_500"] == 1
            # the same stage on one server is the same call identity: nothing is judged again
            single = parse_config({"stages": [api_stage(key_env, base_url=llama_server.base_url)]})
            again = run_cascade(instances, single, store)
            assert again.stages[0].judged_now == 0 and again.stages[0].reused == 4
            assert again.stages[0].config_hash == report.stages[0].config_hash
