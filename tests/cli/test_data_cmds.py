"""The data verbs through the real CLI app (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.io import iter_raw_rows, write_rows
from hardneg.data.sample import sample_train_path

runner = CliRunner()


def rows_with_two_bad() -> list[dict]:
    rows = [json.loads(line) for line in sample_train_path().read_text(encoding="utf-8").splitlines()[:5]]
    rows[1]["positive_passages"] = []
    rows[3]["query"] = ""
    return rows


def test_stats_json_on_the_sample() -> None:
    result = runner.invoke(app, ["--quiet", "stats", str(sample_train_path()), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["instances"] == 24
    assert data["problems"] == 0
    assert set(data["subsets"]) == {"cooking", "finance"}
    rows = [json.loads(line) for line in sample_train_path().read_text(encoding="utf-8").splitlines()]
    for name, group in data["subsets"].items():
        mine = [r for r in rows if r["subset"] == name]
        assert group["instances"] == len(mine) == 12
        assert group["positives_mean"] == round(sum(len(r["positive_passages"]) for r in mine) / 12, 4)
        assert group["negatives_mean"] == round(sum(len(r["negative_passages"]) for r in mine) / 12, 4)
    assert data["negatives"]["min"] == min(len(r["negative_passages"]) for r in rows)
    assert data["negatives"]["max"] == max(len(r["negative_passages"]) for r in rows)
    assert data["positives"]["total"] == sum(len(r["positive_passages"]) for r in rows)


def test_stats_counts_problems_instead_of_dying(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    write_rows(path, rows_with_two_bad())
    with path.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    result = runner.invoke(app, ["--quiet", "stats", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["instances"], data["rows"], data["bad_rows"], data["problems"]) == (3, 6, 3, 3)
    assert data["problem_examples"][0] == f"{path}:2: positive_passages: instance has no positives"
    human = runner.invoke(app, ["--quiet", "stats", str(path)])
    assert human.exit_code == 0
    assert "3 problems in 3 of 6 rows" in human.stderr
    assert f"{path}:4: query: empty text" in human.stderr


def test_validate_exit_codes(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["--quiet", "validate", str(sample_train_path())])
    assert ok.exit_code == 0
    assert "ok" in ok.stdout
    path = tmp_path / "bad.jsonl"
    write_rows(path, rows_with_two_bad())
    bad = runner.invoke(app, ["--quiet", "validate", str(path)])
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == [
        f"{path}:2: positive_passages: instance has no positives",
        f"{path}:4: query: empty text",
    ]
    capped = runner.invoke(app, ["--quiet", "validate", str(path), "--max-errors", "1"])
    assert capped.exit_code == 2
    assert len(capped.stderr.splitlines()) == 1
    missing = runner.invoke(app, ["--quiet", "validate", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr


def test_convert_every_layout(tmp_path: Path) -> None:
    expected_rows = {"tevatron": 24, "flag": 24, "tevatron-ids": 24}
    for layout in ["tevatron", "st-triplet", "st-ntuple", "st-labeled-pair", "flag", "tevatron-ids"]:
        out = tmp_path / f"{layout}.parquet"
        args = ["--quiet", "convert", str(sample_train_path()), str(out), "--to", layout, "--json", "-k", "6"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["rows"] == len(list(iter_raw_rows(out)))
        if layout in expected_rows:
            assert report["rows"] == expected_rows[layout]
    assert (tmp_path / "tevatron-ids.corpus.jsonl").exists()


def test_convert_to_hf_folder_with_trailing_slash(tmp_path: Path) -> None:
    out = f"{tmp_path}/ds/"
    result = runner.invoke(app, ["--quiet", "convert", str(sample_train_path()), out])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ds" / "state.json").exists()
    assert len(list(iter_raw_rows(tmp_path / "ds"))) == 24


def test_convert_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    write_rows(path, rows_with_two_bad())
    out = tmp_path / "out" / "triplets.jsonl"
    result = runner.invoke(app, ["--quiet", "convert", str(path), str(out), "--to", "st-triplet"])
    assert result.exit_code == 2
    assert f"{path}:2: positive_passages: instance has no positives" in result.stderr
    assert not out.exists()
    assert list(out.parent.iterdir()) == []
    unknown = runner.invoke(
        app, ["--quiet", "convert", str(sample_train_path()), str(tmp_path / "x.jsonl"), "--to", "csv"]
    )
    assert unknown.exit_code == 2
    assert "unknown export layout" in unknown.stderr
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.shared
def test_rlhn_cli_stats(rlhn_stage1: Path) -> None:
    result = CliRunner().invoke(app, ["--quiet", "stats", str(rlhn_stage1), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["instances"], data["problems"]) == (25, 0)
    assert data["subsets"]["fiqa"]["negatives_mean"] == 15.0
