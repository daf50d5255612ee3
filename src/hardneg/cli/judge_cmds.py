"""Judging verbs: judge (run or resume a cascade), import-judgments (verdicts already paid for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.cascade_flags import cascade_from_flags
from hardneg.cli.cascade_report import exit_on_failures, print_selection, print_stage_table
from hardneg.cli.common import app, console, count_bar, handle_errors, print_json, progress, stage_bars
from hardneg.cli.cost_cmds import print_estimate
from hardneg.data.source import select_source
from hardneg.judging.base import JudgeStopped
from hardneg.judging.cascade.config import CascadeConfig
from hardneg.judging.cost.budget import Budget
from hardneg.judging.cost.estimation import DEFAULT_ROUTING_RATE
from hardneg.judging.cost.estimation import estimate as run_estimate
from hardneg.judging.cost.prices import PriceTable
from hardneg.judging.cost.stages import stage_specs_from_config
from hardneg.judging.importer import check_judged_rows, import_judgments
from hardneg.judging.run import judge as run_judge
from hardneg.judging.store import JudgmentStore

LIMIT_HELP = "Use only the first N instances (queries), in input order."
SAMPLE_HELP = "Use a random N of the instances (queries), seeded by --seed, kept in input order."
SEED_HELP = "Seed of --sample."


@app.command()
@handle_errors
def judge(
    file: Path = typer.Argument(..., help="Training file to judge (.jsonl, .jsonl.gz, .parquet, datasets folder)."),
    store: Path = opt.store(),
    config: Path | None = opt.cascade(),
    stage1: str | None = typer.Option(None, "--stage1", help="BACKEND[:MODEL] of stage 1, e.g. openai:gpt-4o-mini."),
    stage2: str | None = typer.Option(None, "--stage2", help="BACKEND[:MODEL] of stage 2, e.g. openai:gpt-4o."),
    template: str | None = typer.Option(None, "--template", help="Template name or file for listwise stages."),
    max_attempts: int | None = typer.Option(None, "--max-attempts", help="Give up on a failing call after N tries."),
    estimate: bool = typer.Option(
        False, "--estimate", help="Print the expected tokens and USD of this cascade on FILE, call nothing, exit."
    ),
    prices: Path | None = typer.Option(None, "--prices", help="Price table (JSON/YAML: model -> input/output USD/1M)."),
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, help="Stop sending API calls once they could cost more than USD (all stages)."
    ),
    allow_empty: bool = opt.allow_empty(),
    engine: str = opt.engine(run_judge),
    ray_address: str | None = opt.ray_address(run_judge),
    limit: int | None = opt.limit(LIMIT_HELP),
    sample: int | None = opt.sample(SAMPLE_HELP),
    seed: int = opt.library(run_judge, "seed", "--seed", help=SEED_HELP),
    retry_failed: bool = opt.retry_failed(),
    as_json: bool = opt.as_json(),
) -> None:
    """Run or resume a judging cascade (default: the shipped `default` config); every verdict goes to the store
    as it arrives.

    Exit codes: 0 all judged, 2 bad input or config (nothing written), 3 the run ended with failed calls (the
    store keeps them; the same command retries them up to max_attempts, timed-out ones up to max_timeouts, then
    only with --retry-failed) or the judge stopped it (credentials refused: not counted as an attempt).

    A judge call already in the store is never made again: changing thresholds, fusion or routing re-derives the
    verdicts from stored judgments, and a score stage given more negatives judges only the new ones.
    """

    cascade = cascade_from_flags(config, stage1, stage2, template, max_attempts)
    table = None
    if estimate or prices is not None or budget is not None:
        table = PriceTable.load(prices) if prices is not None else PriceTable.default()
    if estimate:
        _estimate(file, cascade, table, limit=limit, sample=sample, seed=seed, as_json=as_json)
        return
    try:
        with progress() as bar:
            report = run_judge(
                file, cascade, store, budget=Budget(budget, table) if budget is not None else None,
                progress=stage_bars(bar, "judging: {}"), allow_empty=allow_empty,
                engine=engine,  # type: ignore[arg-type]
                ray_address=ray_address, limit=limit, sample=sample, seed=seed, retry_failed=retry_failed,
            )  # fmt: skip
    except JudgeStopped as exc:  # the report says why, and the exit code is 3
        report = exc.report
    result = {"file": str(file), "store": str(store), "config": cascade.name, "selection": report.selection}
    result.update(report.to_dict())
    if as_json:
        print_json(result)
    else:
        print_stage_table(result, f"{file} -> {store}")
        print_selection(report.selection)
        if report.budget is not None:
            b = report.budget
            console.print(
                f"budget: {b['spent_usd']:.4f} of {b['budget_usd']:.2f} USD spent, "
                f"{b['requests_sent']} requests sent, {b['requests_refused']} refused",
                markup=False,
                highlight=False,
            )
    exit_on_failures(report)


def _estimate(
    file: Path, cascade: CascadeConfig, table: Any, *, limit: int | None, sample: int | None, seed: int, as_json: bool
) -> None:
    """`judge --estimate`: the cost of this cascade on FILE (or its --limit / --sample), nothing called."""
    source, selection = select_source(file, limit=limit, sample=sample, seed=seed)
    with progress() as bar:
        result = run_estimate(
            source if selection is not None else file, stage_specs_from_config(cascade.model_dump()),
            price_table=table, progress=count_bar(bar, "rendering prompts"),
        )  # fmt: skip
    if as_json:
        chosen = selection.to_dict() if selection is not None else None
        print_json({"file": str(file), "config": cascade.name, "selection": chosen, "estimate": result.to_dict()})
        return
    print_estimate(result, file, DEFAULT_ROUTING_RATE)
    print_selection(selection)


@app.command("import-judgments")
@handle_errors
def import_judgments_cmd(
    files: list[Path] = typer.Argument(..., help="Judged rows of the reference implementation (response + ids)."),
    stage: int = typer.Option(..., "--stage", help="Stage number to store them as (1, 2, ...)."),
    judge_name: str = typer.Option(..., "--judge", help="Name of the judge that wrote them, e.g. gpt-4o-mini."),
    store: Path = opt.store(),
    as_json: bool = opt.as_json(),
) -> None:
    """Store verdicts you already have (reference-implementation rows) as stage-N judgments."""

    check_judged_rows(files)  # bad input stops here: no store is created
    with progress() as bar, JudgmentStore(store) as db:
        report = import_judgments(files, stage, judge_name, db, progress=count_bar(bar, "importing"))
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"stage {stage} ({judge_name}): {report.rows} rows, {report.parsed} parsed "
        f"({report.flagged} with flagged negatives), {report.failed} failed, {report.unchanged} already imported",
        markup=False,
        highlight=False,
    )
    for reason, count in report.reasons.most_common():
        console.print(f"  {count} x {reason}", markup=False, highlight=False)
