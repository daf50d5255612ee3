"""Store safety: claims (one runner per call), the checks made when a store is opened, and partial cascades.

- Claims: a call is claimed before it is sent; a live owner's claim is refused to others, an expired lease or
  a dead local owner's claim is taken over, and `ClaimKeeper` renews its leases and releases them on close.
- Opening: runners opening one new store at the same moment all succeed; random bytes, a foreign SQLite
  database or a folder is an `InputError` naming the path and nothing is written to it; an old-format store
  gives its schema message; a store of the previous release (no claims table) still opens.
- Partial cascades: a real store left by a 2-stage run whose stage-2 judge died after 2 instances. Its final
  verdicts are refused (`PartialCascade`) unless `allow_partial`, which leaves the routed-but-unjudged
  instances out (never giving them their stage-1 verdict); `relabel`, `agreement --a final` and `report` refuse
  it (exit 2) or accept it with --allow-partial. Likewise a run interrupted during stage 1 of two (Ctrl-C, or
  kill -9: its answers stored, its verdicts not yet derived) and a one-stage run interrupted midway: what stage 1
  has not judged is counted, and only what routing stopped at stage 1 is final.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.records import Instance
from hardneg.errors import ConfigError, InputError
from hardneg.judging.base import JudgeOutput, config_hash
from hardneg.judging.cascade import CascadeConfig, parse_config, run_cascade
from hardneg.judging.store import ClaimKeeper, JudgmentStore, PartialCascade, new_owner, owner_alive
from support.lexical_judges import LexicalListwiseJudge

CFG = {"backend": "openai", "model": "gpt-4o-mini", "template": "abc"}
KEY = ("q1", 1, config_hash(CFG), "")
runner = CliRunner()


def one_line(text: str) -> str:
    """Rich wraps long messages at the console width: compare them with the whitespace folded."""
    return " ".join(text.split())


def ok_output() -> JudgeOutput:
    return JudgeOutput(docids=["a", "b"], better=["a"], worse=[], raw_response="<verdict>", finish_reason="stop")


def listing(folder: Path) -> dict[str, str]:
    """{name: sha256 of its bytes (or 'dir')} of everything in the folder."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- claims ------------------------------------------------------------------------------------------------------


def test_claim_and_release(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        me = new_owner()
        assert store.claim(KEY, me)
        assert store.claim(KEY, me)  # the owner may claim its own call again (a retry)
        (held,) = store.claims()
        assert (held["query_id"], held["stage"], held["owner"]) == ("q1", 1, me)
        assert held["lease_until"] > time.time()
        store.release(KEY, me)
        assert store.claims() == []


def test_a_live_owners_claim_is_refused_to_another_owner(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        first, second = new_owner(), new_owner()  # both this (live) process: two runners
        assert owner_alive(first)
        assert store.claim(KEY, first)
        assert not store.claim(KEY, second)
        store.release(KEY, second)  # releasing someone else's claim does nothing
        assert [c["owner"] for c in store.claims()] == [first]
        other_call = ("q2", 1, config_hash(CFG), "")
        assert store.claim(other_call, second)  # other calls are free
        store.release(KEY, first)
        assert store.claim(KEY, second)


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    remote = "another-host.example:4242:0123abcd"  # another machine's runner: alive until its lease runs out
    assert owner_alive(remote)
    with JudgmentStore(tmp_path / "j.db") as store:
        assert store.claim(KEY, remote, lease_s=60)
        assert not store.claim(KEY, new_owner())
        # the remote runner stopped renewing: its lease runs out
        store._conn.execute("UPDATE claims SET lease_until=?", (time.time() - 1,))
        taker = new_owner()
        assert store.claim(KEY, taker)
        assert [c["owner"] for c in store.claims()] == [taker]


def test_a_dead_local_owners_claim_is_taken_over_at_once(tmp_path: Path) -> None:
    gone = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    assert not owner_alive(gone)
    with JudgmentStore(tmp_path / "j.db") as store:
        assert store.claim(KEY, gone, lease_s=3600)  # a long lease: only the dead process frees it
        taker = new_owner()
        assert store.claim(KEY, taker)
        assert [c["owner"] for c in store.claims()] == [taker]


def test_claim_keeper_renews_its_leases_and_releases_them_on_close(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        keeper = ClaimKeeper(store, lease_s=0.3)
        try:
            keys = [KEY, ("q2", 1, config_hash(CFG), "")]
            assert all(keeper.acquire(k) for k in keys)
            first = {c["query_id"]: c["lease_until"] for c in store.claims()}
            deadline = time.monotonic() + 30
            renewed = first
            while time.monotonic() < deadline and not all(renewed[q] > first[q] for q in first):
                time.sleep(0.05)
                renewed = {c["query_id"]: c["lease_until"] for c in store.claims()}
            assert all(renewed[q] > first[q] for q in first), "the keeper never renewed its leases"
            assert {c["owner"] for c in store.claims()} == {keeper.owner}
            # a renewed claim stays refused to others, though the first lease would have run out by now
            assert not store.claim(KEY, new_owner())
            keeper.release(KEY)
            assert [c["query_id"] for c in store.claims()] == ["q2"]
        finally:
            keeper.close()
        assert store.claims() == []


# -- opening a store ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_runners_opening_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Each round, 6 threads (each its own connection, as runner processes have) open the same new store at once.
    They raced for the WAL switch ("database is locked") and could see the tables before the schema version
    (read as the old schema 1)."""
    errors: list[BaseException] = []
    for round_ in range(100):
        path = tmp_path / f"j{round_}.db"
        barrier = threading.Barrier(6)

        def open_store(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                with JudgmentStore(path) as store:
                    store.count()
            except Exception as exc:  # collected: a thread's exception would not fail the test
                errors.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_}: {errors}"
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()


def test_random_bytes_are_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(os.urandom(4096))
    before = listing(tmp_path)
    for readonly in (False, True):
        with pytest.raises(InputError) as err:
            JudgmentStore(path, readonly=readonly)
        assert str(path) in str(err.value) and "not a SQLite file" in str(err.value)
    assert listing(tmp_path) == before  # same bytes, no -wal / -shm beside it


def test_a_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = listing(tmp_path)
    for readonly in (False, True):
        with pytest.raises(InputError) as err:
            JudgmentStore(path, readonly=readonly)
        message = str(err.value)
        assert str(path) in message and "not a hardneg judgment store" in message and "users" in message
    assert listing(tmp_path) == before
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables == ["users"] and conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    finally:
        conn.close()


def test_a_folder_and_a_missing_readonly_store_are_errors(tmp_path: Path) -> None:
    folder = tmp_path / "judgments"
    folder.mkdir()
    with pytest.raises(InputError) as err:
        JudgmentStore(folder)
    assert str(folder) in str(err.value) and "folder" in str(err.value)
    assert list(folder.iterdir()) == []
    missing = tmp_path / "missing.db"
    with pytest.raises(InputError) as err:
        JudgmentStore(missing, readonly=True)
    assert str(missing) in str(err.value) and "no such judgment store" in str(err.value)
    assert not missing.exists()
    with JudgmentStore(missing) as store:  # writable: a missing file is a new store
        assert store.count() == 0


def test_an_old_format_store_still_gives_its_schema_message(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("CREATE TABLE judgments (query_id TEXT, stage INTEGER, judge_name TEXT)")
    conn.commit()
    conn.close()
    before = listing(tmp_path)
    with pytest.raises(ConfigError) as err:
        JudgmentStore(path)
    assert "schema 1" in str(err.value) and str(path) in str(err.value)
    assert listing(tmp_path) == before


def test_a_store_of_the_previous_release_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with JudgmentStore(path) as store:
        store.put("q1", 1, "stage1", CFG, ok_output())
    # the previous release wrote the same schema without the claims table
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE claims")
    conn.commit()
    conn.close()
    with JudgmentStore(path, readonly=True) as store:
        assert store.get("q1", 1, config_hash(CFG)) is not None
        assert set(store.final_verdicts()) == {"q1"}
    with JudgmentStore(path) as store:
        record = store.get("q1", 1, config_hash(CFG))
        assert record is not None and record.better == ["a"]
        assert store.claim(KEY, new_owner())  # the claims table is added on a writable open
        assert len(store.claims()) == 1


# -- partial cascades --------------------------------------------------------------------------------------------


class JudgeDied(RuntimeError):
    pass


class DyingJudge(LexicalListwiseJudge):
    """Fault injection: a real listwise judge whose process 'dies' (raises) after `after` calls."""

    def __init__(self, after: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.after = after
        self.calls = 0

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        if self.calls >= self.after:
            raise JudgeDied("the stage-2 judge died")
        self.calls += 1
        return super().judge(instance, docids)


STAGE2 = {"threshold": 0.25, "template": "stage2"}


def two_stage() -> CascadeConfig:
    return parse_config(
        {
            "name": "partial",
            "stages": [
                {"name": "cheap", "backend": "lexical-listwise", "mode": "verdict", "params": {"threshold": 0.2}},
                {"name": "strong", "backend": "lexical-listwise", "mode": "verdict", "params": STAGE2},
            ],
        }
    )


@pytest.fixture(scope="module")
def partial_store(tmp_path_factory: pytest.TempPathFactory, sample_train: Path) -> dict[str, Any]:
    """A store left by a 2-stage run over the shipped sample whose stage-2 judge died after 2 instances."""
    path = tmp_path_factory.mktemp("partial") / "judgments.db"
    with JudgmentStore(path) as store:
        with pytest.raises(JudgeDied):
            run_cascade(sample_train, two_stage(), store, judges={"strong": DyingJudge(2, **STAGE2)})
        stage1 = {v.query_id: v for v in store.iter_verdicts(stage=1)}
        stage2 = {v.query_id for v in store.iter_verdicts(stage=2)}
    routed = {q for q, v in stage1.items() if v.status == "ok" and v.routed}
    assert len(stage1) == 24 and len(stage2) == 2 and stage2 < routed and len(routed) > 4
    return {"path": path, "routed": routed, "judged2": stage2, "unrouted": set(stage1) - routed}


def test_pending_and_final_verdicts_of_an_unfinished_run(partial_store: dict[str, Any]) -> None:
    waiting = partial_store["routed"] - partial_store["judged2"]
    with JudgmentStore(partial_store["path"], readonly=True) as store:
        assert store.pending() == dict.fromkeys(waiting, 2)
        with pytest.raises(PartialCascade) as err:
            store.final_verdicts()
        assert err.value.stage == 2 and set(err.value.pending) == waiting
        assert f"{len(waiting)} instance(s) routed to stage 2" in str(err.value)
        partial = store.final_verdicts(allow_partial=True)
    # the unjudged are left out, never given their stage-1 verdict
    assert set(partial) == partial_store["unrouted"] | partial_store["judged2"]
    assert not set(partial) & waiting
    assert all(partial[q].stage == 2 for q in partial_store["judged2"])
    assert all(partial[q].stage == 1 for q in partial_store["unrouted"])


def test_resuming_the_run_completes_it(partial_store: dict[str, Any], sample_train: Path, tmp_path: Path) -> None:
    path = tmp_path / "judgments.db"
    shutil.copy(partial_store["path"], path)
    with JudgmentStore(path) as store:
        report = run_cascade(sample_train, two_stage(), store)
        assert report.stages[0].judged_now == 0  # stage 1 is all in the store
        assert report.stages[1].judged_now == len(partial_store["routed"]) - 2
        assert store.pending() == {}
        final = store.final_verdicts()
    assert len(final) == 24


def test_cli_relabel_refuses_a_partial_run_unless_allowed(
    partial_store: dict[str, Any], sample_train: Path, tmp_path: Path
) -> None:
    waiting = len(partial_store["routed"]) - 2
    out = tmp_path / "clean.jsonl"
    args = ["relabel", str(sample_train), "--store", str(partial_store["path"]), "-o", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert (
        f"{waiting} instance(s) routed to stage 2 are not judged yet: resume the judge run, or pass --allow-partial"
        in one_line(refused.stderr)
    )
    assert "Traceback" not in refused.output and not out.exists()
    allowed = runner.invoke(app, [*args, "--allow-partial", "--json"])
    assert allowed.exit_code == 0, allowed.output
    report = json.loads(allowed.stdout)
    assert report["verdicts"] == 24 - waiting
    assert report["total"]["unjudged"] == waiting and report["total"]["instances_in"] == 24
    assert out.exists()


def test_cli_agreement_refuses_a_partial_run_unless_allowed(partial_store: dict[str, Any]) -> None:
    waiting = len(partial_store["routed"]) - 2
    message = f"{waiting} instance(s) routed to stage 2 are not judged yet"
    agreement = ["agreement", "--a", "final", "--b", "stage:1", "--store", str(partial_store["path"]), "--json"]
    refused = runner.invoke(app, agreement)
    assert refused.exit_code == 2 and message in one_line(refused.stderr), refused.output
    allowed = runner.invoke(app, [*agreement, "--allow-partial"])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["a"] == "final"


@pytest.mark.slow  # the page's plots load matplotlib
def test_cli_report_refuses_a_partial_run_unless_allowed(partial_store: dict[str, Any], tmp_path: Path) -> None:
    waiting = len(partial_store["routed"]) - 2
    message = f"{waiting} instance(s) routed to stage 2 are not judged yet"
    store = str(partial_store["path"])
    page = tmp_path / "report.html"
    refused = runner.invoke(app, ["report", "--store", store, "-o", str(page)])
    assert refused.exit_code == 2 and message in one_line(refused.stderr), refused.output
    assert not page.exists()
    allowed = runner.invoke(app, ["report", "--store", store, "-o", str(page), "--allow-partial"])
    assert allowed.exit_code == 0, allowed.output
    assert page.read_text(encoding="utf-8").startswith("<!")


# -- runs interrupted before their last stage has spoken (issue 20) ----------------------------------------------


class InterruptedJudge(LexicalListwiseJudge):
    """Fault injection: a real listwise judge whose run is interrupted (Ctrl-C) after `after` calls."""

    def __init__(self, after: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.after = after
        self.calls = 0

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        if self.calls >= self.after:
            raise KeyboardInterrupt
        self.calls += 1
        return super().judge(instance, docids)


STAGE1 = {"threshold": 0.2}


def one_stage() -> CascadeConfig:
    return parse_config(
        {
            "name": "one",
            "stages": [{"name": "cheap", "backend": "lexical-listwise", "mode": "verdict", "params": STAGE1}],
        }
    )


@pytest.fixture(scope="module")
def killed_in_stage1(tmp_path_factory: pytest.TempPathFactory, sample_train: Path) -> dict[str, Any]:
    """A store left by a 2-stage run over the shipped sample interrupted during stage 1, after 10 instances."""
    path = tmp_path_factory.mktemp("killed1") / "judgments.db"
    with JudgmentStore(path) as store:
        with pytest.raises(KeyboardInterrupt):
            run_cascade(sample_train, two_stage(), store, judges={"cheap": InterruptedJudge(10, **STAGE1)})
        stage1 = {v.query_id: v for v in store.iter_verdicts(stage=1)}
    routed = {q for q, v in stage1.items() if v.status == "ok" and v.routed}
    assert len(stage1) == 10 and routed and set(stage1) - routed
    return {"path": path, "judged1": set(stage1), "routed": routed, "unrouted": set(stage1) - routed}


@pytest.fixture(scope="module")
def killed_one_stage(tmp_path_factory: pytest.TempPathFactory, sample_train: Path) -> Path:
    """A store left by a one-stage run over the shipped sample (24 instances) interrupted after 7 instances."""
    path = tmp_path_factory.mktemp("killed-one") / "judgments.db"
    with JudgmentStore(path) as store, pytest.raises(KeyboardInterrupt):
        run_cascade(sample_train, one_stage(), store, judges={"cheap": InterruptedJudge(7, **STAGE1)})
    return path


def test_a_run_interrupted_in_stage_1_counts_what_stage_1_has_not_judged(killed_in_stage1: dict[str, Any]) -> None:
    unjudged = 24 - len(killed_in_stage1["judged1"])
    with JudgmentStore(killed_in_stage1["path"], readonly=True) as store:
        pending = store.pending()
        assert sum(1 for k in pending.values() if k == 1) == unjudged
        assert {q for q, k in pending.items() if k == 2} == killed_in_stage1["routed"]
        with pytest.raises(PartialCascade) as err:
            store.final_verdicts()
        assert err.value.stage == 1 and err.value.final == len(killed_in_stage1["unrouted"])
        assert f"{unjudged} instance(s) routed to stage 1" in str(err.value)
        assert f"{len(killed_in_stage1['routed'])} instance(s) routed to stage 2" in str(err.value)
        partial = store.final_verdicts(allow_partial=True)
        # only what routing stopped at stage 1 is final; nothing routed on keeps its stage-1 verdict
        assert set(partial) == killed_in_stage1["unrouted"] and set(partial.pending) == set(pending)
        assert len(list(store.iter_verdicts(stage=1))) == 10  # the `pending` rows are no verdicts


def test_cli_relabel_and_agreement_refuse_a_run_interrupted_in_stage_1(
    killed_in_stage1: dict[str, Any], sample_train: Path, tmp_path: Path
) -> None:
    final = len(killed_in_stage1["unrouted"])
    out = tmp_path / "clean.jsonl"
    args = ["relabel", str(sample_train), "--store", str(killed_in_stage1["path"]), "-o", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    message = one_line(refused.stderr)
    assert f"unfinished cascade run: {final} instance(s) have a final verdict;" in message
    assert f"{24 - 10} instance(s) routed to stage 1" in message and "pass --allow-partial" in message
    assert "Traceback" not in refused.output and not out.exists()
    allowed = runner.invoke(app, [*args, "--allow-partial", "--json"])
    assert allowed.exit_code == 0, allowed.output
    report = json.loads(allowed.stdout)
    assert report["verdicts"] == final
    assert report["total"]["not_final"] == 24 - final == report["total"]["unjudged"]
    assert report["total"]["negatives_moved"] == 0  # unrouted at stage 1: nothing flagged, nothing moved
    agreement = ["agreement", "--a", "final", "--b", "stage:1", "--store", str(killed_in_stage1["path"]), "--json"]
    refused = runner.invoke(app, agreement)
    assert refused.exit_code == 2 and f"{24 - 10} instance(s) routed to stage 1" in one_line(refused.stderr)


def test_a_one_stage_run_interrupted_midway_is_refused(killed_one_stage: Path, sample_train: Path) -> None:
    import hardneg
    from hardneg.relabeling import RelabelOptions, RelabelReport

    with JudgmentStore(killed_one_stage, readonly=True) as store:
        assert store.pending() == {q: 1 for q in store.pending()} and len(store.pending()) == 17
        with pytest.raises(PartialCascade) as err:
            store.final_verdicts()
        assert err.value.final == 7 and "17 instance(s) routed to stage 1 are not judged yet" in str(err.value)
    from hardneg.data.io import read_instances

    instances = list(read_instances(sample_train))
    with pytest.raises(PartialCascade):
        hardneg.relabel(instances, killed_one_stage)
    report = RelabelReport(RelabelOptions())
    out = hardneg.relabel(instances, killed_one_stage, allow_partial=True, report=report)
    assert len(out) == 24 and report.total.not_final == 17


def test_resuming_an_interrupted_stage_1_completes_the_run(
    killed_in_stage1: dict[str, Any], sample_train: Path, tmp_path: Path
) -> None:
    path = tmp_path / "judgments.db"
    shutil.copy(killed_in_stage1["path"], path)
    with JudgmentStore(path) as store:
        report = run_cascade(sample_train, two_stage(), store)
        assert report.stages[0].judged_now == 24 - 10 and report.stages[0].reused == 10
        assert store.pending() == {}
        assert len(store.final_verdicts()) == 24


KILL_IN_STAGE1 = """
import os, signal, sys
sys.path[:0] = [sys.argv[1]]
from hardneg.judging.store import JudgmentStore
from test_store_safety import STAGE1, InterruptedJudge, two_stage
from hardneg.judging.cascade import run_cascade

class Killed(InterruptedJudge):
    def judge(self, instance, docids):
        if self.calls >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no `finally` runs, nothing is flushed
        return super().judge(instance, docids)

with JudgmentStore(sys.argv[3]) as store:
    run_cascade(sys.argv[2], two_stage(), store, judges={"cheap": Killed(10, **STAGE1)})
"""


@pytest.mark.slow  # a child process (imports hardneg) killed with SIGKILL
def test_kill_9_in_stage_1_of_two_is_refused_by_relabel(sample_train: Path, tmp_path: Path) -> None:
    """The issue's case: killed during stage 1 of two, relabel exited 0 and moved negatives on stage-1 verdicts."""
    db, script = tmp_path / "j.db", tmp_path / "kill.py"
    script.write_text(KILL_IN_STAGE1, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), str(Path(__file__).parent), str(sample_train), str(db)],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == -9, done.stderr
    with JudgmentStore(db, readonly=True) as store:
        assert len(list(store.iter_judgments(stage=1))) == 10  # the 10 answers are stored
        with pytest.raises(PartialCascade):
            store.final_verdicts()
    out = tmp_path / "clean.jsonl"
    args = ["relabel", str(sample_train), "--store", str(db), "-o", str(out), "--json"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "routed to stage 1 are not judged yet" in one_line(refused.stderr), refused.output
    allowed = runner.invoke(app, [*args, "--allow-partial"])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["total"]["negatives_moved"] == 0  # no stage-1 verdict is read as final
