"""The `relabel` verb end to end on the real rlhn-sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.io import read_instances

pytestmark = [pytest.mark.slow, pytest.mark.shared]
runner = CliRunner()


def test_relabel_verb(tmp_path: Path, db: Path, rlhn_stage1: Path) -> None:
    out = tmp_path / "clean.jsonl"
    args = ["relabel", str(rlhn_stage1), "--store", str(db), "--treatment", "hn_remove", "--tags", "both"]
    result = runner.invoke(app, [*args, "--max-flags", "3", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    total = report["total"]
    assert total["instances_in"] == 25 and total["written"] == len(list(read_instances(out)))
    assert total["dropped"]["ambiguous"] == 2  # two final verdicts list 4 negatives
    assert report["options"]["max_flags"] == 3
    # stage-1 verdicts only: all 17 flagged instances are removed
    result = runner.invoke(app, [*args[:4], "--stages", "1", "--treatment", "remove", "-o", str(out), "--json"])
    assert json.loads(result.stdout)["total"]["dropped"]["flagged"] == 17
    # bad option and missing store: exit 2, nothing written
    result = runner.invoke(app, [*args[:4], "--treatment", "fix", "-o", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and not (tmp_path / "x.jsonl").exists()
    result = runner.invoke(app, ["relabel", str(rlhn_stage1), "--store", str(tmp_path / "none.db"), "-o", str(out)])
    assert result.exit_code == 2
