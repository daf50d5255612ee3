"""The `agreement`, `annotate` and `report` verbs end to end on the real rlhn-sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.shared]
runner = CliRunner()


def test_agreement_annotate_report_verbs(tmp_path: Path, db: Path, rlhn_stage1: Path) -> None:
    result = runner.invoke(app, ["agreement", "--store", str(db), "--a", "stage:1", "--b", "stage:2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pairs"] == 255

    tasks = tmp_path / "tasks.json"
    result = runner.invoke(
        app,
        [
            "annotate",
            "export",
            "--store",
            str(db),
            "--instances",
            str(rlhn_stage1),
            "-o",
            str(tasks),
            "--per-subset",
            "12",
            "--only-flagged",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    exported = json.loads(tasks.read_text())
    assert len(exported) == 12 and all(t["data"]["judge_label"] != "none" for t in exported)
    # one annotator marks everything relevant
    export = [
        {
            "id": i,
            "data": t["data"],
            "annotations": [
                {
                    "id": i,
                    "completed_by": 7,
                    "was_cancelled": False,
                    "result": [
                        {
                            "from_name": "relevance",
                            "to_name": "candidate",
                            "type": "choices",
                            "value": {"choices": ["Relevant"]},
                        }
                    ],
                }
            ],
        }
        for i, t in enumerate(exported, start=1)
    ]
    export_path = tmp_path / "export.json"
    export_path.write_text(json.dumps(export))
    labels = tmp_path / "labels.tsv"
    result = runner.invoke(app, ["annotate", "import", str(export_path), "-o", str(labels), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["relevant"] == 12
    result = runner.invoke(app, ["agreement", "--store", str(db), "--a", "stage:2", "--b", f"qrels:{labels}", "--json"])
    agreement = json.loads(result.stdout)
    assert agreement["binary"]["precision"] == 1.0  # every pair the judge flags, the "human" calls relevant

    page = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            "report",
            "--store",
            str(db),
            "-o",
            str(page),
            "--instances",
            str(rlhn_stage1),
            "--agreement",
            f"stage:2=qrels:{labels}",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [f["flagged"] for f in data["funnel"]] == [17, 10, 10]
    assert len(data["agreements"]) == 2 and page.read_text().count("data:image/png;base64,") == 3
