"""`hardneg clean` end to end through the CLI app: judged and relabelled in one run, resumed from its store,
skipped subsets passed unchanged without a call, and the cut in force said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import support.lexical_judges  # noqa: F401 (registers the lexical backends the configs name)
from hardneg.cli import app
from hardneg.data.io import read_instances, write_instances
from hardneg.judging.store import JudgmentStore

LEXICAL_ONE_STAGE = "name: lex\nstages:\n  - {name: lex, backend: lexical, t_better: 0.3, t_worse: 0.2}\n"


def _clean_relabels_flagged_negatives(data: Path, tmp_path: Path, t_better: float, t_worse: float, n: int) -> None:
    """`clean` with a one-stage config: every flagged negative (of instances under the flag cap) becomes a positive,
    the report counts them, and a re-run judges nothing again."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"stages:\n  - {{name: lex, backend: lexical, t_better: {t_better}, t_worse: {t_worse}}}\n")
    out, db = tmp_path / "clean.jsonl", tmp_path / "j.db"
    args = ["clean", str(data), "-o", str(out), "--config", str(cfg), "--store", str(db), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["judging"]["stages"][0]["judged_now"] == n
    with JudgmentStore(db) as store:
        flags = {v.query_id: v.better + v.worse for v in store.final_verdicts().values()}
    moved = sum(len(f) for f in flags.values() if len(f) <= 8)
    assert moved > 0 and report["relabel"]["total"]["negatives_moved"] == moved
    before = {i.query_id: i for i in read_instances(data)}
    for inst in read_instances(out):
        flagged = set(flags[inst.query_id])
        assert set(inst.positive_ids) == set(before[inst.query_id].positive_ids) | flagged
        assert not flagged & set(inst.negative_ids)
    again = CliRunner().invoke(app, args)  # resumes from the store: nothing judged again
    assert json.loads(again.stdout)["judging"]["stages"][0]["judged_now"] == 0


@pytest.mark.shared
def test_cli_clean_with_a_config_relabels_flagged_negatives(rlhn_stage1: Path, tmp_path: Path) -> None:
    _clean_relabels_flagged_negatives(rlhn_stage1, tmp_path, 0.6, 0.5, 25)


def test_cli_clean_with_a_config_relabels_flagged_negatives_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    _clean_relabels_flagged_negatives(sample_train, tmp_path, 0.3, 0.2, 24)


def test_cli_clean_says_which_subsets_it_skipped_and_judges_none_of_them(sample_train: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(LEXICAL_ONE_STAGE, encoding="utf-8")
    rows = list(read_instances(sample_train))
    for inst in rows[:3]:
        inst.subset = "ArguAna"
    data = tmp_path / "mixed.jsonl"
    write_instances(data, rows)
    db, out = tmp_path / "j.db", tmp_path / "out.jsonl"
    runner = CliRunner()
    clean = ["clean", str(data), "-o", str(out), "--config", str(cfg), "--store", str(db)]
    report = json.loads(runner.invoke(app, [*clean, "--json"]).stdout)
    assert report["not_judged_skipped_subsets"] == 3  # arguana by default: no call for them
    assert report["judging"]["stages"][0]["judged_now"] == 21
    assert report["relabel"]["skipped_subsets"] == {"ArguAna": 3}
    assert report["relabel"]["total"]["skipped_subset"] == 3
    written = {i.query_id: i for i in read_instances(out)}
    assert all(written[i.query_id].to_row() == i.to_row() for i in rows[:3])  # passed unchanged
    text = runner.invoke(app, clean)
    assert text.exit_code == 0 and "skipped subsets (passed unchanged without judging): ArguAna 3" in text.stdout
    every = json.loads(runner.invoke(app, [*clean, "--skip-subsets", "", "--json"]).stdout)
    assert every["not_judged_skipped_subsets"] == 0 and every["relabel"]["skipped_subsets"] == {}
    assert every["judging"]["stages"][0]["judged_now"] == 3  # only the three not judged before
    relabelled = runner.invoke(app, ["relabel", str(data), "--store", str(db), "-o", str(tmp_path / "r.jsonl")])
    assert relabelled.exit_code == 0, relabelled.output
    assert "skipped subsets (passed unchanged): ArguAna 3" in relabelled.stdout
    assert "MiniLM" in runner.invoke(app, ["clean", "--help"]).stdout
    assert "Qwen" not in runner.invoke(app, ["clean", "--help"]).stdout


def test_cli_clean_names_the_cut_of_a_users_config_as_its_own(sample_train: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stages:\n  - {name: lex, backend: lexical, t_better: 0.3}\n", encoding="utf-8")
    args = ["clean", str(sample_train), "--config", str(cfg), "--store", str(tmp_path / "j.db")]
    args += ["--treatment", "remove"]
    text = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "a.jsonl")])
    assert text.exit_code == 0, text.output
    assert "cut in force: lex score >= 0.3 (your config's cut" in text.stdout  # remove's cut is not forced on it
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "b.jsonl"), "--json"])
    cut = json.loads(result.stdout)["cut"]
    assert (cut["t_better"], cut["calibrated"], cut["held_out"]) == (0.3, False, None)


@pytest.mark.slow
def test_cli_clean_takes_the_default_judges_cut_for_its_treatment(sample_train: Path, tmp_path: Path) -> None:
    from hardneg.judging import defaults

    precision_first = defaults.OPERATING_POINTS["precision-first"]
    recall_first = defaults.OPERATING_POINTS["recall-first"]
    common = ["clean", str(sample_train), "--store", str(tmp_path / "j.db")]
    first = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "rlhn.jsonl")])  # the default: rlhn
    assert first.exit_code == 0, first.output
    assert (
        f"cut in force: embedding score >= {precision_first['cut']:g}, the precision-first operating point for "
        f"--treatment rlhn" in first.stdout
    )
    assert f"precision {precision_first['precision']:.3f}, recall {precision_first['recall']:.3f}" in first.stdout
    again = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "rm.jsonl"), "--treatment", "remove", "--json"])
    report = json.loads(again.stdout)
    assert report["judging"]["stages"][0]["judged_now"] == 0  # another cut, the same stored cosines
    assert report["cut"]["operating_point"] == "recall-first" and report["cut"]["t_better"] == recall_first["cut"]
    assert report["cut"]["held_out"]["recall"] == recall_first["recall"]


def test_cli_clean_says_why_it_dropped_instances(sample_train: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stages:\n  - {name: lex, backend: lexical, t_better: 0.3}\n", encoding="utf-8")
    args = ["clean", str(sample_train), "--config", str(cfg), "--store", str(tmp_path / "j.db")]
    args += ["--treatment", "remove"]  # the instance goes when a negative is flagged
    report = json.loads(CliRunner().invoke(app, [*args, "-o", str(tmp_path / "a.jsonl"), "--json"]).stdout)
    dropped = report["relabel"]["total"]["dropped"]
    assert dropped["flagged"] > 0 and report["relabel"]["total"]["dropped_total"] == sum(dropped.values())
    text = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "b.jsonl")]).stdout
    assert f"{sum(dropped.values())} dropped (flagged: {dropped['flagged']}" in " ".join(text.split())
