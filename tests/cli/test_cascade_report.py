"""How the CLI shows a cascade run: a column per stage, the part of the input used, failures as exit code 3."""

from __future__ import annotations

import pytest
import typer

from hardneg.cli.cascade_report import exit_on_failures, print_selection, print_stage_table
from hardneg.judging.cascade.runner import CascadeReport, StageReport


def report(**stage: object) -> CascadeReport:
    return CascadeReport(stages=[StageReport(1, "cheap", "lexical", "m", "h", **stage)], instances=4)  # type: ignore[arg-type]


def test_a_column_per_stage_and_a_row_per_figure(capsys: pytest.CaptureFixture[str]) -> None:
    print_stage_table(report(judged_now=4, flagged=2, wall_s=1.25).to_dict(), "in.jsonl -> j.db")
    out = capsys.readouterr().out
    assert "4 instances" in out and "1: cheap" in out and "judged now" in out and "1.2" in out


def test_the_selection_is_said_from_the_report_or_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    print_selection({"limit": 2, "sample": None, "seed": None, "used": 2, "total": 24})
    print_selection(None)
    assert capsys.readouterr().out.strip() == "used the first 2 of 24 instances (limit 2)"


def test_failed_calls_exit_3_naming_their_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    exit_on_failures(report(judged=4))  # nothing failed: no exit
    with pytest.raises(typer.Exit) as stopped:
        exit_on_failures(report(failed=1, failures_now={"timeout": 1}, possibly_billed=1))
    assert stopped.value.exit_code == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "1 instance(s) have a failed judgment (1 timeout); 1 request(s) timed out and may have been billed" in err
