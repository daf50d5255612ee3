"""The `clean` verb: judge with a cascade, then relabel, in one run (`hardneg.clean`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.cascade_report import exit_on_failures, print_selection, print_stage_table
from hardneg.cli.common import app, console, handle_errors, print_json, progress, stage_bars
from hardneg.cli.judge_cmds import LIMIT_HELP, SAMPLE_HELP, SEED_HELP
from hardneg.cli.relabel_cmds import print_skipped_subsets, skip_subsets_option, subsets
from hardneg.judging.base import JudgeStopped
from hardneg.pipeline import CleanReport, default_store_path
from hardneg.pipeline import clean as run_clean

ONLY_WRITTEN = " Only they are written."


@app.command()
@handle_errors
def clean(
    file: Path = typer.Argument(..., help="Training file to clean."),
    output: str = opt.output(f"Cleaned output, {opt.OUTPUT_RULE}", "-o", "--out"),
    store: Path | None = opt.store("Judgment store (default: OUT.judgments.sqlite).", required=False),
    config: Path | None = opt.cascade(),
    treatment: str = opt.library(
        run_clean, "treatment", "--treatment", help="rlhn, rlhn+filter, hn_remove, remove or default."
    ),
    skip_subsets: str = skip_subsets_option(
        "Comma-separated subsets passed through unchanged and not judged (ArguAna: its positives are "
        "counter-arguments); '' judges and relabels every subset."
    ),
    allow_partial: bool = opt.allow_partial(
        "Write the output although routed instances are unjudged (left unchanged)."
    ),
    allow_empty: bool = opt.allow_empty(),
    engine: str = opt.engine(run_clean),
    ray_address: str | None = opt.ray_address(run_clean),
    retry_failed: bool = opt.retry_failed(),
    limit: int | None = opt.limit(LIMIT_HELP + ONLY_WRITTEN),
    sample: int | None = opt.sample(SAMPLE_HELP + ONLY_WRITTEN),
    seed: int = opt.library(run_clean, "seed", "--seed", help=SEED_HELP),
    overwrite: bool = opt.overwrite(),
    as_json: bool = opt.as_json(),
) -> None:
    """Judge with a cascade (default: the shipped `default` config, the MiniLM embedding judge alone), then relabel.

    The default config's cut follows --treatment (precision-first for rlhn, rlhn+filter and default, recall-first
    for remove and hn_remove: docs/judges.md); a config without operating_points keeps its own. The summary prints
    the cut in force. Instances of the subsets in --skip-subsets (default: arguana) are written unchanged and sent
    to no judge; the summary counts them. Interrupted runs resume from the judgment store. Exit codes as for
    `judge`: 3 when some instances have a failed judgment (they are written unchanged) or the judge stopped the run
    (nothing is written).
    """

    report = CleanReport()
    with progress() as bar:
        relabelling = stage_bars(bar)
        with contextlib.suppress(JudgeStopped):  # the report says why; nothing was written
            run_clean(
                file, config, store if store is not None else default_store_path(output),
                treatment=treatment,  # type: ignore[arg-type]
                engine=engine,  # type: ignore[arg-type]
                ray_address=ray_address, output=output, report=report, progress=stage_bars(bar, "judging: {}"),
                relabel_progress=lambda done: relabelling("relabelling", done), allow_partial=allow_partial,
                allow_empty=allow_empty, limit=limit, sample=sample, seed=seed, retry_failed=retry_failed,
                skip_subsets=subsets(skip_subsets), overwrite=overwrite,
            )  # fmt: skip
    result = report.to_dict()
    if as_json:
        print_json(result)
    else:
        print_stage_table(result["judging"], f"{file} -> {report.store}")
        if not report.cascade.stopped:
            total = result["relabel"]["total"]
            why = ", ".join(f"{reason.replace('_', ' ')}: {n}" for reason, n in total["dropped"].items() if n)
            console.print(
                f"{output}: {total['written']} instances written ({total['changed']} changed, {total['kept']} "
                f"unchanged), {total['dropped_total']} dropped{f' ({why})' if why else ''}; "
                f"{total['negatives_moved']} negatives moved to "
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
