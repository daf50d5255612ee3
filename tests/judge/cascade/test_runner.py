"""The cascade: routing, candidates, fusion, resume, bounded retries, kill -9 safety, config validation.

The judges here are small real judges (lexical overlap with the reference), defined in this file because
they are fast and deterministic; the slow test uses the real embedding judge.
"""

from __future__ import annotations

import os
import re
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
from hardneg.judge.base import Judge, JudgeOutput
from hardneg.judge.cascade import CascadeConfig, load_config, parse_config, routed_on, run_cascade
from hardneg.judge.prompts.parse import verdict_output
from hardneg.judge.prompts.templates import load_template
from hardneg.judge.registry import build_judge, register_backend
from hardneg.judge.store import JudgmentStore

_WORD = re.compile(r"[a-z0-9]+")


def overlap(a: str, b: str) -> float:
    """Share of b's distinct words found in a (a crude relevance proxy)."""
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / max(1, len(wb))


class LexicalJudge(Judge):
    """Pointwise: a negative's score is its best word overlap with a positive. Logs each call to `log`."""

    kind: ClassVar[str] = "lexical"

    def __init__(self, model: str = "overlap-v1", delay: float = 0.0, log: str | None = None) -> None:
        self.model = model
        self.delay = delay
        self.log = log

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model}

    def _log(self, instance: Instance) -> None:
        if self.log:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(instance.query_id + "\n")

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        self._log(instance)
        if self.delay:
            time.sleep(self.delay)
        scores = {d: max(overlap(instance.negative(d).text, p.text) for p in instance.positives) for d in docids}
        return JudgeOutput(docids=list(docids), scores=scores, latency_s=self.delay)


class LexicalListwiseJudge(Judge):
    """Listwise: renders a real template, writes a verdict text and parses it like an LLM answer."""

    kind: ClassVar[str] = "lexical-listwise"

    def __init__(self, threshold: float = 0.3, template: str = "stage1") -> None:
        self.threshold = threshold
        self.template = load_template(template)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": f"overlap>={self.threshold}", "template": self.template.sha256}

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        prompt = self.template.render(instance, docids)
        better, worse = [], []
        for i, d in enumerate(docids, start=1):
            s = max(overlap(instance.negative(d).text, p.text) for p in instance.positives)
            if s >= self.threshold + 0.2:
                better.append(f"Doc ({i})")
            elif s >= self.threshold:
                worse.append(f"Doc ({i})")
        text = (
            "<thinking>...</thinking>\n<verdict>\n"
            f"<better> [{', '.join(better)}] </better>,\n<worse> [{', '.join(worse)}] </worse>\n</verdict>"
        )
        return verdict_output(text, docids, "stop", tokens_in=len(prompt.split()), tokens_out=len(text.split()))


class FlakyJudge(LexicalJudge):
    """Fault injection: fails every call for the query ids in `fail_ids` (a real server cannot be made to)."""

    kind: ClassVar[str] = "flaky"

    def __init__(self, fail_ids: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(**kw)
        self.fail_ids = set(fail_ids)
        self.calls = 0

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        self.calls += 1
        if instance.query_id in self.fail_ids:
            return JudgeOutput(docids=list(docids), status="failed", reason="HTTP 503 from the test")
        return super().judge(instance, docids)


register_backend("lexical", LexicalJudge)
register_backend("lexical-listwise", LexicalListwiseJudge)
register_backend("flaky", FlakyJudge)


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


KILL_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("cascade_test_mod", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
from hardneg.judge.cascade import parse_config, run_cascade
from hardneg.judge.store import JudgmentStore
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


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stages\.0: t_better \(0.1\) must be >= t_worse"):
        parse_config({"stages": [{"name": "a", "backend": "lexical", "t_better": 0.1, "t_worse": 0.5}]})
    with pytest.raises(ConfigError, match="t_better is required"):
        parse_config({"stages": [{"name": "a", "backend": "embedding"}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.route: .*'any', 'better' or 'score>=T'"):
        parse_config({"stages": [{"name": "a", "backend": "openai", "route": "maybe"}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.route_top"):
        parse_config({"stages": [{"name": "a", "backend": "lexical", "t_better": 1, "route_top": 1.5}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.tbetter: Extra inputs"):
        parse_config({"stages": [{"name": "a", "backend": "lexical", "t_better": 1, "tbetter": 2}]})
    with pytest.raises(ConfigError, match="needs a score stage"):
        parse_config(
            {"stages": [{"name": "a", "backend": "openai", "route_top": 0.5}, {"name": "b", "backend": "openai"}]}
        )
    with pytest.raises(ConfigError, match="first stage sees every negative"):
        parse_config({"stages": [{"name": "a", "backend": "openai", "candidates": "routed"}]})
    with pytest.raises(ConfigError, match="stage names must be unique"):
        parse_config({"stages": [{"name": "a", "backend": "openai"}, {"name": "a", "backend": "openai"}]})
    with pytest.raises(ConfigError, match="stages: "):
        parse_config({"stages": []})
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - name: a\n    backend: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: bad YAML"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text("stages:\n  - {name: a, backend: openai, params: {model: gpt-4o-mini}}\n", encoding="utf-8")
    cfg = load_config(good)
    assert cfg.stages[0].mode == "verdict" and cfg.max_attempts == 3


def test_registry() -> None:
    with pytest.raises(ConfigError, match=r"unknown judge backend 'nope'; known: .*embedding.*llm-pointwise.*openai"):
        build_judge("nope")
    judge = build_judge("lexical", model="m")
    assert isinstance(judge, LexicalJudge) and judge.model_name == "m"
    with pytest.raises(ConfigError, match="bad parameters"):
        build_judge("lexical", colour="red")
    with pytest.raises(ConfigError, match="not available"):
        build_judge("hardneg.judge.nonexistent:Judge")
    # a dotted path works without registration
    assert type(build_judge("hardneg.judge.backends.embedding:EmbeddingJudge")).__name__ == "EmbeddingJudge"
    assert type(build_judge("embedding")).__name__ == "EmbeddingJudge"  # lazy: the model loads on first use


def test_routing_rules() -> None:
    from hardneg.judge.store import Judgment

    def rec(better: list[str], worse: list[str], scores: dict[str, float] | None = None) -> Judgment:
        return Judgment(
            "q",
            1,
            "h",
            "s",
            "b",
            "m",
            {},
            None,
            ["a", "b", "c", "d"],
            None,
            None,
            0,
            0,
            0.0,
            "ok",
            "",
            better,
            worse,
            scores,
        )

    def stage(**kw: Any):
        base = {"name": "s", "backend": "lexical", "t_better": 0.5}
        return parse_config({"stages": [{**base, **kw}]}).stages[0]

    assert routed_on(stage(), rec([], [])) is None
    assert routed_on(stage(), rec(["c"], ["a"])) == ["c", "a"]
    assert routed_on(stage(route="better"), rec([], ["a"])) is None
    assert routed_on(stage(route="better"), rec(["b"], ["a"])) == ["b"]
    scores = {"a": 0.1, "b": 0.7, "c": 0.4, "d": 0.2}
    assert routed_on(stage(route="score>=0.35"), rec([], [], scores)) == ["b", "c"]
    assert routed_on(stage(route="score>=0.8"), rec([], [], scores)) is None
    assert routed_on(stage(route="score>=0", route_top=0.5), rec([], [], scores)) == ["b", "c"]
    assert routed_on(stage(route="score>=0", route_top=0.5, route_min_score=0.5), rec([], [], scores)) == ["b"]
    failed = rec(["a"], [])
    failed.status = "failed"
    assert routed_on(stage(), failed) is None


@pytest.mark.shared
def test_cli_judge_with_config_then_resume(rlhn_stage1: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from hardneg.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: lexical-two-stage\n"
        "stages:\n"
        "  - {name: cheap, backend: lexical-listwise, mode: verdict, params: {threshold: 0.45}}\n"
        "  - {name: strong, backend: lexical-listwise, mode: verdict, params: {threshold: 0.55, template: stage2}}\n",
        encoding="utf-8",
    )
    db = tmp_path / "j.db"
    runner = CliRunner()
    args = ["judge", str(rlhn_stage1), "--config", str(cfg), "--store", str(db)]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    s1, s2 = report["stages"]
    assert report["instances"] == 25 and s1["judged_now"] == 25 and s2["judged_now"] == s1["routed_on"] > 0
    table = runner.invoke(app, args)  # the resumed run judges nothing and prints the table
    assert table.exit_code == 0 and "routed on" in table.stdout and "cheap" in table.stdout
    with JudgmentStore(db) as store:
        assert store.count() == 25 + s2["judged_now"]
    bad = runner.invoke(app, ["judge", str(rlhn_stage1), "--store", str(db)])
    assert bad.exit_code == 2 and "--stage1" in bad.stderr
    unknown = runner.invoke(app, ["judge", str(rlhn_stage1), "--store", str(db), "--stage1", "gpt:4o"])
    assert unknown.exit_code == 2 and "unknown judge backend 'gpt'" in unknown.stderr


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


@pytest.mark.shared
def test_cli_clean_with_a_config_relabels_flagged_negatives(rlhn_stage1: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from hardneg.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "stages:\n  - {name: lex, backend: lexical, t_better: 0.6, t_worse: 0.5}\n",
        encoding="utf-8",
    )
    out, db = tmp_path / "clean.jsonl", tmp_path / "j.db"
    args = ["clean", str(rlhn_stage1), "-o", str(out), "--config", str(cfg), "--store", str(db), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["judging"]["stages"][0]["judged_now"] == 25
    with JudgmentStore(db) as store:
        flags = {v.query_id: v.better + v.worse for v in store.final_verdicts().values()}
    moved = sum(len(f) for f in flags.values() if len(f) <= 8)
    assert moved > 0 and report["relabel"]["total"]["negatives_moved"] == moved
    before = {i.query_id: i for i in read_instances(rlhn_stage1)}
    for inst in read_instances(out):
        flagged = set(flags[inst.query_id])
        assert set(inst.positive_ids) == set(before[inst.query_id].positive_ids) | flagged
        assert not flagged & set(inst.negative_ids)
    again = CliRunner().invoke(app, args)  # resumes from the store: nothing judged again
    assert json.loads(again.stdout)["judging"]["stages"][0]["judged_now"] == 0


# an instance with GPT-4o false negatives whose closest negative has cosine 0.76 with the reference (routed on)
FLAGGED_BY_GPT4O = "2a1a06ab72700fe07914c144a23240b6"
CLOSEST_NEGATIVE = "51f09d8025fb86f43c74dfdb82941039"


@pytest.mark.shared
@pytest.mark.slow
def test_clean_with_the_default_local_cascade(rlhn_stage1: Path, tmp_path: Path) -> None:
    """The shipped default (MiniLM, then Qwen2.5-Coder-1.5B fused) on 1 instance: the one real-LLM test."""
    pytest.importorskip("llama_cpp")
    from hardneg.judge.cascade import load_default_config
    from hardneg.pipeline import CleanReport, clean

    config = load_default_config()
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


def test_two_stage_config_from_flags(tmp_path: Path) -> None:
    from hardneg.cli.cascade_flags import config_from_flags

    cfg = config_from_flags("openai:gpt-4o-mini", "openai-batch:gpt-4o")
    s1, s2 = cfg.stages
    assert (s1.backend, s1.params, s1.mode, s1.route) == (
        "openai",
        {"model": "gpt-4o-mini", "template": "stage1"},
        "verdict",
        "any",
    )
    assert (s2.backend, s2.params["model"], s2.params["template"], s2.candidates) == (
        "openai-batch",
        "gpt-4o",
        "stage2",
        "all",
    )
    custom = tmp_path / "fig6.txt"
    custom.write_text("{query} {positives} {documents}", encoding="utf-8")
    assert config_from_flags("openai:m", "openai:n", str(custom)).stages[1].params["template"] == str(custom)
    with pytest.raises(ConfigError, match="unknown judge backend 'gpt'"):
        config_from_flags("gpt:4o")


def test_shipped_default_config_is_valid() -> None:
    from hardneg.judge.cascade import default_config_path, load_default_config

    assert default_config_path().is_file()
    cfg = load_default_config()
    s1, s2 = cfg.stages
    assert (s1.backend, s1.candidates, s1.route_top) == ("embedding", "all", 0.5)
    assert (s2.backend, s2.candidates, s2.fuse, s2.params["model"]) == (
        "llm-pointwise",
        "routed",
        "rank-average",
        "qwen2.5-coder-1.5b",
    )
    assert s2.t_better >= s2.t_worse  # type: ignore[operator]


def test_default_config_uses_the_calibrated_thresholds() -> None:
    defaults = pytest.importorskip("hardneg.judge.defaults")
    from hardneg.judge.cascade import load_default_config

    s1, s2 = load_default_config().stages
    assert (s1.t_better, s1.t_worse) == defaults.thresholds("embedding")
    assert s1.route_threshold == defaults.ROUTE_MIN_SCORE
    assert (s2.t_better, s2.t_worse) == defaults.thresholds("llm-pointwise", fused=True)
    # the LLM's own calibrated cut gates the fused flags
    assert s2.min_raw_score == defaults.thresholds("llm-pointwise")[1]


def test_min_raw_score_gates_fused_flags() -> None:
    pytest.importorskip("hardneg.retrieval.fusion")
    from hardneg.judge.cascade import derive_verdict
    from hardneg.judge.store import Judgment

    stage = parse_config(
        {
            "stages": [
                {"name": "a", "backend": "lexical", "t_better": 0.5},
                {
                    "name": "b",
                    "backend": "lexical",
                    "candidates": "routed",
                    "fuse": "rank-average",
                    "t_better": 0.9,
                    "t_worse": 0.6,
                    "min_raw_score": 0.5,
                },
            ]
        }
    ).stages[1]
    earlier = [{"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.0}]

    def record(scores: dict[str, float]) -> Judgment:
        return Judgment("q", 2, "h", "b", "lexical", "m", {}, None, list(scores), None, None, 0, 0, 0.0, "ok", "",
                        None, None, scores)  # fmt: skip

    # the LLM says no to everything: ranks alone would flag "a", the gate does not
    out = derive_verdict(stage, 2, "v", record({"a": 0.2, "b": 0.1}), ["a", "b"], earlier)
    assert out.status == "ok" and out.better == [] and out.worse == []
    assert out.raw_scores == {"a": 0.2, "b": 0.1} and out.scores["a"] > out.scores["b"]  # type: ignore[index]
    out = derive_verdict(stage, 2, "v", record({"a": 0.7, "b": 0.1}), ["a", "b"], earlier)
    assert out.better == ["a"] and out.worse == []
    # a record scoring fewer negatives than routed here is not a clean verdict
    out = derive_verdict(stage, 2, "v", record({"a": 0.7}), ["a", "b"], earlier)
    assert out.status == "failed" and "no score for 1 routed negative" in out.reason


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
        calls = (len(j1.pairs), len(j2.pairs))
        final1 = store.final_verdicts(first.stage_hashes)
        assert flags(store.final_verdicts()) == flags(final1)  # what `hardneg relabel --store` reads

        # stage 2's t_better: no call, stage 2's verdicts derived again from the stored scores
        lower = run_cascade(rlhn_stage1, two_score_stages(t2=0.3), store, judges=judges)
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
        strict = run_cascade(rlhn_stage1, two_score_stages(t1=0.5), store, judges=judges)
        assert [s.judged_now for s in strict.stages] == [0, 0] and (len(j1.pairs), len(j2.pairs)) == calls
        only1 = {1: strict.stage_hashes[1]}
        assert flags(store.final_verdicts(only1)) != flags(store.final_verdicts({1: s1.view_hash}))
        for verdict in store.iter_verdicts(stage=1, view_hash=strict.stages[0].view_hash):
            assert verdict.better == [d for d in verdict.docids if verdict.raw_scores[d] >= 0.5]  # type: ignore[index]
        # the stage summary counts each paid call once, whatever read it
        summary = {row["stage"]: row for row in store.stage_summary()}
        assert summary[1]["records"] == 25 and summary[2]["records"] == s2.routed_in


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


@pytest.mark.shared
def test_changed_model_or_template_or_listwise_list_is_judged_again(rlhn_stage1: Path, tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        first = run_cascade(rlhn_stage1, two_score_stages(), store)
        routed = first.stages[1].routed_in
        other = run_cascade(rlhn_stage1, two_score_stages(model2="overlap-v3"), store)
        assert [s.judged_now for s in other.stages] == [0, routed]
        assert other.stages[1].config_hash != first.stages[1].config_hash
        # listwise: a changed template is another call
        base = run_cascade(rlhn_stage1, paper_like(), store)
        flagged = base.stages[1].routed_in
        template = paper_like()
        template.stages[1].params["template"] = "stage1"
        changed = run_cascade(rlhn_stage1, template, store)
        assert [s.judged_now for s in changed.stages] == [0, flagged]

        # listwise on routed negatives: its verdict depends on the whole list shown, so a new list is a new call
        def scored_then_listwise(top: float) -> CascadeConfig:
            return parse_config(
                {
                    "stages": [
                        {"name": "lex", "backend": "lexical", "t_better": 0.9, "route": "score>=0.25",
                         "route_top": top},
                        {"name": "list", "backend": "lexical-listwise", "mode": "verdict",
                         "params": {"threshold": 0.3}, "candidates": "routed"},
                    ]
                }
            )  # fmt: skip

        narrow = run_cascade(rlhn_stage1, scored_then_listwise(0.2), store)
        n = narrow.stages[1].routed_in
        assert narrow.stages[0].judged_now == 0 and narrow.stages[1].judged_now == n > 0
        wide = run_cascade(rlhn_stage1, scored_then_listwise(0.4), store)
        assert wide.stages[1].judged_now == n and wide.stages[1].extended == 0
        assert store.count(stage=2, config_hash=wide.stages[1].config_hash) == 2 * n  # one record per list
        back = run_cascade(rlhn_stage1, scored_then_listwise(0.2), store)
        assert back.stages[1].judged_now == 0 and back.stages[1].reused == n


def test_a_budget_refused_backend_fails_before_any_call(tmp_path: Path) -> None:
    from hardneg.judge.cost import Budget

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


OPENAI_UNREACHABLE = (
    "name: api\n"
    "stages:\n"
    "  - name: mini\n"
    "    backend: openai\n"
    "    params: {model: gpt-4o-mini, base_url: 'http://127.0.0.1:9/v1', max_retries: 0, timeout: 2}\n"
)


@pytest.mark.shared
def test_cli_estimate_calls_nothing_and_budget_reaches_the_api_judge(
    rlhn_stage1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from hardneg.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    cfg = tmp_path / "api.yaml"
    cfg.write_text(OPENAI_UNREACHABLE, encoding="utf-8")
    db = tmp_path / "j.db"
    runner = CliRunner()
    base = ["judge", str(rlhn_stage1), "--config", str(cfg), "--store", str(db)]
    result = runner.invoke(app, [*base, "--estimate", "--json"])
    assert result.exit_code == 0, result.output
    est = json.loads(result.stdout)["estimate"]
    (stage,) = est["stages"]
    assert est["instances"] == 25 and stage["model"] == "gpt-4o-mini" and stage["calls"] == 25
    assert stage["prompt_tokens"] > 25 * 1000 and est["cost_usd"] > 0  # 15 passages per prompt
    assert not db.exists()  # nothing was opened, let alone called
    table = runner.invoke(app, [*base, "--estimate"])
    assert table.exit_code == 0 and "nothing was called" in table.stdout
    prices = tmp_path / "prices.json"
    prices.write_text('{"gpt-4o-mini": {"input": 1.5, "output": 6.0}}', encoding="utf-8")
    dearer = json.loads(runner.invoke(app, [*base, "--estimate", "--prices", str(prices), "--json"]).stdout)
    assert dearer["estimate"]["cost_usd"] == pytest.approx(
        10 * est["cost_usd"], rel=0.01
    )  # to_dict rounds to 4 decimals
    # a zero budget: the judge refuses every request before sending it, so the unreachable server is never tried
    capped = runner.invoke(app, [*base, "--budget", "0", "--json"])
    assert capped.exit_code == 0, capped.output
    report = json.loads(capped.stdout)
    (s1,) = report["stages"]
    assert (s1["judged_now"], s1["unjudged"], s1["failed"]) == (0, 25, 0)
    assert report["budget"]["requests_sent"] == 0 and report["budget"]["requests_refused"] >= 1
    with JudgmentStore(db) as store:
        assert store.count() == 0 and store.final_verdicts() == {}  # unjudged is not "clean"


@pytest.mark.shared
@pytest.mark.slow
def test_judge_twice_then_relabel_in_subprocesses(rlhn_stage1: Path, tmp_path: Path) -> None:
    """`hardneg judge` with one threshold, again with another (no call: the model is not even loaded), then
    `hardneg relabel --store` uses the second run's verdicts. Real processes, real MiniLM, real SQLite."""
    import json
    import shutil

    exe = shutil.which("hardneg", path=os.path.dirname(sys.executable)) or shutil.which("hardneg")
    assert exe, "the hardneg console script is not installed"
    small = tmp_path / "four.jsonl"
    write_instances(small, list(read_instances(rlhn_stage1))[:4])
    db = tmp_path / "j.db"

    def judge(t_better: float) -> dict[str, Any]:
        cfg = tmp_path / f"c{t_better}.yaml"
        cfg.write_text(
            f"stages:\n  - {{name: embed, backend: embedding, t_better: {t_better}, t_worse: {t_better}}}\n",
            encoding="utf-8",
        )
        done = subprocess.run(
            [exe, "--quiet", "judge", str(small), "--config", str(cfg), "--store", str(db), "--json"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first = judge(0.9)["stages"][0]
    second = judge(0.5)["stages"][0]
    assert first["judged_now"] == 4 and second["judged_now"] == 0 and second["reused"] == 4
    assert second["config_hash"] == first["config_hash"] and second["flagged"] > first["flagged"]
    out = tmp_path / "removed.jsonl"
    done = subprocess.run(
        [exe, "--quiet", "relabel", str(small), "--store", str(db), "--treatment", "hn_remove", "--max-flags", "-1",
         "-o", str(out), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with JudgmentStore(db) as store:
        scores = {j.query_id: j.scores or {} for j in store.iter_judgments(stage=1)}
    expected = sum(sum(s >= 0.5 for s in per.values()) for per in scores.values())
    assert expected > 0 and json.loads(done.stdout)["total"]["negatives_removed"] == expected
