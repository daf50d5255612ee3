"""The judging verbs end to end through the CLI app: `judge` (with a config, resumed, with an estimate and a
budget, on a limit or a sample, as `clean` is) and `import-judgments`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import support.lexical_judges  # noqa: F401 (registers the lexical backends the configs name)
from hardneg.cli import app
from hardneg.data.io import read_instances, write_instances
from hardneg.judging.cascade import default_config_path
from hardneg.judging.store import JudgmentStore
from support.judged_sample import STAGE1_FLAGGED


@pytest.mark.shared
def test_cli_import_json(rlhn_stage1: Path, rlhn_stage2: Path, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    runner = CliRunner()
    common = ["--store", str(db), "--json"]
    out1 = runner.invoke(app, ["import-judgments", str(rlhn_stage1), "--stage", "1", "--judge", "gpt-4o-mini", *common])
    assert out1.exit_code == 0, out1.output
    assert json.loads(out1.stdout)["parsed"] == 25
    out2 = runner.invoke(app, ["import-judgments", str(rlhn_stage2), "--stage", "2", "--judge", "gpt-4o", *common])
    report = json.loads(out2.stdout)
    assert (report["rows"], report["parsed"], report["failed"]) == (17, 17, 0)
    bad = runner.invoke(
        app, ["import-judgments", str(tmp_path / "missing.jsonl"), "--stage", "1", "--judge", "x", *common]
    )
    assert bad.exit_code == 2 and "missing.jsonl" in bad.stderr


def test_cli_import_json_on_the_sample(sample_stage1: Path, sample_stage2: Path, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    runner = CliRunner()
    common = ["--store", str(db), "--json"]
    out1 = runner.invoke(app, ["import-judgments", str(sample_stage1), "--stage", "1", "--judge", "judge-1", *common])
    assert out1.exit_code == 0, out1.output
    assert json.loads(out1.stdout)["parsed"] == 24
    out2 = runner.invoke(app, ["import-judgments", str(sample_stage2), "--stage", "2", "--judge", "judge-2", *common])
    report = json.loads(out2.stdout)
    routed = len(STAGE1_FLAGGED)
    assert (report["rows"], report["parsed"], report["failed"]) == (routed, routed, 0)
    bad = runner.invoke(
        app, ["import-judgments", str(tmp_path / "missing.jsonl"), "--stage", "1", "--judge", "x", *common]
    )
    assert bad.exit_code == 2 and "missing.jsonl" in bad.stderr


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
    bad = runner.invoke(app, ["judge", str(rlhn_stage1), "--store", str(db), "--stage2", "lexical"])
    assert bad.exit_code == 2 and "--stage1" in bad.stderr
    unknown = runner.invoke(app, ["judge", str(rlhn_stage1), "--store", str(db), "--stage1", "gpt:4o"])
    assert unknown.exit_code == 2 and "unknown judge backend 'gpt'" in unknown.stderr


def test_cli_judge_with_config_then_resume_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: lexical-two-stage\n"
        "stages:\n"
        "  - {name: cheap, backend: lexical-listwise, mode: verdict, params: {threshold: 0.2}}\n"
        "  - {name: strong, backend: lexical-listwise, mode: verdict, params: {threshold: 0.25, template: stage2}}\n",
        encoding="utf-8",
    )
    db = tmp_path / "j.db"
    runner = CliRunner()
    args = ["judge", str(sample_train), "--config", str(cfg), "--store", str(db)]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    s1, s2 = report["stages"]
    assert report["instances"] == 24 and s1["judged_now"] == 24 and s2["judged_now"] == s1["routed_on"] > 0
    table = runner.invoke(app, args)  # the resumed run judges nothing and prints the table
    assert table.exit_code == 0 and "routed on" in table.stdout and "cheap" in table.stdout
    assert json.loads(runner.invoke(app, [*args, "--json"]).stdout)["stages"][0]["judged_now"] == 0
    with JudgmentStore(db) as store:
        assert store.count() == 24 + s2["judged_now"]
    bad = runner.invoke(app, ["judge", str(sample_train), "--store", str(db), "--stage2", "lexical"])
    assert bad.exit_code == 2 and "--stage1" in bad.stderr
    unknown = runner.invoke(app, ["judge", str(sample_train), "--store", str(db), "--stage1", "gpt:4o"])
    assert unknown.exit_code == 2 and "unknown judge backend 'gpt'" in unknown.stderr


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
        assert store.count() == 0 and store.final_verdicts(allow_partial=True) == {}  # unjudged is not "clean"
        assert len(store.pending()) == 25  # stage 1 has judged none of them: no final verdicts (PartialCascade)


def test_cli_estimate_calls_nothing_and_budget_reaches_the_api_judge_on_the_sample(
    sample_train: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hardneg.judging.cost import prompt_tokens
    from hardneg.judging.prompts.templates import load_template

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    cfg = tmp_path / "api.yaml"
    cfg.write_text(OPENAI_UNREACHABLE, encoding="utf-8")
    db = tmp_path / "j.db"
    runner = CliRunner()
    base = ["judge", str(sample_train), "--config", str(cfg), "--store", str(db)]
    result = runner.invoke(app, [*base, "--estimate", "--json"])
    assert result.exit_code == 0, result.output
    est = json.loads(result.stdout)["estimate"]
    (stage,) = est["stages"]
    assert est["instances"] == 24 and stage["model"] == "gpt-4o-mini" and stage["calls"] == 24
    stage1 = load_template("stage1")  # the openai judge's default template
    rendered = [stage1.render(i, i.negative_ids) for i in read_instances(sample_train)]
    assert stage["prompt_tokens"] == sum(prompt_tokens(p, "gpt-4o-mini") for p in rendered) and est["cost_usd"] > 0
    assert not db.exists()  # nothing was opened, let alone called
    table = runner.invoke(app, [*base, "--estimate"])
    assert table.exit_code == 0 and "nothing was called" in table.stdout
    prices = tmp_path / "prices.json"
    prices.write_text('{"gpt-4o-mini": {"input": 1.5, "output": 6.0}}', encoding="utf-8")
    dearer = json.loads(runner.invoke(app, [*base, "--estimate", "--prices", str(prices), "--json"]).stdout)
    assert dearer["estimate"]["cost_usd"] == pytest.approx(10 * est["cost_usd"], rel=0.01)
    # a zero budget: the judge refuses every request before sending it, so the unreachable server is never tried
    capped = runner.invoke(app, [*base, "--budget", "0", "--json"])
    assert capped.exit_code == 0, capped.output
    report = json.loads(capped.stdout)
    (s1,) = report["stages"]
    assert (s1["judged_now"], s1["unjudged"], s1["failed"]) == (0, 24, 0)
    assert report["budget"]["requests_sent"] == 0 and report["budget"]["requests_refused"] >= 1
    with JudgmentStore(db) as store:
        assert store.count() == 0 and store.final_verdicts(allow_partial=True) == {}  # unjudged is not "clean"
        assert len(store.pending()) == 24  # stage 1 has judged none of them: no final verdicts (PartialCascade)


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


def test_cli_engine_flags_are_checked_before_any_store(sample_train: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "j.db"
    config = str(default_config_path())
    bad = runner.invoke(app, ["judge", str(sample_train), "--config", config, "--store", str(db), "--engine", "spark"])
    assert bad.exit_code == 2 and "--engine" in bad.stderr and "spark" in bad.stderr
    lone = runner.invoke(app, ["clean", str(sample_train), "-o", str(tmp_path / "o.jsonl"), "--store", str(db),
                               "--ray-address", "127.0.0.1:1"])  # fmt: skip
    assert lone.exit_code == 2 and "--ray-address" in lone.stderr and "ray" in lone.stderr
    assert not db.exists()


LEXICAL_ONE_STAGE = "name: lex\nstages:\n  - {name: lex, backend: lexical, t_better: 0.3, t_worse: 0.2}\n"


def test_cli_judge_and_clean_on_a_limit_or_a_sample(sample_train: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(LEXICAL_ONE_STAGE, encoding="utf-8")
    ids = [i.query_id for i in read_instances(sample_train)]
    runner = CliRunner()
    db = tmp_path / "j.db"
    judged = runner.invoke(app, ["judge", str(sample_train), "--config", str(cfg), "--store", str(db), "--limit", "5"])
    assert judged.exit_code == 0, judged.output
    assert "used the first 5 of 24 instances" in judged.stdout
    with JudgmentStore(db) as store:
        assert sorted(j.query_id for j in store.iter_judgments()) == sorted(ids[:5])
    args = ["judge", str(sample_train), "--config", str(cfg), "--store", str(db), "--json"]
    drawn = json.loads(runner.invoke(app, [*args, "--sample", "4", "--seed", "1"]).stdout)
    assert drawn["instances"] == 4
    assert drawn["selection"] == {"limit": None, "sample": 4, "seed": 1, "used": 4, "total": 24}
    both = runner.invoke(app, [*args, "--sample", "4", "--limit", "2"])
    assert both.exit_code == 2 and "--sample" in both.stderr

    out = tmp_path / "few.jsonl"
    clean = ["clean", str(sample_train), "-o", str(out), "--config", str(cfg), "--store", str(db)]
    cleaned = runner.invoke(app, [*clean, "--limit", "7", "--json"])
    assert cleaned.exit_code == 0, cleaned.output
    report = json.loads(cleaned.stdout)
    assert report["selection"]["used"] == 7 and report["selection"]["total"] == 24
    assert report["judging"]["instances"] == 7 and report["judging"]["stages"][0]["reused"] == 5
    assert report["relabel"]["total"]["instances_in"] == 7
    assert [i.query_id for i in read_instances(out)] == ids[:7]
    text = runner.invoke(app, [*clean, "--sample", "3"])
    assert text.exit_code == 0 and "used a random sample of 3 of 24 instances" in text.stdout
    assert len(list(read_instances(out))) == 3


def test_cli_judge_refuses_a_budget_on_ray_with_the_librarys_message(sample_train: Path, tmp_path: Path) -> None:
    """The check lives in the library (`check_budget`, before any store is opened); the CLI says it naming the flag,
    exit 2, nothing written."""
    pytest.importorskip("ray")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(LEXICAL_ONE_STAGE, encoding="utf-8")
    db = tmp_path / "j.db"
    args = ["judge", str(sample_train), "--config", str(cfg), "--store", str(db), "--engine", "ray", "--budget", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "--engine: a budget is kept by one process: run a budgeted cascade with engine 'local'" in message
    assert not db.exists() and list(tmp_path.iterdir()) == [cfg]
