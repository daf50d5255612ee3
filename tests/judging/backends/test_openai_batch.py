"""The Batch API: stable request ids; the flow end to end against the local stand-in, which runs each batch on
the real llama.cpp server."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import yaml

from hardneg.judging.backends.openai_batch import BatchJudge, custom_id
from hardneg.judging.store import JudgmentStore
from support import BatchStandIn, FaultProxy
from support.api_judge import MODEL, small_instances


@pytest.mark.slow
@pytest.mark.shared
def test_batch_submit_resume_collect_resubmit(llama_server, key_env, api_key, rlhn_stage1, tmp_path) -> None:
    instances = small_instances(rlhn_stage1, 3)
    items = [(i, i.negative_ids) for i in instances]
    db = tmp_path / "judgments.sqlite"
    params = {
        "base_url": None,
        "api_key_env": key_env,
        "template": "compact",
        "max_tokens": 40,
        "json_schema": "json_object",
        "state_db": db,
        "poll_interval": 0.2,
        "max_wait": 400,
        "max_requests_per_batch": 2,  # 3 requests -> 2 batch files
    }
    with (
        FaultProxy(llama_server.url) as proxy,
        BatchStandIn(proxy.base_url, concurrency=1, upstream_key=api_key) as stand,
    ):
        params["base_url"] = stand.base_url
        lost = BatchJudge(MODEL, **params).cfg_hash
        lost_id = custom_id(lost, instances[1].query_id, 0)
        stand.lose_once.add(lost_id)  # the first batch leaves this request out of both files

        # 1. submit and come back later: nothing is answered yet, nothing is yielded
        early = BatchJudge(MODEL, **{**params, "wait": False})
        assert list(early.judge_many(items)) == []
        early.close()
        assert len(stand.batches) == 2

        # 2. a new process picks the batches up: no resubmission, results joined by custom_id
        judge = BatchJudge(MODEL, **params)
        with JudgmentStore(db) as store:  # the same SQLite file holds judgments and batch state
            results = {}
            for instance, out in judge.judge_many(items):
                results[instance.query_id] = out
                store.put(instance.query_id, 1, "batch", judge.config(), out)
        assert judge.stats.get("requests_submitted", 0) == 0 and len(stand.batches) == 2
        for batch in stand.batches.values():
            assert batch.history == ["validating", "in_progress", "finalizing", "completed"]
        assert set(results) == {i.query_id for i in instances}
        missing = results[instances[1].query_id]
        assert missing.status == "failed" and "missing from the output" in missing.reason
        for instance in (instances[0], instances[2]):
            out = results[instance.query_id]
            assert out.status in ("ok", "parse_error") and out.tokens_in > 0 and out.docids == instance.negative_ids
        judge.close()
        assert sorted(stand.executed) == sorted(custom_id(lost, i.query_id, 0) for i in (instances[0], instances[2]))

        # 3. the next run resubmits only the failed request; answered ones come back without a call
        again = BatchJudge(MODEL, **params)
        rerun = {i.query_id: out for i, out in again.judge_many(items)}
        again.close()
        assert again.stats["requests_submitted"] == 1 and len(stand.batches) == 3
        assert stand.executed.count(lost_id) == 1 and len(stand.executed) == 3
        assert rerun[instances[1].query_id].status in ("ok", "parse_error")
        assert rerun[instances[0].query_id].raw_response == results[instances[0].query_id].raw_response
        assert proxy.requests["/v1/chat/completions"] == 3  # three requests in all reached the model

    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM batches WHERE collected=1").fetchone()[0] == 3
    assert con.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == 3
    assert api_key.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("judgments.sqlite*"))
    con.close()


@pytest.mark.slow
@pytest.mark.shared
def test_batch_stage_in_cascade_come_back_later(llama_server, key_env, api_key, rlhn_stage1, tmp_path) -> None:
    """`hardneg judge` with `wait: false` submits and returns; `hardneg batch collect` downloads; the next
    `hardneg judge` stores the answers without a new call."""
    from typer.testing import CliRunner

    from hardneg.cli import app
    from hardneg.data.io import write_instances
    from hardneg.judging.cascade import parse_config, run_cascade

    data = tmp_path / "two.jsonl"
    write_instances(data, small_instances(rlhn_stage1, 2))
    db = tmp_path / "store.sqlite"
    with BatchStandIn(llama_server.base_url, upstream_key=api_key) as stand:
        config = {
            "name": "batch-later",
            "stages": [
                {
                    "name": "batched",
                    "backend": "openai-batch",
                    "params": {
                        "model": MODEL,
                        "base_url": stand.base_url,
                        "api_key_env": key_env,
                        "template": "compact",
                        "max_tokens": 40,
                        "json_schema": "json_object",
                        # no state_db: the cascade keeps batch ids in the judgment store itself
                        "wait": False,
                    },
                }
            ],
        }
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        cascade = parse_config(config)
        with JudgmentStore(db) as store:
            first = run_cascade(data, cascade, store)
            assert first.stages[0].judged_now == 0 and store.count() == 0
        assert len(stand.batches) == 1
        (batch,) = stand.batches.values()
        for _ in range(3000):  # bounded wait for the stand-in to finish (two real calls)
            if batch.status == "completed":
                break
            time.sleep(0.1)
        assert batch.status == "completed"

        runner = CliRunner()
        status = runner.invoke(
            app, ["batch", "status", "--store", str(db), "--config", str(tmp_path / "c.yaml"), "--json"]
        )
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["batches"][0]["status"] == "completed"
        collected = runner.invoke(
            app, ["batch", "collect", "--store", str(db), "--config", str(tmp_path / "c.yaml"), "--json"]
        )
        assert collected.exit_code == 0, collected.output
        assert json.loads(collected.stdout)["answered"] == 2

        with JudgmentStore(db) as store:
            second = run_cascade(data, cascade, store)
            assert second.stages[0].judged_now == 2 and store.count() == 2
        assert len(stand.batches) == 1 and len(stand.executed) == 2  # nothing submitted again


def test_custom_id_is_stable_and_safe() -> None:
    assert custom_id("abcdef0123456789", "q-1.a", 0) == "abcdef012345:q-1.a:0"
    odd = custom_id("abcdef0123456789", "what? /é " * 10, 2)
    assert odd == custom_id("abcdef0123456789", "what? /é " * 10, 2)
    assert len(odd) <= 64 and all(c.isalnum() or c in "_.:-" for c in odd)
    assert custom_id("abcdef0123456789", "a b", 0) != custom_id("abcdef0123456789", "a_b", 0)
