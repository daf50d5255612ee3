"""How the CLI shows a cascade run (`judge`, `clean`): the stage table, the part of the input used, and the failed
calls (exit code 3)."""

from __future__ import annotations

from typing import Any

import typer

from hardneg.cli.common import EXIT_FAILED_CALLS, console, err_console, print_table
from hardneg.data.source import Selection
from hardneg.judging.cascade.runner import CascadeReport

# A cascade run's figures, one row each: (label, StageReport field).
STAGE_ROWS = (
    ("judge", "model"),
    ("to judge", "routed_in"),
    ("judged now", "judged_now"),
    ("  of which extended", "extended"),
    ("negatives sent now", "negatives_judged_now"),
    ("reused", "reused"),
    ("unjudged (budget)", "unjudged"),
    ("judged", "judged"),
    ("flagged", "flagged"),
    ("routed on", "routed_on"),
    ("parse errors", "parse_errors"),
    ("failed", "failed"),
    ("possibly billed (timed out)", "possibly_billed"),
    ("tokens in", "tokens_in"),
    ("tokens out", "tokens_out"),
    ("tokens in now", "tokens_in_now"),
    ("tokens out now", "tokens_out_now"),
    ("wall s", "wall_s"),
)


def print_selection(selection: Selection | dict[str, Any] | None, noun: str = "instances") -> None:
    """Say which part of the input a --limit / --sample run used."""
    if isinstance(selection, dict):
        selection = Selection(**selection)
    if selection is not None:
        console.print(f"used {selection.describe(noun)}", markup=False, highlight=False, soft_wrap=True)


def print_stage_table(report_dict: dict, title: str) -> None:
    """One column per stage, one row per figure (narrow enough for any terminal)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(f"{report_dict['instances']} instances")
    for stage in report_dict["stages"]:
        table.add_column(f"{stage['stage']}: {stage['name']}", justify="right")
    for header, key in STAGE_ROWS:
        cells = [f"{s[key]:.1f}" if isinstance(s[key], float) else str(s[key]) for s in report_dict["stages"]]
        table.add_row(header, *cells)
    print_table(table)


def exit_on_failures(report: CascadeReport) -> None:
    """Say on stderr what failed, grouped by kind, and exit 3, when the run ended with failed calls."""
    if not report.failed and not report.stopped:
        return
    if report.stopped:
        err_console.print(f"stopped: {report.stopped}", markup=False, highlight=False, soft_wrap=True)
    kinds = ", ".join(f"{n} {kind}" for kind, n in report.failures().items()) or "from earlier runs"
    paid = int(getattr(report, "possibly_billed", 0))
    billed = f"; {paid} request(s) timed out and may have been billed" if paid else ""
    err_console.print(
        f"{report.failed} instance(s) have a failed judgment ({kinds}){billed}. The store keeps them: the same "
        "command sends them again up to max_attempts tries (refused credentials do not count); a call that timed "
        "out max_timeouts times, or used up its tries, is sent again only with --retry-failed",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_FAILED_CALLS)
