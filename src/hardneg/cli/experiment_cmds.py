"""Experiment verbs: `experiment` (variants compared end to end) and `prune` (leave-one-subset-out)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import (
    STATE,
    app,
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
    stdout_to_stderr,
)
from hardneg.experiment import load_config, run_experiment, run_prune
from hardneg.experiment.prune import pruning_markdown
from hardneg.experiment.results import results_markdown


def _say(message: str) -> None:
    if not STATE["quiet"]:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def _plan_rows(records: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "step": r.id,
            "kind": r.kind,
            "status": "would run" if r.status == "pending" else r.status,
            "reason": r.reason,
            "folder": str(r.folder) if r.folder else None,
        }
        for r in records
    ]


def _print_plan(records: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="step plan", show_lines=False)
    for column in ("step", "status", "why"):
        table.add_column(column)
    for row in _plan_rows(records):
        table.add_row(row["step"], row["status"], row["reason"] or "")
    print_table(table)
    pending = sum(1 for r in records if r.status == "pending")
    console.print(f"{len(records) - pending} cached, {pending} would run")


def _run(run: Callable[..., Any], cfg: Any, *, as_json: bool, dry_run: bool, **options: Any) -> Any | None:
    """Run an experiment verb; under --dry-run print its step plan instead and return None."""
    # Libraries print to stdout while training; with --json, stdout must hold only the JSON object.
    with stdout_to_stderr(as_json):
        result = run(cfg, dry_run=dry_run, progress=None if as_json else _say, **options)
    if not dry_run:
        return result
    if as_json:
        print_json({"folder": str(cfg.output), "steps": _plan_rows(result.records)})
    else:
        _print_plan(result.records)
    return None


def _print_outcome(data: Any, as_json: bool, markdown: Callable[[Any], str], where: str) -> None:
    """The verb's table: as JSON, or as markdown and where its files are."""
    if as_json:
        print_json(data)
        return
    console.print(markdown(data), markup=False, highlight=False)
    console.print(where)


@app.command()
@handle_errors
def experiment(
    config: Path = typer.Argument(..., help="Experiment YAML (see examples/experiment-scifact.yaml)."),
    as_json: bool = opt.as_json("Print only the results (or the plan) as JSON."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the step plan: what is cached, what would run."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
) -> None:
    """Mine, judge, build variants (default/remove/hn_remove/rlhn, TopK-PercPos), train, evaluate, compare.

    Every step is cached in the experiment folder: a re-run does only what is missing.
    """

    result = _run(run_experiment, load_config(config), as_json=as_json, dry_run=dry_run, plots=not no_plots)
    if result is not None:
        where = f"ran {len(result.ran)} step(s); results in {result.paths['markdown'].parent}"
        _print_outcome(result.results, as_json, results_markdown, where)


@app.command()
@handle_errors
def prune(
    config: Path = typer.Argument(..., help="Experiment YAML with two or more `train` subsets."),
    as_json: bool = opt.as_json("Print only the pruning table as JSON."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the step plan: what is cached, what would run."),
) -> None:
    """Leave-one-subset-out: train on all subsets and on each all-but-one; suggest which subsets to keep."""

    result = _run(run_prune, load_config(config, require_judge=False), as_json=as_json, dry_run=dry_run)
    if result is not None:
        _print_outcome(result.table, as_json, pruning_markdown, f"results in {result.paths['markdown']}")
