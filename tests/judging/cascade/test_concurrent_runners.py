"""Several `hardneg judge` processes on one store split the work and never pay for a call twice.

Three runners start at the same time on one store and 60 instances (the shipped sample, repeated under new
query_ids), through a 2-stage cascade whose stage 1 routes every instance on. The judge is a small real one
(`support.call_log_judges.CountingJudge`: lexical overlap, ~50 ms per call, so the runs overlap) that logs each
call it receives: exactly 60 calls per stage are made, whoever makes them, the store holds one record per call
identity with attempts == 1, and the runners' `judged_now` add up to 60 per stage. Then one runner is killed
with SIGKILL mid-run: the others still finish every instance, and no call is made twice except at most the one
the killed runner had in flight.

`test_a_call_stored_by_another_runner_gets_its_verdict` makes the race those runs hit now and then happen every
time, in one process: another runner stores a call after this runner's first pass and dies before writing its
verdict; this runner must derive that verdict itself, or the instance silently never reaches stage 2.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance
from hardneg.judging.base import JudgeOutput
from hardneg.judging.cascade import StageConfig, parse_config, run_cascade
from hardneg.judging.cascade.routing import call_key
from hardneg.judging.store import JudgmentStore
from support.call_log_judges import CountingJudge, read_log

TESTS = Path(__file__).resolve().parents[2]
N = 60
RUNNERS = 3
CLI = [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet", "judge"]


@pytest.fixture
def sixty(sample_train: Path, tmp_path: Path) -> Path:
    """60 instances: the 24 of the shipped sample, then again under new query_ids."""
    base = list(read_instances(sample_train))
    out = []
    for round_ in range(3):
        for instance in read_instances(sample_train):
            if round_:
                instance.query_id = f"{instance.query_id}-r{round_}"
            out.append(instance)
    assert len(base) == 24 and len({i.query_id for i in out}) == 72
    path = tmp_path / "sixty.jsonl"
    write_instances(path, out[:N])
    return path


def cascade(tmp_path: Path, delay: float = 0.05) -> tuple[Path, Path, Path]:
    logs = tmp_path / "calls1.log", tmp_path / "calls2.log"
    judge = "support.call_log_judges:CountingJudge"
    config = {
        "name": "concurrent",
        "stages": [
            # t_better 0: every negative is flagged, so every instance is routed to stage 2
            {"name": "first", "backend": judge, "t_better": 0.0, "params": {"delay": delay, "log": str(logs[0])}},
            {
                "name": "second",
                "backend": judge,
                "t_better": 0.5,
                "params": {"model": "overlap-v2", "delay": delay, "log": str(logs[1])},
            },
        ],
    }
    path = tmp_path / "cascade.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, *logs


def start(file: Path, store: Path, config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [*CLI, str(file), "--store", str(store), "--config", str(config), "--json"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


def records(db: Path) -> list[tuple[str, int, str, int]]:
    """(query_id, stage, status, attempts) of every record, read without taking a write lock."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT query_id, stage, status, attempts FROM judgments").fetchall()
    finally:
        conn.close()


def check_store(db: Path, ids: set[str]) -> None:
    rows = records(db)
    for stage in (1, 2):
        mine = [r for r in rows if r[1] == stage]
        assert len(mine) == N and {r[0] for r in mine} == ids, f"stage {stage}: {len(mine)} records"
    assert {(status, attempts) for _, _, status, attempts in rows} == {("ok", 1)}
    with JudgmentStore(db, readonly=True) as store:
        assert store.claims() == []  # every runner released what it held (a killed one's were taken over)
        assert store.pending() == {}
        final = store.final_verdicts()
    assert set(final) == ids and {v.stage for v in final.values()} == {2}


@pytest.mark.slow
def test_three_runners_on_one_store_make_each_call_once(sixty: Path, tmp_path: Path) -> None:
    ids = {i.query_id for i in read_instances(sixty)}
    config, log1, log2 = cascade(tmp_path)
    db = tmp_path / "judgments.db"
    procs = [start(sixty, db, config) for _ in range(RUNNERS)]
    reports = [finish(p) for p in procs]

    for log in (log1, log2):
        calls = read_log(log)
        assert len(calls) == N and {q for q, _ in calls} == ids, f"{log.name}: {Counter(q for q, _ in calls)}"
    for k in (0, 1):
        stage = [r["stages"][k] for r in reports]
        assert sum(s["judged_now"] for s in stage) == N
        # each runner saw every instance: judged here, judged by another runner while it waited, or reused
        for s in stage:
            assert s["routed_in"] == N
            assert s["judged_now"] + s["reused"] + s["judged_elsewhere"] <= N
            assert s["judged"] == N and s["failures_now"] == {}
    check_store(db, ids)


@pytest.mark.slow
def test_a_runner_killed_mid_run_the_others_finish_every_instance(sixty: Path, tmp_path: Path) -> None:
    ids = {i.query_id for i in read_instances(sixty)}
    config, log1, log2 = cascade(tmp_path)
    db = tmp_path / "judgments.db"
    procs = [start(sixty, db, config) for _ in range(RUNNERS)]
    victim, others = procs[0], procs[1:]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if sum(1 for _, pid in read_log(log1) if pid == victim.pid) >= 5:
            break
        assert victim.poll() is None, "the runner ended before it could be killed"
        time.sleep(0.01)
    else:
        pytest.fail("the runner to kill made no calls")
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    reports = [finish(p) for p in others]

    for log in (log1, log2):
        calls = read_log(log)
        assert {q for q, _ in calls} == ids
        twice = {q: n for q, n in Counter(q for q, _ in calls).items() if n > 1}
        # at most the call in flight at the kill was made again, and the killed runner was making it
        assert len(twice) <= 1 and all(n == 2 for n in twice.values()), twice
        assert all(victim.pid in {pid for q, pid in calls if q == qid} for qid in twice)
    assert sum(len(read_log(log)) for log in (log1, log2)) <= 2 * N + 1
    check_store(db, ids)
    for k in (0, 1):
        assert all(r["stages"][k]["judged"] == N for r in reports)

    fresh = finish(start(sixty, db, config))  # nothing is left to call
    assert [s["judged_now"] for s in fresh["stages"]] == [0, 0]
    assert [s["reused"] for s in fresh["stages"]] == [N, N]
    check_store(db, ids)


class AnotherRunnerStoresACall(CountingJudge):
    """Fault injection: during this runner's first call, another runner (its own connection to the store) stores
    the call of a later instance and dies before writing that call's verdict (its verdicts are written in batches)."""

    def __init__(self, db: Path, stage: StageConfig, other: Instance, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.db, self.stage, self.other = db, stage, other
        self.done = False

    def judge(self, instance: Instance, docids: list[str]) -> JudgeOutput:  # type: ignore[override]
        if not self.done:
            self.done = True
            with JudgmentStore(self.db) as other_runner:
                out = super().judge(self.other, self.other.negative_ids)
                other_runner.put(self.other.query_id, 1, self.stage.name, call_key(1, self.stage, self), out)
        return super().judge(instance, docids)


def test_a_call_stored_by_another_runner_gets_its_verdict(sample_train: Path, tmp_path: Path) -> None:
    config = parse_config(
        {
            "stages": [
                {"name": "first", "backend": "support.call_log_judges:CountingJudge", "t_better": 0.0},
                {"name": "second", "backend": "support.call_log_judges:CountingJudge", "t_better": 0.5},
            ]
        }
    )
    instances = list(read_instances(sample_train))
    other = instances[-1]
    db = tmp_path / "judgments.db"
    judge = AnotherRunnerStoresACall(db, config.stages[0], other, delay=0.0)
    with JudgmentStore(db) as store:
        report = run_cascade(sample_train, config, store, judges={"first": judge})
        first, second = report.stages
        assert (first.judged_now, first.judged_elsewhere) == (23, 1)
        assert first.judged == first.routed_on == 24
        assert second.routed_in == second.judged_now == 24  # the other runner's instance reached stage 2 too
        assert store.get_verdict(other.query_id, 1, first.view_hash) is not None
        assert store.pending() == {}
        final = store.final_verdicts()
    assert len(final) == 24 and final[other.query_id].stage == 2
