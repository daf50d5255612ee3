"""Data verbs: validate, stats, convert."""

from __future__ import annotations

from pathlib import Path

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import (
    EXIT_BAD_INPUT,
    app,
    console,
    count_bar,
    err_console,
    handle_errors,
    print_json,
    print_table,
    progress,
)
from hardneg.data.export import export
from hardneg.data.formats import check_output
from hardneg.data.io import count_rows, iter_checked_rows, read_instances
from hardneg.data.stats import file_stats
from hardneg.errors import Problem

FILE_HELP = "Training file (.jsonl, .jsonl.gz, .parquet or a datasets folder)."
OUTPUT_HELP = f"Output, {opt.OUTPUT_RULE}"


@app.command()
@handle_errors
def validate(
    file: Path = typer.Argument(..., help=FILE_HELP),
    max_errors: int = typer.Option(50, "--max-errors", help="Stop after this many problems."),
    allow_empty: bool = opt.allow_empty("A file without any row is ok too."),
    as_json: bool = opt.as_json("Print one JSON object on stdout (file, rows read, problems); same exit code."),
) -> None:
    """Check a training file; print every problem as FILE:LINE: field: what is wrong. Exit 2 if any."""

    problems = []
    rows = 0
    stopped = False  # at --max-errors: the rest of the file was not read
    with progress() as bar:
        task = bar.add_task(f"validating {file.name}", total=count_rows(file))
        for _number, _row, found in iter_checked_rows(file):
            rows += 1
            problems.extend(found)
            bar.advance(task)
            if len(problems) >= max_errors:
                problems = problems[:max_errors]
                stopped = True
                break
    if rows == 0 and not allow_empty:
        problems.append(Problem(str(file), None, "-", "no instances: the file is empty (--allow-empty accepts it)"))
    if as_json:
        print_json(
            {"file": str(file), "ok": not problems, "rows_read": rows, "problem_count": len(problems),
             "stopped_at_max_errors": stopped, "problems": [str(p) for p in problems]}
        )  # fmt: skip
        if problems:
            raise typer.Exit(EXIT_BAD_INPUT)
        return
    for problem in problems:
        err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(EXIT_BAD_INPUT)
    console.print(f"{file}: ok", markup=False, highlight=False)


@app.command()
@handle_errors
def stats(
    file: Path = typer.Argument(..., help=FILE_HELP),
    as_json: bool = opt.as_json(),
) -> None:
    """Instances, positives and negatives per instance (per subset and in total), and problems found.

    Bad rows are counted as problems and left out of the numbers; the exit code is 0 unless the file
    cannot be read at all.
    """

    with progress() as bar:
        result = file_stats(file, progress=count_bar(bar, f"reading {file.name}", count_rows(file)))
    if as_json:
        print_json(result.to_dict())
        return
    from rich.table import Table

    table = Table(title=str(file))
    for column in ("subset", "instances", "positives mean/min/max", "negatives mean/min/max"):
        table.add_column(column, justify="left" if column == "subset" else "right")
    groups = [*sorted(result.subsets.items()), ("(all)", result.total)]
    for name, group in groups:
        pos, neg = group.positives, group.negatives
        table.add_row(
            name or "(none)",
            str(group.instances),
            f"{pos.mean:.2f} / {pos.low or 0} / {pos.high or 0}",
            f"{neg.mean:.2f} / {neg.low or 0} / {neg.high or 0}",
        )
    print_table(table)
    if result.problem_count:
        err_console.print(
            f"{result.problem_count} problems in {result.bad_rows} of {result.rows} rows (left out of the counts):",
            markup=False,
            highlight=False,
        )
        for problem in result.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    else:
        console.print("problems: 0", markup=False, highlight=False)


@app.command()
@handle_errors
def convert(
    source: Path = typer.Argument(..., metavar="IN", help=FILE_HELP),
    target: str = typer.Argument(..., metavar="OUT", help=OUTPUT_HELP),
    to: str = typer.Option(
        "tevatron",
        "--to",
        help="Layout: tevatron, st-triplet, st-ntuple, st-labeled-pair, st-labeled-list, flag, tevatron-ids.",
    ),
    negatives: int = opt.library(export, "negatives", "--negatives", "-k", help="st-ntuple: negatives per row."),
    seed: int = opt.library(
        export, "seed", "--seed", help="st-ntuple: seed for picking k negatives when there are more."
    ),
    no_title: bool = typer.Option(False, "--no-title", help="Passage texts without the title prepended."),
    allow_empty: bool = opt.allow_empty("Write an empty output for an empty input."),
    overwrite: bool = opt.overwrite(),
    as_json: bool = opt.as_json("Print the result as one JSON object."),
) -> None:
    """Convert a training file to another format or trainer layout (validates while streaming; a bad row
    stops with exit 2 and writes nothing)."""

    check_output(target, overwrite=overwrite, param="target")
    with progress() as bar:
        result = export(
            read_instances(source), target, to, negatives=negatives, seed=seed, with_title=not no_title,
            progress=count_bar(bar, f"converting {source.name}", count_rows(source)), allow_empty=allow_empty,
            source=str(source), overwrite=overwrite,
        )  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    line = f"{result.path}: {result.rows} rows ({to}) from {result.instances} instances"
    if result.skipped:
        line += f"; {result.skipped} instances skipped (fewer than {negatives} negatives)"
    console.print(line, markup=False, highlight=False, soft_wrap=True)
    if result.corpus_path is not None:
        console.print(f"{result.corpus_path}: {result.corpus_docs} passages", markup=False, highlight=False)
    if result.corpus_conflicts:
        err_console.print(
            f"warning: {len(result.corpus_conflicts)} docids appear with different texts (first kept), "
            f"e.g. {result.corpus_conflicts[0]!r}",
            markup=False,
            highlight=False,
        )
