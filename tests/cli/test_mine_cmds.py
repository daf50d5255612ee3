"""`hardneg mine`: the JSON report, a missing split, a broken corpus, a bad range."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from hardneg.cli import app
from support.tiny_beir import DOCS


def test_cli_json_report(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl.gz"
    result = CliRunner().invoke(
        app, ["mine", str(tiny), "--split", "train", "-o", str(out), "--negatives", "2", "--subset", "toy", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["instances"] == 3
    assert report["skipped"]["no_positive"] == 1
    assert report["queries"] == 4
    assert report["negatives_per_instance"]["max"] <= 2
    assert set(report["removed"]) >= {"positive", "self_id", "relative_margin", "absolute_margin"}
    with gzip.open(out, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 3 and {r["subset"] for r in rows} == {"toy"}


def test_cli_missing_split_and_broken_corpus(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["mine", str(tiny), "--split", "dev", "-o", str(out)])
    assert result.exit_code == 2
    assert "dev.tsv" in result.stderr and "split" in result.stderr
    assert not out.exists()

    with open(tiny / "corpus.jsonl", "a") as handle:
        handle.write('{"_id": "bad", "text": \n')
    result = runner.invoke(app, ["mine", str(tiny), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{tiny / 'corpus.jsonl'}:{len(DOCS) + 1}:" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".rows.jsonl*"))  # no temp file left behind

    result = runner.invoke(app, ["mine", str(tiny), "-o", str(out), "--range", "50-10"])
    assert result.exit_code == 2 and "--range" in result.stderr


def test_cli_limit_and_sample_mine_a_few_queries_and_say_so(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    base = ["mine", str(tiny), "--split", "train", "-o", str(out), "--negatives", "2"]
    runner = CliRunner()
    result = runner.invoke(app, [*base, "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["selection"] == {"limit": 2, "sample": None, "seed": None, "used": 2, "total": 4}
    assert report["queries"] == 2 and report["skipped"]["no_query_text"] == 0
    assert [json.loads(line)["query_id"] for line in out.read_text().splitlines()] == ["q1", "q2"]
    text = runner.invoke(app, [*base, "--sample", "3", "--seed", "0"])
    assert text.exit_code == 0 and "mined a random 3 of 4 queries" in text.stdout
    whole = json.loads(runner.invoke(app, [*base, "--json"]).stdout)
    assert whole["selection"] is None and whole["queries"] == 4


def test_a_bad_choice_is_the_configs_error_named_by_its_flag(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    for args, says in ((["--sampling", "best"], "--sampling: unknown sampling 'best'"), (["-n", "0"], "--negatives:")):
        result = CliRunner().invoke(app, ["mine", str(tiny), "-o", str(out), *args])
        assert result.exit_code == 2 and says in result.stderr, result.output
    assert not out.exists()
