"""`hardneg calibrate`: the label sources it accepts, and a real calibration of the embedding judge."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_cli_needs_exactly_one_label_source(tmp_path: Path, sample_train: Path) -> None:
    from typer.testing import CliRunner

    from hardneg.cli import app

    result = CliRunner().invoke(app, ["calibrate", str(sample_train), "--judge", "embedding"])
    assert result.exit_code == 2 and "exactly one label source" in result.output
    result = CliRunner().invoke(app, ["calibrate", str(sample_train), "--judge", "bm25", "--qrels", "x.tsv"])
    assert result.exit_code == 2 and "--judge bm25" in result.output


def test_cli_refuses_a_scores_file_it_cannot_write_before_scoring(tmp_path: Path, sample_train: Path) -> None:
    from typer.testing import CliRunner

    from hardneg.cli import app

    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    args = ["calibrate", str(sample_train), "--judge", "embedding", "--qrels", str(qrels)]
    result = CliRunner().invoke(app, [*args, "--save-scores", str(tmp_path / "scores.tsv")])
    assert result.exit_code == 2 and "--save-scores" in result.output
    assert "scoring" not in result.stderr  # refused before any judge was loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qrels.tsv"]


@pytest.mark.slow
@pytest.mark.shared
def test_cli_calibrates_the_embedding_judge_on_the_real_sample(
    tmp_path: Path, rlhn_stage1: Path, rlhn_stage2: Path
) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from hardneg.cli import app

    out = tmp_path / "thresholds.yaml"
    args = ["calibrate", str(rlhn_stage1), "--judge", "embedding", "--json", "-o", str(out)]
    args += ["--labels-from-responses", str(rlhn_stage1), "--labels-from-responses", str(rlhn_stage2)]
    result = CliRunner().invoke(app, ["--quiet", *args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    cal = report["calibration"]
    assert report["n_instances"] == 25 and cal["n_pairs"] == 375 and report["n_relevant"] == 23
    assert cal["t_better"] >= cal["t_worse"]
    # Held out on 12-13 queries with ~12 relevant pairs: the ranking is clearly better than chance.
    assert cal["auc"] > 0.6
    assert 0 < report["routing"]["recall_held_out"] <= 1
    saved = yaml.safe_load(out.read_text())
    assert saved["t_worse"] == cal["t_worse"] and saved["judges"][0]["model"] == "all-MiniLM-L6-v2"
