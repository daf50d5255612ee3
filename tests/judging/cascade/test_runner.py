"""The cascade runner: routing, candidates, fusion, resume, bounded retries, kill -9 safety, paid calls reused.

The judges here are small real judges (lexical overlap with the reference, tests/support/lexical_judges.py)
because they are fast and deterministic; the slow tests use the real embedding judge and the default cascade.
Each test on the real rlhn-sample (../shared) has a twin on the shipped sample (`..._on_the_sample`).
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.base import JudgeOutput
from hardneg.judging.cascade import CascadeConfig, parse_config, run_cascade
from hardneg.judging.prompts.templates import load_template
from hardneg.judging.store import JudgmentStore
from support.lexical_judges import FlakyJudge, LexicalJudge


def paper_like(t1: float = 0.45, t2: float = 0.55) -> CascadeConfig:
    return parse_config(
        {
            "stages": [
                {"name": "cheap", "backend": "lexical-listwise", "mode": "verdict", "params": {"threshold": t1}},
                {
                    "name": "strong",
                    "backend": "lexical-listwise",
                    "mode": "verdict",
                    "params": {"threshold": t2, "template": "stage2"},
                },
            ]
        }
    )


def ceil_share(share: float, n: int) -> int:
    """How many of n negatives a `route_top: share` routes on (at least one)."""
    return max(1, math.ceil(share * n))


# the shipped sample's passages are short: its overlaps with the reference stay below 0.5, so its twins of the
# rlhn-sample tests use lower thresholds
def sample_paper_like(t1: float = 0.2, t2: float = 0.25) -> CascadeConfig:
    return paper_like(t1, t2)


@pytest.mark.shared
def test_two_stage_listwise_cascade_routes_and_resumes(rlhn_stage1: Path, tmp_path: Path) -> None:
    instances = {i.query_id: i for i in read_instances(rlhn_stage1)}
    config = paper_like()
    with JudgmentStore(tmp_path / "j.db") as store:
        seen: list[tuple[str, int, int]] = []
        report = run_cascade(rlhn_stage1, config, store, progress=lambda s, d, t: seen.append((s, d, t)))
        s1, s2 = report.stages
        assert report.instances == 25
        assert (s1.routed_in, s1.judged_now, s1.judged) == (25, 25, 25)
        # the paper's rule: an instance goes on iff stage 1 listed any negative, and stage 2 sees all negatives
        stage1 = {j.query_id: j for j in store.iter_judgments(stage=1)}
        flagged1 = {q for q, j in stage1.items() if j.better or j.worse}
        assert 0 < len(flagged1) < 25 and s1.flagged == s1.routed_on == len(flagged1)
        stage2 = {j.query_id: j for j in store.iter_judgments(stage=2)}
        assert set(stage2) == flagged1 and s2.judged_now == s2.routed_in == len(flagged1)
        for qid, rec in stage2.items():
            assert rec.docids == instances[qid].negative_ids
            assert rec.template_hash is None or rec.template_hash
            assert rec.params["judge"]["template"] == load_template("stage2").sha256
        assert s1.tokens_in > 0 and s2.tokens_out > 0
        assert seen[0] == ("cheap", 0, 25) and seen[-1] == ("strong", len(flagged1), len(flagged1))
        final = store.final_verdicts(report.stage_hashes)
        assert len(final) == 25
        assert {q for q, v in final.items() if v.stage == 2} == flagged1
        # stage 2 is stricter here: its verdict replaces stage 1's
        assert sum(bool(v.better or v.worse) for v in final.values()) < len(flagged1)
        # resume: nothing is judged again; a changed stage-2 judge re-judges stage 2 only
        again = run_cascade(rlhn_stage1, config, store)
        assert [s.judged_now for s in again.stages] == [0, 0] and [s.reused for s in again.stages] == [
            25,
            len(flagged1),
        ]
        changed = run_cascade(rlhn_stage1, paper_like(t2=0.6), store)
        assert [s.judged_now for s in changed.stages] == [0, len(flagged1)]
        assert changed.stages[1].config_hash != s2.config_hash
        # a changed stage-1 judge re-judges stage 1 only. Stage 2's calls keep their identity (its judge and
        # stage number), so instances stage 1 still routes there on the same list are reused (the first keying
        # chained each stage's hash to the stages above and paid for all of them again)
        rerun = run_cascade(rlhn_stage1, paper_like(t1=0.5), store)
        assert rerun.stages[0].judged_now == 25 and rerun.stages[1].config_hash == s2.config_hash
        routed = {v.query_id for v in store.iter_verdicts(stage=1, view_hash=rerun.stages[0].view_hash) if v.routed}
        assert routed and rerun.stages[1].routed_in == len(routed)
        assert rerun.stages[1].judged_now == len(routed - flagged1) and rerun.stages[1].reused == len(routed & flagged1)


def test_two_stage_listwise_cascade_routes_and_resumes_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    instances = {i.query_id: i for i in read_instances(sample_train)}
    n = len(instances)
    config = sample_paper_like()
    with JudgmentStore(tmp_path / "j.db") as store:
        seen: list[tuple[str, int, int]] = []
        report = run_cascade(sample_train, config, store, progress=lambda s, d, t: seen.append((s, d, t)))
        s1, s2 = report.stages
        assert report.instances == n == 24
        assert (s1.routed_in, s1.judged_now, s1.judged) == (n, n, n)
        # the paper's rule: an instance goes on iff stage 1 listed any negative, and stage 2 sees all negatives
        stage1 = {j.query_id: j for j in store.iter_judgments(stage=1)}
        flagged1 = {q for q, j in stage1.items() if j.better or j.worse}
        assert 0 < len(flagged1) < n and s1.flagged == s1.routed_on == len(flagged1)
        stage2 = {j.query_id: j for j in store.iter_judgments(stage=2)}
        assert set(stage2) == flagged1 and s2.judged_now == s2.routed_in == len(flagged1)
        for qid, rec in stage2.items():
            assert rec.docids == instances[qid].negative_ids
            assert rec.params["judge"]["template"] == load_template("stage2").sha256
        assert s1.tokens_in > 0 and s2.tokens_out > 0
        assert seen[0] == ("cheap", 0, n) and seen[-1] == ("strong", len(flagged1), len(flagged1))
        final = store.final_verdicts(report.stage_hashes)
        assert len(final) == n
        assert {q for q, v in final.items() if v.stage == 2} == flagged1
        # stage 2 is stricter here: its verdict replaces stage 1's
        assert sum(bool(v.better or v.worse) for v in final.values()) < len(flagged1)
        # resume: nothing is judged again; a changed stage-2 judge re-judges stage 2 only
        again = run_cascade(sample_train, config, store)
        assert [s.judged_now for s in again.stages] == [0, 0]
        assert [s.reused for s in again.stages] == [n, len(flagged1)]
        changed = run_cascade(sample_train, sample_paper_like(t2=0.3), store)
        assert [s.judged_now for s in changed.stages] == [0, len(flagged1)]
        assert changed.stages[1].config_hash != s2.config_hash
        # a changed stage-1 judge re-judges stage 1 only; stage 2 reuses what it judged on the same list
        rerun = run_cascade(sample_train, sample_paper_like(t1=0.22), store)
        assert rerun.stages[0].judged_now == n and rerun.stages[1].config_hash == s2.config_hash
        routed = {v.query_id for v in store.iter_verdicts(stage=1, view_hash=rerun.stages[0].view_hash) if v.routed}
        assert routed and routed != flagged1 and rerun.stages[1].routed_in == len(routed)
        assert rerun.stages[1].judged_now == len(routed - flagged1) and rerun.stages[1].reused == len(routed & flagged1)


@pytest.mark.shared
def test_score_stage_routes_top_fraction_to_routed_candidates(rlhn_stage1: Path, tmp_path: Path) -> None:
    config = parse_config(
        {
            "stages": [
                {
                    "name": "lex",
                    "backend": "lexical",
                    "t_better": 0.9,
                    "t_worse": 0.2,
                    "route": "score>=0.25",
                    "route_top": 0.2,
                },
                {
                    "name": "lex2",
                    "backend": "lexical",
                    "params": {"model": "overlap-v2"},
                    "candidates": "routed",
                    "t_better": 0.5,
                },
            ]
        }
    )
    with JudgmentStore(tmp_path / "j.db") as store:
        report = run_cascade(rlhn_stage1, config, store)
        s1, s2 = report.stages
        assert s2.routed_in == s1.routed_on > 0
        for rec2 in store.iter_judgments(stage=2):
            rec1 = store.get(rec2.query_id, 1, s1.config_hash)
            assert rec1 is not None and rec1.scores is not None
            assert max(rec1.scores.values()) >= 0.25
            top = sorted(rec1.docids, key=lambda d: -rec1.scores[d])[:3]  # ceil(0.2 * 15)
            assert set(rec2.docids) == set(top)
            assert rec2.docids == [d for d in rec1.docids if d in set(top)]  # prompt order kept
            # thresholds turn scores into lists (t_worse defaults to t_better: no worse list)
            assert rec2.worse == [] and rec2.better == [d for d in rec2.docids if rec2.scores[d] >= 0.5]
        for rec1 in store.iter_judgments(stage=1):
            assert rec1.better == [d for d in rec1.docids if rec1.scores[d] >= 0.9]
            assert rec1.worse == [d for d in rec1.docids if 0.2 <= rec1.scores[d] < 0.9]


def test_score_stage_routes_top_fraction_to_routed_candidates_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    config = parse_config(
        {
            "stages": [
                {"name": "lex", "backend": "lexical", "t_better": 0.4, "t_worse": 0.2, "route": "score>=0.25",
                 "route_top": 0.2},
                {"name": "lex2", "backend": "lexical", "params": {"model": "overlap-v2"}, "candidates": "routed",
                 "t_better": 0.3},
            ]
        }
    )  # fmt: skip
    with JudgmentStore(tmp_path / "j.db") as store:
        report = run_cascade(sample_train, config, store)
        s1, s2 = report.stages
        assert s2.routed_in == s1.routed_on > 0
        for rec2 in store.iter_judgments(stage=2):
            rec1 = store.get(rec2.query_id, 1, s1.config_hash)
            assert rec1 is not None and rec1.scores is not None
            assert max(rec1.scores.values()) >= 0.25
            top = sorted(rec1.docids, key=lambda d: -rec1.scores[d])[: ceil_share(0.2, len(rec1.docids))]
            assert set(rec2.docids) == set(top)
            assert rec2.docids == [d for d in rec1.docids if d in set(top)]  # prompt order kept
            # thresholds turn scores into lists (t_worse defaults to t_better: no worse list)
            assert rec2.worse == [] and rec2.better == [d for d in rec2.docids if rec2.scores[d] >= 0.3]
        assert any(rec.better for rec in store.iter_judgments(stage=2))
        for rec1 in store.iter_judgments(stage=1):
            assert rec1.better == [d for d in rec1.docids if rec1.scores[d] >= 0.4]
            assert rec1.worse == [d for d in rec1.docids if 0.2 <= rec1.scores[d] < 0.4]


@pytest.mark.shared
def test_failed_calls_are_recorded_and_retried_up_to_max_attempts(rlhn_stage1: Path, tmp_path: Path) -> None:
    ids = [i.query_id for i in read_instances(rlhn_stage1)]
    config = parse_config({"max_attempts": 2, "stages": [{"name": "s", "backend": "lexical", "t_better": 0.5}]})
    flaky = FlakyJudge(fail_ids=ids[:3])
    with JudgmentStore(tmp_path / "j.db") as store:
        report = run_cascade(rlhn_stage1, config, store, judges={"s": flaky})
        assert report.stages[0].failed == 3 and report.stages[0].judged == 22 and flaky.calls == 25
        rec = store.get(ids[0], 1, report.stages[0].config_hash)
        assert rec is not None and rec.status == "failed" and rec.reason == "HTTP 503 from the test"
        final = store.final_verdicts(report.stage_hashes)
        assert final[ids[0]].status == "failed"  # never "clean"
        run_cascade(rlhn_stage1, config, store, judges={"s": flaky})
        assert flaky.calls == 28  # only the 3 failures were retried
        run_cascade(rlhn_stage1, config, store, judges={"s": flaky})
        assert flaky.calls == 28  # given up after max_attempts
        flaky.fail_ids = set()
        fixed = run_cascade(
            rlhn_stage1, parse_config({**config.model_dump(), "max_attempts": 3}), store, judges={"s": flaky}
        )
        assert flaky.calls == 31 and fixed.stages[0].failed == 0 and fixed.stages[0].judged == 25
        assert store.get(ids[0], 1, report.stages[0].config_hash).attempts == 3  # type: ignore[union-attr]


def test_failed_calls_are_recorded_and_retried_up_to_max_attempts_on_the_sample(
    sample_train: Path, tmp_path: Path
) -> None:
    ids = [i.query_id for i in read_instances(sample_train)]
    n = len(ids)
    config = parse_config({"max_attempts": 2, "stages": [{"name": "s", "backend": "lexical", "t_better": 0.5}]})
    flaky = FlakyJudge(fail_ids=ids[:3])
    with JudgmentStore(tmp_path / "j.db") as store:
        report = run_cascade(sample_train, config, store, judges={"s": flaky})
        assert report.stages[0].failed == 3 and report.stages[0].judged == n - 3 and flaky.calls == n
        rec = store.get(ids[0], 1, report.stages[0].config_hash)
        assert rec is not None and rec.status == "failed" and rec.reason == "HTTP 503 from the test"
        final = store.final_verdicts(report.stage_hashes)
        assert final[ids[0]].status == "failed"  # never "clean"
        run_cascade(sample_train, config, store, judges={"s": flaky})
        assert flaky.calls == n + 3  # only the 3 failures were retried
        run_cascade(sample_train, config, store, judges={"s": flaky})
        assert flaky.calls == n + 3  # given up after max_attempts
        flaky.fail_ids = set()
        fixed = run_cascade(
            sample_train, parse_config({**config.model_dump(), "max_attempts": 3}), store, judges={"s": flaky}
        )
        assert flaky.calls == n + 6 and fixed.stages[0].failed == 0 and fixed.stages[0].judged == n
        assert store.get(ids[0], 1, report.stages[0].config_hash).attempts == 3  # type: ignore[union-attr]


class CauseJudge(FlakyJudge):
    """Fault injection: fails the calls of `fail_ids` with a given reason (what the API judges write)."""

    def __init__(self, reason: str, timeouts: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.reason, self.timeouts = reason, timeouts

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        self.calls += 1
        if instance.query_id in self.fail_ids:
            extra = {"timeouts": self.timeouts} if self.timeouts else {}
            return JudgeOutput(docids=list(docids), status="failed", reason=self.reason, extra=extra)
        return LexicalJudge.judge(self, instance, docids)


def test_refused_credentials_do_not_use_up_max_attempts(sample_train: Path, tmp_path: Path) -> None:
    """Issue 20: runs with a wrong key used up max_attempts; once the key was fixed, nothing was retried."""
    ids = [i.query_id for i in read_instances(sample_train)]
    config = parse_config({"max_attempts": 2, "stages": [{"name": "s", "backend": "lexical", "t_better": 0.5}]})
    refused = CauseJudge("AuthenticationError HTTP 401: Incorrect API key provided (after 1 attempt(s))",
                         fail_ids=ids[:3])  # fmt: skip
    with JudgmentStore(tmp_path / "j.db") as store:
        for run in range(4):  # more runs with the wrong key than max_attempts
            report = run_cascade(sample_train, config, store, judges={"s": refused})
            assert report.failures() == {"auth": 3}
            assert refused.calls == len(ids) + 3 * run
        chash = report.stages[0].config_hash
        assert {store.get(q, 1, chash).attempts for q in ids[:3]} == {0}  # type: ignore[union-attr]
        refused.fail_ids = set()  # the key is fixed: the same command sends them
        fixed = run_cascade(sample_train, config, store, judges={"s": refused})
        assert fixed.stages[0].judged_now == 3 and fixed.failed == 0
        assert {store.get(q, 1, chash).attempts for q in ids[:3]} == {1}  # type: ignore[union-attr]


def test_a_call_that_timed_out_max_timeouts_times_is_resent_only_with_retry_failed(
    sample_train: Path, tmp_path: Path
) -> None:
    """Issue 20: a timed-out call (possibly billed) was re-sent on every run; now its timeouts add up over runs
    and past `max_timeouts` it is left failed (timeout) until `retry_failed`."""
    ids = [i.query_id for i in read_instances(sample_train)]
    config = parse_config(
        {"max_attempts": 5, "max_timeouts": 2, "stages": [{"name": "s", "backend": "lexical", "t_better": 0.5}]}
    )
    slow = CauseJudge("APITimeoutError: Request timed out. (after 1 attempt(s))", timeouts=1, fail_ids=ids[:2])
    with JudgmentStore(tmp_path / "j.db") as store:
        first = run_cascade(sample_train, config, store, judges={"s": slow})
        chash = first.stages[0].config_hash
        assert first.failures() == {"timeout": 2}
        second = run_cascade(sample_train, config, store, judges={"s": slow})
        assert second.stages[0].judged_now == 2  # one timeout each so far: sent again
        assert {store.get(q, 1, chash).extra["timeouts"] for q in ids[:2]} == {2}  # type: ignore[union-attr]
        for _ in range(2):  # max_timeouts reached: no further run sends them (max_attempts is 5)
            again = run_cascade(sample_train, config, store, judges={"s": slow})
            assert again.stages[0].judged_now == 0 and again.failed == 2
        assert slow.calls == len(ids) + 2
        slow.fail_ids = set()
        retried = run_cascade(sample_train, config, store, judges={"s": slow}, retry_failed=True)
        assert retried.stages[0].judged_now == 2 and retried.failed == 0 and slow.calls == len(ids) + 4


def test_retry_failed_sends_calls_past_max_attempts_once_more(sample_train: Path, tmp_path: Path) -> None:
    ids = [i.query_id for i in read_instances(sample_train)]
    config = parse_config({"max_attempts": 1, "stages": [{"name": "s", "backend": "lexical", "t_better": 0.5}]})
    flaky = FlakyJudge(fail_ids=ids[:2])
    with JudgmentStore(tmp_path / "j.db") as store:
        run_cascade(sample_train, config, store, judges={"s": flaky})
        assert run_cascade(sample_train, config, store, judges={"s": flaky}).stages[0].judged_now == 0
        again = run_cascade(sample_train, config, store, judges={"s": flaky}, retry_failed=True)
        assert again.stages[0].judged_now == 2 and again.failed == 2


KILL_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("cascade_test_mod", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
from hardneg.judging.cascade import parse_config, run_cascade
from hardneg.judging.store import JudgmentStore
cfg = parse_config({"stages": [{"name": "s", "backend": "lexical", "t_better": 0.5,
                                "params": {"delay": 0.15, "log": sys.argv[4]}}]})
with JudgmentStore(sys.argv[3]) as store:
    run_cascade(sys.argv[2], cfg, store)
"""


@pytest.mark.shared
@pytest.mark.slow
def test_kill_9_midway_then_resume(rlhn_stage1: Path, tmp_path: Path) -> None:
    db, log1, log2 = tmp_path / "j.db", tmp_path / "calls1.log", tmp_path / "calls2.log"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), __file__, str(rlhn_stage1), str(db), str(log1)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                        stored = conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0  # the table is not created yet
            if stored >= 8:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the judging process ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with JudgmentStore(db) as store:
        before = {j.query_id for j in store.iter_judgments()}
        assert 8 <= len(before) < 25
        assert all(j.status == "ok" and j.scores and len(j.scores) == 15 for j in store.iter_judgments())
        calls1 = log1.read_text().split()
        assert len(calls1) - len(before) <= 1  # at most the call in flight was lost
        config = parse_config(
            {
                "stages": [
                    {"name": "s", "backend": "lexical", "t_better": 0.5, "params": {"delay": 0.0, "log": str(log1)}}
                ]
            }
        )
        # the resumed run uses the same config (delay and log are not in the judge's config)
        resumed = LexicalJudge(log=str(log2))
        report = run_cascade(rlhn_stage1, config, store, judges={"s": resumed})
        calls2 = log2.read_text().split()
        assert not set(calls2) & before  # no finished record was judged again
        assert len(calls2) == 25 - len(before) == report.stages[0].judged_now
        rows = store._conn.execute("SELECT COUNT(*), COUNT(DISTINCT query_id), MAX(attempts) FROM judgments").fetchone()
        assert tuple(rows) == (25, 25, 1)


@pytest.mark.shared
@pytest.mark.slow
def test_embedding_stage_then_routed_lexical_stage(rlhn_stage1: Path, tmp_path: Path) -> None:
    """The local cascade's shape with the real MiniLM embedding judge as stage 1."""
    stages: list[dict[str, Any]] = [
        {
            "name": "embed",
            "backend": "embedding",
            "t_better": 0.8,
            "t_worse": 0.5,
            "route": "score>=0.5",
            "route_top": 0.5,
        },
        {"name": "lex", "backend": "lexical", "candidates": "routed", "t_better": 0.9, "t_worse": 0.5},
    ]
    try:
        import hardneg.retrieval.fusion  # noqa: F401

        stages[1].update({"fuse": "rank-average", "t_better": 0.95, "t_worse": 0.75})
    except ImportError:
        pass
    config = parse_config({"stages": stages})
    # 4 instances keep the encoding short on a shared 2-core machine
    small = tmp_path / "four.jsonl"
    write_instances(small, list(read_instances(rlhn_stage1))[:4])
    with JudgmentStore(tmp_path / "j.db") as store:
        report = run_cascade(small, config, store)
        s1, s2 = report.stages
        assert s1.judged == 4 and s1.model == "all-MiniLM-L6-v2"
        assert 0 < s2.routed_in == s1.routed_on <= 4
        for rec in store.iter_judgments(stage=1):
            assert rec.scores is not None and len(rec.scores) == 15
            assert all(-1.0 <= s <= 1.0 for s in rec.scores.values())
        for rec in store.iter_judgments(stage=2):
            assert len(rec.docids) == 8  # ceil(0.5 * 15)
        # the record keeps the judge's own scores; the fused ones the thresholds read are in the derived verdicts
        for verdict in store.iter_verdicts(stage=2, view_hash=s2.view_hash):
            rec = store.get(verdict.query_id, 2, s2.config_hash)
            assert rec is not None and verdict.raw_scores == rec.scores and set(verdict.docids) == set(rec.docids)
            if config.stages[1].fuse == "rank-average":
                assert verdict.scores != verdict.raw_scores
        final = store.final_verdicts(report.stage_hashes)
        assert len(final) == 4 and {v.stage for v in final.values()} <= {1, 2}
        assert [s.judged_now for s in run_cascade(small, config, store).stages] == [0, 0]


# an instance with GPT-4o false negatives whose closest negative has cosine 0.76 with the reference (routed on)
FLAGGED_BY_GPT4O = "2a1a06ab72700fe07914c144a23240b6"
CLOSEST_NEGATIVE = "51f09d8025fb86f43c74dfdb82941039"


@pytest.mark.shared
@pytest.mark.slow
def test_clean_with_the_local_llm_cascade(rlhn_stage1: Path, tmp_path: Path) -> None:
    """The LLM cascade of examples/judge-local-llm.yaml (MiniLM, then Qwen2.5-Coder-1.5B fused) on 1 instance: the
    one real-LLM cascade test."""
    pytest.importorskip("llama_cpp")
    from hardneg.judging.cascade import load_cascade
    from hardneg.pipeline import CleanReport, clean

    config = load_cascade(Path(__file__).resolve().parents[3] / "examples" / "judge-local-llm.yaml")
    assert [s.backend for s in config.stages] == ["embedding", "llm-pointwise"]
    small = tmp_path / "one.jsonl"
    (inst,) = [i for i in read_instances(rlhn_stage1) if i.query_id == FLAGGED_BY_GPT4O]
    # 4 negatives (its closest one first), so stage 2 scores only 2 pairs: LLM calls are slow on a shared CPU
    inst.negatives = [inst.negative(CLOSEST_NEGATIVE), *[n for n in inst.negatives if n.docid != CLOSEST_NEGATIVE][:3]]
    write_instances(small, [inst])
    out = tmp_path / "clean.jsonl"
    report = CleanReport()
    assert clean(small, store=tmp_path / "j.db", config=config, output=out, report=report) == out
    s1, s2 = report.cascade.stages
    assert s1.judged == 1 and s1.failed == 0
    assert s2.routed_in == s1.routed_on == 1 and s2.failed == 0 and s2.judged == 1
    with JudgmentStore(tmp_path / "j.db") as store:
        for rec in store.iter_judgments(stage=2):
            assert len(rec.docids) == 2 and CLOSEST_NEGATIVE in rec.docids
            assert all(0.0 <= s <= 1.0 for s in rec.scores.values())  # type: ignore[union-attr]  # P(yes)
            verdict = store.get_verdict(rec.query_id, 2, s2.view_hash)
            assert verdict is not None and verdict.raw_scores == rec.scores
            assert all(0.0 <= s <= 1.0 for s in verdict.scores.values())  # type: ignore[union-attr]  # rank average
    assert report.relabel.total.written + report.relabel.total.dropped_total == 1
    assert len(list(read_instances(out))) == report.relabel.total.written


# --- a judgment bought once is never bought again ------------------------------------------------------------
class CountingJudge(LexicalJudge):
    """The lexical judge, remembering every (query_id, docid) it was asked about."""

    kind: ClassVar[str] = "lexical"  # the same call identity as LexicalJudge

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.pairs: list[tuple[str, str]] = []

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        self.pairs.extend((instance.query_id, d) for d in docids)
        return super().judge(instance, docids)


def two_score_stages(t1: float = 0.9, t2: float = 0.5, top: float = 0.2, model2: str = "overlap-v2") -> CascadeConfig:
    return parse_config(
        {
            "stages": [
                {"name": "lex", "backend": "lexical", "t_better": t1, "t_worse": 0.2, "route": "score>=0.25",
                 "route_top": top},
                {"name": "lex2", "backend": "lexical", "params": {"model": model2}, "candidates": "routed",
                 "t_better": t2},
            ]
        }
    )  # fmt: skip


def flags(verdicts: dict[str, Any]) -> dict[str, tuple[int, list[str], list[str], str]]:
    return {q: (v.stage, v.better, v.worse, v.status) for q, v in verdicts.items()}


@pytest.mark.shared
def test_changed_thresholds_rederive_verdicts_without_a_call(rlhn_stage1: Path, tmp_path: Path) -> None:
    j1, j2 = CountingJudge(), CountingJudge(model="overlap-v2")
    judges = {"lex": j1, "lex2": j2}
    with JudgmentStore(tmp_path / "j.db") as store:
        first = run_cascade(rlhn_stage1, two_score_stages(), store, judges=judges)
        s1, s2 = first.stages
        assert (s1.judged_now, s1.negatives_judged_now) == (25, 25 * 15)
        assert 0 < s2.judged_now == s2.routed_in == s1.routed_on and s2.negatives_judged_now == 3 * s2.routed_in
        _thresholds_rederive_without_a_call(rlhn_stage1, store, judges, first, 0.5, 25)


def test_changed_thresholds_rederive_verdicts_without_a_call_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    instances = {i.query_id: i for i in read_instances(sample_train)}
    j1, j2 = CountingJudge(), CountingJudge(model="overlap-v2")
    judges = {"lex": j1, "lex2": j2}
    with JudgmentStore(tmp_path / "j.db") as store:
        first = run_cascade(sample_train, two_score_stages(), store, judges=judges)
        s1, s2 = first.stages
        assert (s1.judged_now, s1.negatives_judged_now) == (24, sum(len(i.negatives) for i in instances.values()))
        assert 0 < s2.judged_now == s2.routed_in == s1.routed_on
        routed = [instances[rec.query_id] for rec in store.iter_judgments(stage=2)]
        assert s2.negatives_judged_now == sum(ceil_share(0.2, len(i.negatives)) for i in routed)
        _thresholds_rederive_without_a_call(sample_train, store, judges, first, 0.3, len(instances))


def _thresholds_rederive_without_a_call(
    data: Path, store: JudgmentStore, judges: dict, first: Any, t1: float, records: int
) -> None:
    """After `first`: a changed stage-2 cut, then a changed stage-1 cut (routing unchanged), re-derive the verdicts
    from the stored scores with no call; every run stays readable by its hashes."""
    j1, j2 = judges["lex"], judges["lex2"]
    s1, s2 = first.stages
    calls = (len(j1.pairs), len(j2.pairs))
    final1 = store.final_verdicts(first.stage_hashes)
    assert flags(store.final_verdicts()) == flags(final1)  # what `hardneg relabel --store` reads

    # stage 2's t_better: no call, stage 2's verdicts derived again from the stored scores
    lower = run_cascade(data, two_score_stages(t2=0.3), store, judges=judges)
    assert [s.judged_now for s in lower.stages] == [0, 0] and (len(j1.pairs), len(j2.pairs)) == calls
    assert [s.config_hash for s in lower.stages] == [s1.config_hash, s2.config_hash]
    assert lower.stages[0].view_hash == s1.view_hash and lower.stages[1].view_hash != s2.view_hash
    final2 = store.final_verdicts(lower.stage_hashes)
    assert flags(final2) != flags(final1)
    for verdict in store.iter_verdicts(stage=2, view_hash=lower.stages[1].view_hash):
        rec = store.get(verdict.query_id, 2, s2.config_hash)
        assert rec is not None and rec.scores is not None
        assert verdict.better == [d for d in verdict.docids if rec.scores[d] >= 0.3]
        assert final2[verdict.query_id].better == verdict.better
    assert flags(store.final_verdicts()) == flags(final2)  # the latest run is the current one
    assert flags(store.final_verdicts(first.stage_hashes)) == flags(final1)  # the first is still readable

    # stage 1's t_better (routing unchanged): stage-1 verdicts change, still no call
    strict = run_cascade(data, two_score_stages(t1=t1), store, judges=judges)
    assert [s.judged_now for s in strict.stages] == [0, 0] and (len(j1.pairs), len(j2.pairs)) == calls
    only1 = {1: strict.stage_hashes[1]}
    assert flags(store.final_verdicts(only1)) != flags(store.final_verdicts({1: s1.view_hash}))
    for verdict in store.iter_verdicts(stage=1, view_hash=strict.stages[0].view_hash):
        assert verdict.better == [d for d in verdict.docids if verdict.raw_scores[d] >= t1]  # type: ignore[index]
    # the stage summary counts each paid call once, whatever read it
    summary = {row["stage"]: row for row in store.stage_summary()}
    assert summary[1]["records"] == records and summary[2]["records"] == s2.routed_in


@pytest.mark.shared
def test_widened_route_top_scores_only_the_newly_routed_negatives(rlhn_stage1: Path, tmp_path: Path) -> None:
    j1, j2 = CountingJudge(), CountingJudge(model="overlap-v2")
    judges = {"lex": j1, "lex2": j2}
    with JudgmentStore(tmp_path / "j.db") as store:
        narrow = run_cascade(rlhn_stage1, two_score_stages(top=0.2), store, judges=judges)
        routed = narrow.stages[1].routed_in
        final_narrow = flags(store.final_verdicts())
        wide = run_cascade(rlhn_stage1, two_score_stages(top=0.4), store, judges=judges)
        s1, s2 = wide.stages
        assert s1.judged_now == 0 and s2.routed_in == routed
        # ceil(0.4 * 15) = 6 negatives go on instead of ceil(0.2 * 15) = 3: only the 3 new ones are scored
        assert s2.judged_now == s2.extended == routed and s2.negatives_judged_now == 3 * routed
        assert len(j2.pairs) == 6 * routed and len(set(j2.pairs)) == len(j2.pairs)  # no negative scored twice
        for rec in store.iter_judgments(stage=2):
            assert len(rec.docids) == len(rec.scores or {}) == 6 and rec.attempts == 2
            verdict = store.get_verdict(rec.query_id, 2, s2.view_hash)
            assert verdict is not None and verdict.docids == rec.docids  # the merged record keeps prompt order
        # narrowing again reads a subset of the stored scores: no call, the first verdicts come back
        again = run_cascade(rlhn_stage1, two_score_stages(top=0.2), store, judges=judges)
        assert [s.judged_now for s in again.stages] == [0, 0] and len(j2.pairs) == 6 * routed
        assert flags(store.final_verdicts()) == final_narrow
        assert again.stage_hashes == narrow.stage_hashes


def test_widened_route_top_scores_only_the_newly_routed_negatives_on_the_sample(
    sample_train: Path, tmp_path: Path
) -> None:
    instances = {i.query_id: i for i in read_instances(sample_train)}
    j1, j2 = CountingJudge(), CountingJudge(model="overlap-v2")
    judges = {"lex": j1, "lex2": j2}
    with JudgmentStore(tmp_path / "j.db") as store:
        narrow = run_cascade(sample_train, two_score_stages(top=0.2), store, judges=judges)
        routed = narrow.stages[1].routed_in
        final_narrow = flags(store.final_verdicts())
        wide = run_cascade(sample_train, two_score_stages(top=0.4), store, judges=judges)
        s1, s2 = wide.stages
        assert s1.judged_now == 0 and s2.routed_in == routed > 0
        # ceil(0.4 * n) negatives go on instead of ceil(0.2 * n): only the new ones are scored
        sizes = {q: len(instances[q].negatives) for q in {rec.query_id for rec in store.iter_judgments(stage=2)}}
        new = sum(ceil_share(0.4, n) - ceil_share(0.2, n) for n in sizes.values())
        assert s2.judged_now == s2.extended == routed and s2.negatives_judged_now == new > 0
        assert len(j2.pairs) == sum(ceil_share(0.4, n) for n in sizes.values())
        assert len(set(j2.pairs)) == len(j2.pairs)  # no negative scored twice
        for rec in store.iter_judgments(stage=2):
            assert len(rec.docids) == len(rec.scores or {}) == ceil_share(0.4, sizes[rec.query_id])
            assert rec.attempts == 2
            verdict = store.get_verdict(rec.query_id, 2, s2.view_hash)
            assert verdict is not None and verdict.docids == rec.docids  # the merged record keeps prompt order
        # narrowing again reads a subset of the stored scores: no call, the first verdicts come back
        pairs = len(j2.pairs)
        again = run_cascade(sample_train, two_score_stages(top=0.2), store, judges=judges)
        assert [s.judged_now for s in again.stages] == [0, 0] and len(j2.pairs) == pairs
        assert flags(store.final_verdicts()) == final_narrow
        assert again.stage_hashes == narrow.stage_hashes


def _changed_model_template_or_list_is_judged_again(
    data: Path, store: JudgmentStore, paper: CascadeConfig, threshold: float
) -> None:
    """A changed model or listwise template is another call; a listwise verdict depends on the whole list shown, so
    a new list is a new call and the old list's record serves again."""
    first = run_cascade(data, two_score_stages(), store)
    routed = first.stages[1].routed_in
    assert routed > 0
    other = run_cascade(data, two_score_stages(model2="overlap-v3"), store)
    assert [s.judged_now for s in other.stages] == [0, routed]
    assert other.stages[1].config_hash != first.stages[1].config_hash
    base = run_cascade(data, paper, store)
    flagged = base.stages[1].routed_in
    assert flagged > 0
    template = paper.model_copy(deep=True)
    template.stages[1].params["template"] = "stage1"
    changed = run_cascade(data, template, store)
    assert [s.judged_now for s in changed.stages] == [0, flagged]

    def scored_then_listwise(top: float) -> CascadeConfig:
        return parse_config(
            {
                "stages": [
                    {"name": "lex", "backend": "lexical", "t_better": 0.9, "route": "score>=0.25", "route_top": top},
                    {"name": "list", "backend": "lexical-listwise", "mode": "verdict",
                     "params": {"threshold": threshold}, "candidates": "routed"},
                ]
            }
        )  # fmt: skip

    narrow = run_cascade(data, scored_then_listwise(0.2), store)
    n = narrow.stages[1].routed_in
    assert narrow.stages[0].judged_now == 0 and narrow.stages[1].judged_now == n > 0
    wide = run_cascade(data, scored_then_listwise(0.4), store)
    assert wide.stages[1].judged_now == n and wide.stages[1].extended == 0
    assert store.count(stage=2, config_hash=wide.stages[1].config_hash) == 2 * n  # one record per list
    back = run_cascade(data, scored_then_listwise(0.2), store)
    assert back.stages[1].judged_now == 0 and back.stages[1].reused == n


@pytest.mark.shared
def test_changed_model_or_template_or_listwise_list_is_judged_again(rlhn_stage1: Path, tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        _changed_model_template_or_list_is_judged_again(rlhn_stage1, store, paper_like(), 0.3)


def test_changed_model_or_template_or_listwise_list_is_judged_again_on_the_sample(
    sample_train: Path, tmp_path: Path
) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        _changed_model_template_or_list_is_judged_again(sample_train, store, sample_paper_like(), 0.2)


def test_a_budget_refused_backend_fails_before_any_call(tmp_path: Path) -> None:
    from hardneg.judging.cost import Budget

    config = parse_config(
        {
            "stages": [
                {"name": "a", "backend": "lexical", "t_better": 0.5},
                {"name": "b", "backend": "openai-batch", "params": {"model": "gpt-4o"}},
            ]
        }
    )
    path = tmp_path / "one.jsonl"
    path.write_text(
        '{"query_id": "q", "query": "x", "positive_passages": [{"docid": "p", "text": "a b"}], '
        '"negative_passages": [{"docid": "n", "text": "a c"}]}\n',
        encoding="utf-8",
    )
    with JudgmentStore(tmp_path / "j.db") as store:
        with pytest.raises(ConfigError, match=r"stages\.1 \(b\): backend 'openai-batch' cannot enforce a budget"):
            run_cascade(path, config, store, budget=Budget(1.0))
        assert store.count() == 0
