"""The engines a cascade stage runs on (`hardneg.judging.engine`): local, and Ray actor pools on a real Ray.

Fast tests: what an engine is (choice, sizing outside every identity). Slow tests run on a real Ray started by
the tests (`ray_local`, 2 CPUs; tests/support/ray_cluster.py) and check what a cluster run must keep:

- the same verdicts and a byte-identical relabelled file as the local engine (MiniLM, then a llama.cpp judge);
- one actor's process killed mid-run (by its PID): Ray restarts it, every instance is stored exactly once with
  attempts 1, and the only calls made twice are those the dead actor had in flight;
- an `openai` stage against the loopback llama.cpp server (a pool with a dead endpoint) on two actors: the local
  engine's verdicts and output;
- `hardneg judge --engine ray` killed with SIGKILL mid-run: the same command finishes, and no call stored by the
  first run is made again;
- a two-node cluster on this machine (`ray start --head`, then a second `ray start --address`): blocks run on
  both raylets and the verdicts match the local engine's.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

import hardneg
from hardneg.cluster import EngineSpec, resolve_engine
from hardneg.data.io import read_instances, write_instances
from hardneg.errors import ConfigError
from hardneg.judging import Budget, JudgmentStore, parse_config, run_cascade
from hardneg.judging.cascade.config import RESOURCE_FIELDS, identity_dump
from hardneg.judging.engine import LocalEngine, RayEngine, make_engine
from support import free_port
from support.api_judge import MODEL, small_instances
from support.call_log_judges import read_log
from support.ray_cluster import TwoNodeCluster, read_node_log, worker_env

COUNTING = "support.call_log_judges:CountingJudge"
CLI = [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet", "judge"]


def _counting_cascade(log: Path, *, delay: float, workers: int = 2, batch: int = 2, backend: str = COUNTING) -> dict:
    return {
        "name": "counting",
        "stages": [
            {
                "name": "overlap",
                "backend": backend,
                "params": {"delay": delay, "log": str(log)},
                "t_better": 0.3,
                "workers": workers,
                "batch_size": batch,
            }
        ],
    }


def _records(db: Path) -> dict[str, tuple[str, int]]:
    """{query_id: (status, attempts)} of stage 1, read without a write lock."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT query_id, status, attempts FROM judgments WHERE stage = 1").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        con.close()
    return {q: (s, a) for q, s, a in rows}


# --- fast -----------------------------------------------------------------------------------------------------
def test_engine_is_resolved_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_engine("local") == EngineSpec("local")
    with pytest.raises(ConfigError) as err:
        resolve_engine("spark")
    assert err.value.param == "engine"
    with pytest.raises(ConfigError) as err:
        resolve_engine("local", "127.0.0.1:6379")
    assert err.value.param == "ray_address"
    assert isinstance(make_engine(EngineSpec("local")), LocalEngine)
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve_engine("ray") == EngineSpec("ray", "10.0.0.1:6379")
    assert resolve_engine("ray", "127.0.0.1:1") == EngineSpec("ray", "127.0.0.1:1")  # the flag wins
    engine = make_engine(resolve_engine("ray"), ready=["given"])
    assert isinstance(engine, RayEngine) and engine.ready == {"given"} and not engine.session.started


def test_pool_sizing_is_not_part_of_any_identity(sample_train: Path) -> None:
    plain = parse_config({"stages": [{"name": "c", "backend": "embedding", "t_better": 0.6}]})
    sized = parse_config(
        {"stages": [{"name": "c", "backend": "embedding", "t_better": 0.6, "workers": 4, "num_cpus": 2,
                     "num_gpus": 0.5, "batch_size": 64}]}
    )  # fmt: skip
    assert identity_dump(plain) == identity_dump(sized)
    assert not set(RESOURCE_FIELDS) & set(identity_dump(sized)["stages"][0])
    with JudgmentStore(":memory:") as store:
        one = run_cascade(sample_train, plain, store)
        two = run_cascade(sample_train, sized, store)  # the local engine ignores the sizing
    assert one.stages[0].config_hash == two.stages[0].config_hash
    assert one.stages[0].view_hash == two.stages[0].view_hash
    assert two.stages[0].judged_now == 0 and two.stages[0].reused == 24
    with pytest.raises(ConfigError):
        parse_config({"stages": [{"name": "c", "backend": "embedding", "t_better": 0.6, "workers": 0}]})


def test_ray_refuses_a_budget(sample_train: Path) -> None:
    pytest.importorskip("ray")
    config = parse_config({"stages": [{"name": "c", "backend": "embedding", "t_better": 0.6}]})
    with JudgmentStore(":memory:") as store, pytest.raises(ConfigError) as err:
        run_cascade(sample_train, config, store, engine="ray", budget=Budget(1.0))
    assert err.value.param == "engine"


# --- on a real Ray ----------------------------------------------------------------------------------------------
PARITY = {
    "name": "ray-parity",
    "stages": [
        {"name": "cosine", "backend": "embedding", "t_better": 0.55, "t_worse": 0.45, "route": "score>=0.5",
         "route_top": 0.25, "workers": 2, "batch_size": 4},
        {"name": "llm", "backend": "llm-pointwise", "candidates": "routed", "fuse": "rank-average",
         "t_better": 0.6, "t_worse": 0.4,
         "params": {"model": "smollm2-135m", "n_ctx": 1024, "max_passage_chars": 200, "n_threads": 1},
         "workers": 2, "batch_size": 2},
    ],
}  # fmt: skip


@pytest.mark.slow
def test_ray_gives_the_local_verdicts_and_output(ray_local: Any, sample_train: Path, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    config = parse_config(PARITY)
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    local = hardneg.clean(sample_train, store=tmp_path / "local.sqlite", config=config, output=local_out)
    remote_report = hardneg.CleanReport()
    remote = hardneg.clean(
        sample_train, store=tmp_path / "ray.sqlite", config=config, output=ray_out, engine="ray",
        report=remote_report,
    )  # fmt: skip
    assert local == local_out and remote == ray_out
    assert local_out.read_bytes() == ray_out.read_bytes()
    with JudgmentStore(tmp_path / "local.sqlite") as a, JudgmentStore(tmp_path / "ray.sqlite") as b:
        assert a.final_verdicts() == b.final_verdicts()
        for stage in (1, 2):
            mine = {r.query_id: r.scores for r in a.iter_judgments(stage=stage)}
            theirs = {r.query_id: r.scores for r in b.iter_judgments(stage=stage)}
            assert mine.keys() == theirs.keys() and mine
            for qid, scores in mine.items():
                assert scores.keys() == theirs[qid].keys()
                assert all(abs(scores[d] - theirs[qid][d]) < 1e-5 for d in scores), qid
    stages = remote_report.cascade.stages
    assert [s.judged_now for s in stages] == [24, stages[1].routed_in] and stages[1].routed_in > 0
    # resumed on Ray with nothing left to do: no call
    again = hardneg.judge(sample_train, config, tmp_path / "ray.sqlite", engine="ray")
    assert [s.judged_now for s in again.stages] == [0, 0]


@pytest.mark.slow
def test_an_actor_killed_mid_run_is_restarted_and_no_call_is_lost(
    ray_local: Any, sample_train: Path, tmp_path: Path
) -> None:
    log, db = tmp_path / "calls.log", tmp_path / "j.sqlite"
    batch = 2
    config = parse_config(_counting_cascade(log, delay=0.4, workers=2, batch=batch))
    killed: list[int] = []

    def kill_one_actor() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            calls = read_log(log)
            if len(calls) >= 3:
                pid = calls[-1][1]
                os.kill(pid, signal.SIGKILL)  # the worker process of one actor, mid-block
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    with JudgmentStore(db) as store:
        report = run_cascade(sample_train, config, store, engine="ray")
    killer.join(timeout=5)
    assert killed, "no actor was seen working"
    assert report.stages[0].judged_now == 24 and report.failed == 0
    rows = _records(db)
    assert len(rows) == 24 and set(rows.values()) == {("ok", 1)}  # every instance stored once, first attempt
    calls = read_log(log)
    counts = Counter(qid for qid, _ in calls)
    assert set(counts) == set(rows)
    repeated = {qid for qid, n in counts.items() if n > 1}
    # only what the dead actor had in flight (its block) is judged twice
    dead_calls = {qid for qid, pid in calls if pid == killed[0]}
    assert repeated <= dead_calls and len(repeated) <= batch and max(counts.values()) <= 2
    assert len({pid for _, pid in calls}) >= 3  # two actors and the one Ray started in place of the dead one


@pytest.mark.slow
def test_an_api_stage_on_ray_gives_the_local_output(
    ray_local: Any, llama_server: Any, key_env: str, sample_train: Path, tmp_path: Path
) -> None:
    """An `openai` stage against the loopback llama.cpp server, its pool holding a dead endpoint too: two actors
    (the key reaches them from the driver's environment) give the local engine's verdicts and output."""
    data = tmp_path / "small.jsonl"
    write_instances(data, small_instances(sample_train, 6, negatives=3, chars=150))
    dead = f"http://127.0.0.1:{free_port()}/v1"  # connection refused: taken out, its requests go to the server
    params = {
        "model": MODEL, "api_key_env": key_env, "template": "compact", "json_schema": "json_object",
        "max_tokens": 40, "temperature": 0.0, "concurrency": 1, "backoff_base": 0.05, "max_retries": 4,
        "base_urls": [dead, llama_server.base_url], "endpoint_cooldown": 60.0,
    }  # fmt: skip
    config = parse_config({"stages": [{"name": "api", "backend": "openai", "params": params, "workers": 2,
                                       "batch_size": 2}]})  # fmt: skip
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    local = hardneg.CleanReport()
    hardneg.clean(data, store=tmp_path / "local.sqlite", config=config, output=local_out, report=local)
    remote = hardneg.CleanReport()
    hardneg.clean(data, store=tmp_path / "ray.sqlite", config=config, output=ray_out, engine="ray", report=remote)
    assert remote.cascade.stages[0].judged_now == 6 and remote.cascade.failed == 0
    assert local_out.read_bytes() == ray_out.read_bytes()
    with JudgmentStore(tmp_path / "local.sqlite") as a, JudgmentStore(tmp_path / "ray.sqlite") as b:
        assert a.final_verdicts() == b.final_verdicts()
        assert {r.query_id: r.attempts for r in b.iter_judgments(stage=1)} == dict.fromkeys(
            [i.query_id for i in read_instances(data)], 1
        )


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_driver_killed_with_sigkill_resumes_with_the_same_command(
    ray_local: Any, sample_train: Path, tmp_path: Path
) -> None:
    log, db, cfg = tmp_path / "calls.log", tmp_path / "j.sqlite", tmp_path / "cascade.yaml"
    cfg.write_text(yaml.safe_dump(_counting_cascade(log, delay=0.5, workers=2, batch=1)), encoding="utf-8")
    # the driver joins the tests' Ray by its address, as it would join a cluster (RAY_ADDRESS)
    env = worker_env({"RAY_ADDRESS": ray_local.get_runtime_context().gcs_address})
    command = [*CLI, str(sample_train), "--config", str(cfg), "--store", str(db), "--engine", "ray", "--json"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: len(_records(db)) >= 4 or first.poll() is not None, 240, "4 stored calls")
        assert first.poll() is None, first.communicate()
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    stored_before = set(_records(db))
    calls_before = len(read_log(log))
    assert 4 <= len(stored_before) < 24
    time.sleep(2)  # Ray ends a dead driver's actors; anything still running would log calls now
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    rows = _records(db)
    assert len(rows) == 24 and set(rows.values()) == {("ok", 1)}
    assert report["stages"][0]["judged_now"] == 24 - len(stored_before)
    again = [qid for qid, _ in read_log(log)[calls_before:]]
    assert not set(again) & stored_before  # a stored call is never made again
    assert set(again) | stored_before == set(rows)


@pytest.mark.slow
def test_two_nodes_on_this_machine(sample_train: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    log, db, cfg = tmp_path / "calls.log", tmp_path / "j.sqlite", tmp_path / "cascade.yaml"
    config = _counting_cascade(log, delay=0.3, workers=2, batch=2, backend="support.ray_cluster:NodeLoggingJudge")
    config["stages"][0]["num_cpus"] = 1  # one CPU per node: one actor on each raylet
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    with TwoNodeCluster(cpus=1) as cluster:
        command = [*CLI, str(sample_train), "--config", str(cfg), "--store", str(db), "--engine", "ray",
                   "--ray-address", cluster.address, "--json"]  # fmt: skip
        done = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    calls = read_node_log(log)
    assert len({node for _, _, node in calls}) == 2  # blocks crossed raylets
    assert sorted(qid for qid, _, _ in calls) == sorted(i.query_id for i in read_instances(sample_train))
    local = tmp_path / "local.sqlite"
    with JudgmentStore(local) as store:
        run_cascade(sample_train, parse_config(config), store)
    with JudgmentStore(local) as a, JudgmentStore(db) as b:
        assert a.final_verdicts() == b.final_verdicts()


def test_ready_judges_stay_on_the_driver(sample_train: Path, tmp_path: Path) -> None:
    """A judge handed in built is an object of this process: the Ray engine runs it here (no Ray needed)."""
    pytest.importorskip("ray")
    from support.call_log_judges import CountingJudge

    instances = list(read_instances(sample_train))[:3]
    path = tmp_path / "three.jsonl"
    write_instances(path, instances)
    config = parse_config(_counting_cascade(tmp_path / "calls.log", delay=0.0))
    judge = CountingJudge(delay=0.0, log=str(tmp_path / "calls.log"))
    with JudgmentStore(":memory:") as store:
        report = run_cascade(path, config, store, judges={"overlap": judge}, engine="ray")
    assert report.stages[0].judged_now == 3
    assert {pid for _, pid in read_log(tmp_path / "calls.log")} == {os.getpid()}
