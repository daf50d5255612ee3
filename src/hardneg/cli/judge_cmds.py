"""Judging verbs: judge (run or resume a cascade), import-judgments (verdicts already paid for)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer

from hardneg.cli.cascade_flags import config_from_flags
from hardneg.cli.common import (
    EXIT_FAILED_CALLS,
    app,
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
    progress,
)
from hardneg.cli.cost_cmds import print_estimate
from hardneg.cluster import resolve_engine
from hardneg.data.formats import check_output
from hardneg.data.source import Selection, select_source
from hardneg.errors import ConfigError
from hardneg.judging.base import JudgeStopped
from hardneg.judging.cascade import load_cascade, parse_config, run_cascade
from hardneg.judging.cost import DEFAULT_ROUTING_RATE, Budget, PriceTable, stage_specs_from_config
from hardneg.judging.cost import estimate as run_estimate
from hardneg.judging.importer import check_judged_rows, import_judgments
from hardneg.judging.store import JudgmentStore
from hardneg.pipeline import CleanReport, default_store_path
from hardneg.pipeline import clean as run_clean

STORE_HELP = "Judgment store (SQLite); created if missing, reused to resume."
ENGINE_HELP = "local (this process) or ray (each stage in a Ray actor pool sized by its workers/num_cpus/num_gpus)."
RAY_ADDRESS_HELP = "Ray cluster to join with --engine ray (default: $RAY_ADDRESS, else a local Ray for the run)."
CONFIG_HELP = "Cascade YAML, or a shipped config's name (`hardneg configs`); default: the `default` config."
LIMIT_HELP = "Use only the first N instances (queries), in input order."
SAMPLE_HELP = "Use a random N of the instances (queries), seeded by --seed, kept in input order."
SEED_HELP = "Seed of --sample."
RETRY_FAILED_HELP = "Send every failed call again once, also those past max_attempts or max_timeouts."


def print_selection(selection: Selection | None, noun: str = "instances") -> None:
    """Say which part of the input a --limit / --sample run used."""
    if selection is not None:
        console.print(f"used {selection.describe(noun)}", markup=False, highlight=False, soft_wrap=True)


def _print_stage_table(report_dict: dict, title: str) -> None:
    """One column per stage, one row per figure (narrow enough for any terminal)."""
    from rich.table import Table

    rows = (
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
    table = Table(title=title)
    table.add_column(f"{report_dict['instances']} instances")
    for stage in report_dict["stages"]:
        table.add_column(f"{stage['stage']}: {stage['name']}", justify="right")
    for header, key in rows:
        cells = []
        for stage in report_dict["stages"]:
            value = stage[key]
            cells.append(f"{value:.1f}" if isinstance(value, float) else str(value))
        table.add_row(header, *cells)
    print_table(table)


@app.command()
@handle_errors
def judge(
    file: Path = typer.Argument(..., help="Training file to judge (.jsonl, .jsonl.gz, .parquet, datasets folder)."),
    store: Path = typer.Option(..., "--store", help=STORE_HELP),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
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
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Accept an input without any instance."),
    engine: str = typer.Option("local", "--engine", help=ENGINE_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    limit: int | None = typer.Option(None, "--limit", min=1, help=LIMIT_HELP),
    sample: int | None = typer.Option(None, "--sample", min=1, help=SAMPLE_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    retry_failed: bool = typer.Option(False, "--retry-failed", help=RETRY_FAILED_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Run or resume a judging cascade (default: the shipped `default` config); every verdict goes to the store
    as it arrives.

    Exit codes: 0 all judged, 2 bad input or config (nothing written), 3 the run ended with failed calls (the
    store keeps them; the same command retries them up to max_attempts, timed-out ones up to max_timeouts, then
    only with --retry-failed) or the judge stopped it (credentials refused: not counted as an attempt).

    A judge call already in the store is never made again: changing thresholds, fusion or routing re-derives the
    verdicts from stored judgments, and a score stage given more negatives judges only the new ones.
    """

    if config is not None and (stage1 or stage2):
        raise ConfigError("give either --config or --stage1/--stage2, not both")
    if stage2 and not stage1:
        raise ConfigError("--stage2 needs --stage1")
    if stage1:
        cascade = config_from_flags(stage1, stage2, template)
    else:
        cascade = load_cascade(config if config is not None else "default")
    if max_attempts is not None:
        cascade = parse_config({**cascade.model_dump(), "max_attempts": max_attempts}, "--max-attempts")
    table = None
    if estimate or prices is not None or budget is not None:
        table = PriceTable.load(prices) if prices is not None else PriceTable.default()
    source, selection = select_source(file, limit=limit, sample=sample, seed=seed)
    chosen = selection.to_dict() if selection is not None else None
    if estimate:
        specs = stage_specs_from_config(cascade.model_dump())
        with progress() as bar:
            task = bar.add_task("rendering prompts", total=None)
            result = run_estimate(
                source if selection is not None else file, specs, price_table=table,
                progress=lambda n: bar.update(task, completed=n),
            )  # fmt: skip
        if as_json:
            print_json({"file": str(file), "config": cascade.name, "selection": chosen, "estimate": result.to_dict()})
        else:
            print_estimate(result, file, DEFAULT_ROUTING_RATE)
            print_selection(selection)
        return
    cap = None
    if budget is not None:
        cap = Budget(budget, table)
    spec = resolve_engine(engine, ray_address, probe=True)  # an unreachable cluster stops here
    if spec.distributed and cap is not None:
        raise ConfigError("a budget is kept by one process: run a budgeted cascade with engine 'local'", param="engine")
    source.validate(allow_empty=allow_empty)  # bad input stops here: no store is created
    with progress() as bar, JudgmentStore(store) as db:
        report = run_cascade(
            source, cascade, db, progress=_stage_bars(bar), budget=cap, allow_empty=allow_empty, engine=spec,
            retry_failed=retry_failed,
        )  # fmt: skip
    report.selection = chosen
    result = {"file": str(file), "store": str(store), "config": cascade.name, "selection": chosen, **report.to_dict()}
    if as_json:
        print_json(result)
    else:
        _print_stage_table(result, f"{file} -> {store}")
        print_selection(selection)
        if report.budget is not None:
            b = report.budget
            console.print(
                f"budget: {b['spent_usd']:.4f} of {b['budget_usd']:.2f} USD spent, "
                f"{b['requests_sent']} requests sent, {b['requests_refused']} refused",
                markup=False,
                highlight=False,
            )
    exit_on_failures(report)


def _stage_bars(bar: Any) -> Any:
    """A cascade progress callback drawing one bar per stage."""
    tasks: dict[str, int] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"judging: {stage}", total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return on_progress


def exit_on_failures(report: Any) -> None:
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


@app.command("import-judgments")
@handle_errors
def import_judgments_cmd(
    files: list[Path] = typer.Argument(..., help="Judged rows of the reference implementation (response + ids)."),
    stage: int = typer.Option(..., "--stage", help="Stage number to store them as (1, 2, ...)."),
    judge_name: str = typer.Option(..., "--judge", help="Name of the judge that wrote them, e.g. gpt-4o-mini."),
    store: Path = typer.Option(..., "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Store verdicts you already have (reference-implementation rows) as stage-N judgments."""

    check_judged_rows(files)  # bad input stops here: no store is created
    with progress() as bar, JudgmentStore(store) as db:
        task = bar.add_task("importing", total=None)
        report = import_judgments(files, stage, judge_name, db, progress=lambda n: bar.update(task, completed=n))
    result = report.to_dict()
    if as_json:
        print_json(result)
        return
    console.print(
        f"stage {stage} ({judge_name}): {report.rows} rows, {report.parsed} parsed "
        f"({report.flagged} with flagged negatives), {report.failed} failed, {report.unchanged} already imported",
        markup=False,
        highlight=False,
    )
    for reason, count in report.reasons.most_common():
        console.print(f"  {count} x {reason}", markup=False, highlight=False)


@app.command()
@handle_errors
def clean(
    file: Path = typer.Argument(..., help="Training file to clean."),
    out: str = typer.Option(
        ...,
        "-o",
        "--out",
        help="Cleaned output, in the format its name says: .jsonl, .jsonl.gz, .parquet (an existing file is "
        "replaced), or a datasets folder (a name ending in .hf or /; an existing one only with --overwrite).",
    ),
    store: Path | None = typer.Option(None, "--store", help="Judgment store (default: OUT.judgments.sqlite)."),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    treatment: str = typer.Option("rlhn", "--treatment", help="rlhn, rlhn+filter, hn_remove, remove or default."),
    skip_subsets: str = typer.Option(
        "arguana",
        "--skip-subsets",
        help="Comma-separated subsets passed through unchanged and not judged (ArguAna: its positives are "
        "counter-arguments); '' judges and relabels every subset.",
    ),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Write the output although routed instances are unjudged (left unchanged)."
    ),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Accept an input without any instance."),
    engine: str = typer.Option("local", "--engine", help=ENGINE_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    retry_failed: bool = typer.Option(False, "--retry-failed", help=RETRY_FAILED_HELP),
    limit: int | None = typer.Option(None, "--limit", min=1, help=LIMIT_HELP + " Only they are written."),
    sample: int | None = typer.Option(None, "--sample", min=1, help=SAMPLE_HELP + " Only they are written."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing output folder hardneg wrote (never a folder of other files)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Judge with a cascade (default: the shipped `default` config, the MiniLM embedding judge alone), then relabel.

    The default config's cut follows --treatment (precision-first for rlhn, rlhn+filter and default, recall-first
    for remove and hn_remove: docs/judges.md); a config without operating_points keeps its own. The summary prints
    the cut in force. Instances of the subsets in --skip-subsets (default: arguana) are written unchanged and sent
    to no judge; the summary counts them. Interrupted runs resume from the judgment store. Exit codes as for
    `judge`: 3 when some instances have a failed judgment (they are written unchanged) or the judge stopped the run
    (nothing is written).
    """

    check_output(out, overwrite=overwrite, param="out")  # before any judging
    cascade = load_cascade(config) if config is not None else None
    spec = resolve_engine(engine, ray_address, probe=True)  # a bad engine stops before any store is created
    report = CleanReport()
    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_relabel(done: int) -> None:
            if "relabel" not in tasks:
                tasks["relabel"] = bar.add_task("relabelling", total=None)
            bar.update(tasks["relabel"], completed=done)

        with contextlib.suppress(JudgeStopped):  # the report says why; nothing was written
            run_clean(
                file,
                store=store if store is not None else default_store_path(out),
                config=cascade,
                treatment=treatment,  # type: ignore[arg-type]
                output=out,
                report=report,
                progress=_stage_bars(bar),
                relabel_progress=on_relabel,
                allow_partial=allow_partial,
                allow_empty=allow_empty,
                engine=spec,  # type: ignore[arg-type]
                limit=limit,
                sample=sample,
                seed=seed,
                retry_failed=retry_failed,
                skip_subsets=[s.strip() for s in skip_subsets.split(",") if s.strip()],
                overwrite=overwrite,
            )
    result = report.to_dict()
    if as_json:
        print_json(result)
    else:
        _print_stage_table(result["judging"], f"{file} -> {report.store}")
        if not report.cascade.stopped:
            total = result["relabel"]["total"]
            console.print(
                f"{out}: {total['written']} instances written ({total['changed']} changed, {total['kept']} "
                f"unchanged), {total['dropped_total']} dropped; {total['negatives_moved']} negatives moved to "
                f"positives, {total['negatives_removed']} removed",
                markup=False,
                highlight=False,
            )
        print_cut(report.cut, treatment)
        print_selection(report.selection)
        print_skipped_subsets(report.relabel.skipped_subsets(), judged=False)
    exit_on_failures(report.cascade)


def print_cut(cut: dict[str, Any] | None, treatment: str) -> None:
    """Say which cut of the last stage `clean` used (`hardneg.judging.cascade.config.cut_in_force`) and, for the
    shipped default judge, its operating point and figures measured on people."""
    if cut is None:
        return
    if cut["t_better"] is None:
        text = f"cut in force: none, stage {cut['stage']} gives verdicts (your config's judge)"
    else:
        rule = f"{cut['stage']} score >= {cut['t_better']:g}"
        if cut["t_worse"] < cut["t_better"]:
            rule += f" (worse from {cut['t_worse']:g})"
        if cut["calibrated"]:
            held = cut["held_out"]
            text = (
                f"cut in force: {rule}, the {cut['operating_point']} operating point for --treatment {treatment} "
                f"({cut['objective']}); on NovelEval's held-out half ({held['n_pairs']} pairs): precision "
                f"{held['precision']:.3f}, recall {held['recall']:.3f}, kappa {held['kappa']:.3f}"
            )
        else:
            point = f", its operating point {cut['operating_point']}" if cut["operating_point"] else ""
            text = f"cut in force: {rule} (your config's cut{point}; measure it with hardneg judge-eval)"
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_skipped_subsets(skipped: dict[str, int], *, judged: bool) -> None:
    """Say which subsets were passed through unchanged (`skip_subsets`), and how to include them."""
    if not skipped:
        return
    counts = ", ".join(f"{name} {n}" for name, n in skipped.items())
    what = "passed unchanged" if judged else "passed unchanged without judging"
    console.print(
        f"skipped subsets ({what}): {counts} instance(s); --skip-subsets '' includes them",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
