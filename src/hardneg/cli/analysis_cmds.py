"""Analysis verbs: `agreement`, `annotate export|import` (Label Studio round trip) and `report` (HTML page)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from hardneg.analysis.agreement import compare
from hardneg.analysis.annotate import export_tasks, import_annotations
from hardneg.analysis.labels import load_labels, read_grades
from hardneg.analysis.report import build_report
from hardneg.analysis.testbed import load_testbed
from hardneg.cli import options as opt
from hardneg.cli.common import app, console, count_bar, handle_errors, print_json, print_table, progress
from hardneg.data.atomic import check_target
from hardneg.errors import ConfigError
from hardneg.judging.store import JudgmentStore

PARTIAL_HELP = "Read a store whose run left routed instances unjudged (they are left out)."
annotate_app = typer.Typer(help="Human annotation round trip through Label Studio.", no_args_is_help=True)
app.add_typer(annotate_app, name="annotate")


@contextlib.contextmanager
def _reading(path: Path | None) -> Iterator[JudgmentStore | None]:
    """The judgment store at `path` opened read-only (None: no store), closed after."""
    if path is None:
        yield None
        return
    if not path.exists():
        raise ConfigError(f"{path}: no such judgment store")
    with JudgmentStore(path, readonly=True) as store:
        yield store


def _matrix(labels: list[str], matrix: list[list[int]], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("B \\ A")
    for label in labels:
        table.add_column(label, justify="right")
    for label, row in zip(labels, matrix, strict=True):
        table.add_row(label, *(str(v) for v in row))
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@app.command()
@handle_errors
def agreement(
    a: str = typer.Option(
        ...,
        "--a",
        help="Source under test: stage:N, stage:N@HASH, judge:NAME, final, final:STORE, qrels:FILE, labelstudio:FILE.",
    ),
    b: str = typer.Option(..., "--b", help="Reference source (same syntax); precision and recall take B as the truth."),
    store_path: Path = typer.Option(None, "--store", help="Judgment store, for stage: and judge: sources."),
    threshold: float = typer.Option(1, "--threshold", help="qrels: a grade >= this is relevant."),
    score_threshold: float = typer.Option(
        None, "--score-threshold", help="Score-only judges: a score >= this is relevant."
    ),
    allow_partial: bool = opt.allow_partial(PARTIAL_HELP),
    as_json: bool = opt.as_json("Print one JSON object."),
) -> None:
    """Cohen's kappa, confusion matrix, precision and recall between two label sources on shared pairs."""

    with _reading(store_path) as store:
        kwargs: dict[str, Any] = {
            "store": store, "threshold": threshold, "score_threshold": score_threshold, "allow_partial": allow_partial
        }  # fmt: skip
        result = compare(load_labels(a, **kwargs), load_labels(b, **kwargs))
    if as_json:
        print_json(result.to_dict())
        return
    bin_ = result.binary
    console.print(
        f"{result.a} vs {result.b}: {result.pairs} pairs over {result.queries} queries "
        f"(only in A {result.only_a}, only in B {result.only_b})"
    )
    console.print(
        f"relevant/not: kappa {_fmt(bin_['kappa'])}  precision {_fmt(bin_['precision'])}  "
        f"recall {_fmt(bin_['recall'])}  F1 {_fmt(bin_['f1'])}  accuracy {_fmt(bin_['accuracy'])}"
    )
    print_table(_matrix(bin_["labels"], bin_["confusion"], "relevant / not relevant"))
    if result.three is not None:
        console.print(
            f"better/worse/none: kappa {_fmt(result.three['kappa'])}  "
            f"(better only: {_fmt(result.three['kappa_better_only'])})"
        )
        print_table(_matrix(result.three["labels"], result.three["confusion"], "better / worse / none"))


@annotate_app.command("export")
@handle_errors
def annotate_export(
    store_path: Path = typer.Option(..., "--store", help="Judgment store."),
    instances: Path = typer.Option(..., "--instances", help="The training file that was judged (texts, subsets)."),
    output: Path = typer.Option(..., "-o", "--output", help="Label Studio tasks (.json); the config goes beside it."),
    per_subset: int = opt.library(export_tasks, "per_subset", "--per-subset", help="Pairs sampled per subset."),
    seed: int = opt.library(export_tasks, "seed", "--seed", help="Sampling seed."),
    only_flagged: bool = typer.Option(False, "--only-flagged", help="Only pairs the judge flagged."),
    stage: int = typer.Option(
        None, "--stage", help="Sample from this stage's judgments (default: the latest per query)."
    ),
    as_json: bool = opt.as_json("Print one JSON object."),
) -> None:
    """Write Label Studio tasks for a seeded, per-subset sample of judged pairs, plus the labeling config."""

    with _reading(store_path) as store, progress(quiet=True if as_json else None) as bar:
        summary = export_tasks(
            store, instances, output, per_subset=per_subset, seed=seed, only_flagged=only_flagged, stage=stage,
            progress=count_bar(bar, "reading instances"),
        )  # fmt: skip
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(f"{summary.tasks} tasks -> {summary.tasks_path} (per subset: {summary.per_subset})")
    console.print(f"labeling config -> {summary.config_path}")
    if summary.judged_queries_missing:
        console.print(f"[yellow]{summary.judged_queries_missing} judged queries are not in {instances}[/yellow]")


@annotate_app.command("import")
@handle_errors
def annotate_import(
    export: Path = typer.Argument(..., help="Label Studio export (JSON or JSON_MIN)."),
    output: Path = typer.Option(..., "-o", "--output", help="Labels TSV (qrels-like, per-annotator columns)."),
    tie: str = typer.Option("drop", "--tie", help="Tied votes: drop | relevant | not_relevant."),
    as_json: bool = opt.as_json("Print one JSON object."),
) -> None:
    """Read annotations back into a qrels-like TSV usable by `hardneg agreement --b qrels:FILE`."""

    summary = import_annotations(export, output, tie=tie)  # type: ignore[arg-type]
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(
        f"{summary.pairs} pairs -> {summary.out_path} (relevant {summary.relevant}, not {summary.not_relevant}, "
        f"ties {summary.ties}; annotators: {', '.join(summary.annotators)})"
    )


def _grades(path: Path | None) -> dict[tuple[str, str], float] | None:
    if path is None:
        return None
    if path.is_dir():
        return dict(load_testbed(path).grades)
    return read_grades(path)


@app.command()
@handle_errors
def report(
    store_path: Path = typer.Option(..., "--store", help="Judgment store."),
    output: Path = typer.Option(..., "-o", "--output", help="HTML file to write."),
    instances: Path = typer.Option(None, "--instances", help="Training file, for flagged rates per subset."),
    experiment: Path = typer.Option(None, "--experiment", help="Experiment folder with results.json (or the file)."),
    compare_with: list[str] = typer.Option(
        [], "--agreement", help="Extra agreement A=B, e.g. stage:2=qrels:labels.tsv (repeatable)."
    ),
    tags: str = typer.Option("both", "--tags", help="Which verdict lists count as flags: better | both."),
    qrels: Path = typer.Option(
        None, "--qrels", help="Human grades of the pairs (a qrels file, or a testbed folder) shown beside them."
    ),
    title: str = typer.Option("hardneg report", "--title"),
    allow_partial: bool = opt.allow_partial(PARTIAL_HELP),
    as_json: bool = opt.as_json("Print the numbers shown as one JSON object."),
) -> None:
    """Write one self-contained HTML page: funnel, flagged rates, flags, tokens and cost, agreement, results."""

    check_target(output, folder=False, param="output")  # before reading the store
    pairs = []
    for spec in compare_with:
        left, sep, right = spec.partition("=")
        if not sep or not left or not right:
            raise ConfigError(f"--agreement {spec!r}: expected A=B, e.g. stage:2=qrels:labels.tsv")
        pairs.append((left, right))
    data = build_report(
        store_path,
        output,
        instances=instances,
        experiment=experiment,
        extra_agreements=pairs,
        title=title,
        tags=tags,
        allow_partial=allow_partial,
        grades=_grades(qrels),
    )
    if as_json:
        print_json({"output": str(output), **data.to_dict()})
        return
    console.print(f"report -> {output}")
