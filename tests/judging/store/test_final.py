"""Final verdicts: the highest stage that judged each instance, for the current run or the stages asked for; and
partial cascades.

- A real store left by a 2-stage run whose stage-2 judge died after 2 instances. Its final verdicts are refused
  (`PartialCascade`) unless `allow_partial`, which leaves the routed-but-unjudged instances out (never giving them
  their stage-1 verdict); `relabel`, `agreement --a final` and `report` refuse it (exit 2) or accept it with
  --allow-partial.
- Likewise a run interrupted during stage 1 of two (Ctrl-C, or kill -9: its answers stored, its verdicts not yet
  derived) and a one-stage run interrupted midway: what stage 1 has not judged is counted, and only what routing
  stopped at stage 1 is final.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.records import Instance
from hardneg.judging.base import JudgeOutput, config_hash
from hardneg.judging.cascade import CascadeConfig, parse_config, run_cascade
from hardneg.judging.store import JudgmentStore, PartialCascade, StageVerdict
from hardneg.judging.store.records import docids_key
from support.lexical_judges import LexicalListwiseJudge
from support.store_outputs import CFG, CFG2, ok, put_two_stages

runner = CliRunner()


def one_line(text: str) -> str:
    """Rich wraps long messages at the console width: compare them with the whitespace folded."""
    return " ".join(text.split())


def test_final_verdicts_highest_stage_and_filters(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        put_two_stages(store)
        final = store.final_verdicts()
        assert set(final) == {"q1", "q2", "q3"}
        assert (final["q1"].stage, final["q1"].better, final["q1"].worse) == (2, ["b"], [])
        assert (final["q2"].stage, final["q2"].status, final["q2"].better) == (1, "ok", [])
        assert (final["q3"].stage, final["q3"].status, final["q3"].reason) == (2, "failed", "rate limited")
        assert final["q3"].better == [] and final["q3"].worse == []
        only1 = store.final_verdicts({1: config_hash(CFG)})
        assert {v.stage for v in only1.values()} == {1} and only1["q3"].better == ["c"]
        other = store.final_verdicts({1: "0000000000000000"})
        assert other == {}


def test_final_verdicts_of_listwise_records_and_their_derivations(tmp_path: Path) -> None:
    chash = config_hash(CFG)
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q", 1, "mini", CFG, ok(["a"], [], ["a", "b"]), docset=docids_key(["a", "b"]))
        store.put("q", 1, "mini", CFG, ok([], ["c"], ["a", "b", "c"]), docset=docids_key(["a", "b", "c"]))
        # nothing derived yet: the records' own verdicts, latest first
        assert store.final_verdicts()["q"].worse == ["c"]

        def derived(view: str, better: list[str]) -> StageVerdict:
            return StageVerdict("q", 1, view, chash, "mini", ["a", "b"], "ok", "", better, [], routed=better or None)

        store.put_verdicts([derived("v1", ["a"]), derived("v2", [])])
        assert store.final_verdicts({1: "v1"})["q"].better == ["a"]
        assert store.final_verdicts({1: "v2"})["q"].better == []
        assert store.final_verdicts({1: chash})["q"].better == []  # a call hash reads its latest derivation
        store.set_current_run({"name": "c", "views": {1: "v1"}, "calls": {1: chash}})
        assert store.final_verdicts({1: chash})["q"].better == ["a"]  # ... or the current run's
        assert store.final_verdicts()["q"].better == ["a"]
        store.put_verdicts([], delete=[("q", 1, "v1")])
        assert store.get_verdict("q", 1, "v1") is None and store.final_verdicts() == {}
        # records no cascade derived (an import) still count beside the current run
        store.put("q9", 2, "big", CFG2, ok(["z"], []))
        assert {q: v.better for q, v in store.final_verdicts().items()} == {"q9": ["z"]}


# -- partial cascades --------------------------------------------------------------------------------------------


class JudgeDied(RuntimeError):
    pass


class StoppingJudge(LexicalListwiseJudge):
    """Fault injection: a real listwise judge that raises `stop` after `after` calls: its process 'dies'
    (`JudgeDied`), or its run is interrupted (Ctrl-C: `KeyboardInterrupt`)."""

    def __init__(self, after: int, stop: type[BaseException], **kw: Any) -> None:
        super().__init__(**kw)
        self.after = after
        self.stop = stop
        self.calls = 0

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        if self.calls >= self.after:
            raise self.stop(f"stopped after {self.after} calls")
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
            run_cascade(sample_train, two_stage(), store, judges={"strong": StoppingJudge(2, JudgeDied, **STAGE2)})
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
            interrupted = StoppingJudge(10, KeyboardInterrupt, **STAGE1)
            run_cascade(sample_train, two_stage(), store, judges={"cheap": interrupted})
        stage1 = {v.query_id: v for v in store.iter_verdicts(stage=1)}
    routed = {q for q, v in stage1.items() if v.status == "ok" and v.routed}
    assert len(stage1) == 10 and routed and set(stage1) - routed
    return {"path": path, "judged1": set(stage1), "routed": routed, "unrouted": set(stage1) - routed}


@pytest.fixture(scope="module")
def killed_one_stage(tmp_path_factory: pytest.TempPathFactory, sample_train: Path) -> Path:
    """A store left by a one-stage run over the shipped sample (24 instances) interrupted after 7 instances."""
    path = tmp_path_factory.mktemp("killed-one") / "judgments.db"
    with JudgmentStore(path) as store, pytest.raises(KeyboardInterrupt):
        run_cascade(sample_train, one_stage(), store, judges={"cheap": StoppingJudge(7, KeyboardInterrupt, **STAGE1)})
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
from test_final import STAGE1, StoppingJudge, two_stage
from hardneg.judging.cascade import run_cascade

class Killed(StoppingJudge):
    def judge(self, instance, docids):
        if self.calls >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no `finally` runs, nothing is flushed
        return super().judge(instance, docids)

with JudgmentStore(sys.argv[3]) as store:
    run_cascade(sys.argv[2], two_stage(), store, judges={"cheap": Killed(10, KeyboardInterrupt, **STAGE1)})
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
