"""Evaluation verbs: `evaluate` (a retriever or BM25 on a BEIR split) and `compare` (paired significance of runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import app, console, handle_errors, print_json, print_table, progress, stdout_to_stderr
from hardneg.errors import ConfigError
from hardneg.evaluation.compare import compare_runs
from hardneg.evaluation.run import evaluate as run_evaluate
from hardneg.evaluation.run import evaluate_model


@app.command()
@handle_errors
def evaluate(
    model: str | None = typer.Argument(None, metavar="[MODEL]", help="Retriever folder or name, or bm25."),
    beir_dir: Path | None = typer.Argument(None, metavar="BEIR_DIR", help="BEIR folder (corpus, queries, qrels/)."),
    split: str = opt.library(run_evaluate, "split", "--split"),
    bm25: bool = typer.Option(False, "--bm25", help="Evaluate BM25 (bm25s) instead of a model."),
    reranker: Path | None = typer.Option(None, "--reranker", help="Cross-encoder folder: rerank the first stage."),
    rerank_top: int = opt.library(
        evaluate_model, "rerank_top", "--rerank-top", help="How many first-stage hits to rerank."
    ),
    depth: int | None = typer.Option(None, "--depth", help="First-stage depth (default: the largest cutoff)."),
    query_prefix: str | None = typer.Option(None, "--query-prefix", help="Default: the trained-with prefix."),
    passage_prefix: str | None = typer.Option(None, "--passage-prefix"),
    max_length: int | None = typer.Option(None, "--max-length", help="Max tokens per passage (and query)."),
    batch_size: int = opt.library(evaluate_model, "batch_size", "--batch-size"),
    keep_identical_ids: bool = typer.Option(False, "--keep-identical-ids", help="Keep hits with docid == query id."),
    save_run: Path | None = typer.Option(None, "--save-run", help="Write the (final) run as a TREC run file."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    as_json: bool = opt.as_json("Print one JSON object: ndcg@10, recall@100, mrr@10, queries."),
) -> None:  # fmt: skip
    """nDCG@10, Recall@100 and MRR@10 (trec_eval semantics) of a retriever or BM25 on a BEIR split.

    hardneg evaluate MODEL BEIR_DIR, hardneg evaluate bm25 BEIR_DIR, or hardneg evaluate --bm25 BEIR_DIR."""

    if model == "bm25" and not Path("bm25").exists():  # as `hardneg.evaluate("bm25", ...)` in Python
        bm25, model = True, None
    if bm25:
        if beir_dir is None and model is not None:
            beir_dir, model = Path(model), None  # `evaluate --bm25 BEIR_DIR`: the one argument is the folder
        if model is not None:
            raise ConfigError("give either MODEL or --bm25, not both")
    if beir_dir is None:
        raise ConfigError("missing BEIR_DIR")
    # the library reads the word bm25 as BM25: a folder of that name here is a model
    system: Any = "bm25" if bm25 else Path("bm25") if model == "bm25" else model
    # a model's own options; BM25 takes none of them
    dense: dict[str, Any] = {} if bm25 else {
        "query_prefix": query_prefix, "passage_prefix": passage_prefix, "query_max_length": max_length,
        "passage_max_length": max_length, "batch_size": batch_size, "use_cache": not no_cache,
    }  # fmt: skip
    with progress() as bar, stdout_to_stderr(as_json):
        result = run_evaluate(
            system, beir_dir, split=split, depth=depth,
            ignore_identical_ids=not keep_identical_ids, reranker=reranker, rerank_top=rerank_top, save_run=save_run,
            progress=_phase_bars(bar), **dense,
        )  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"{result.dataset} ({result.split}, {result.queries} queries)")
    names = list(result.metrics)
    table.add_column("system")
    for name in names:
        table.add_column(name, justify="right")
    rows = [result.first_stage, result] if result.first_stage is not None else [result]
    for row in rows:
        table.add_row(row.system, *(f"{row.metrics[n]:.4f}" for n in names))
    print_table(table)
    _print_overlap({result.system: result.overlap})


def _phase_bars(bar: Any) -> Any:
    """One bar per phase; a phase that starts again (the reranked run is scored too) gets a new bar."""
    tasks: dict[str, list[Any]] = {}  # phase -> [its task, its last count]

    def report(stage: str, done: int, total: int) -> None:
        task = tasks.get(stage)
        if task is None or done < task[1]:
            task = tasks[stage] = [bar.add_task(stage, total=total), 0]
        task[1] = done
        bar.update(task[0], completed=done, total=total)

    return report


@app.command()
@handle_errors
def compare(
    qrels: Path = typer.Argument(..., metavar="QRELS", help="BEIR qrels TSV or TREC qrels file."),
    runs: list[Path] = typer.Argument(..., metavar="RUN_A RUN_B [...]", help="TREC runs; the first is the baseline."),
    metric: list[str] = opt.library(compare_runs, "metrics", "--metric", "-m", shown=list, help="Repeatable."),
    iterations: int = opt.library(compare_runs, "iterations", "--iterations", help="Randomization-test resamples."),
    seed: int = opt.library(compare_runs, "seed", "--seed"),
    keep_identical_ids: bool = typer.Option(False, "--keep-identical-ids"),
    as_json: bool = opt.as_json("Print one JSON object."),
) -> None:  # fmt: skip
    """Paired significance of RUN_B (...) against RUN_A: t-test and randomization test, with per-query
    wins / losses / ties.

    Every run is scored on the queries of QRELS with a relevant document that every run answers; a run that
    shares none with QRELS (another split's qrels) is an error, and a partial overlap is counted."""

    if len(runs) < 2:
        raise ConfigError("compare needs at least two run files")
    names = _unique_names(runs)
    result = compare_runs(
        qrels, dict(zip(names, runs, strict=True)), metrics=metric, iterations=iterations, seed=seed,
        ignore_identical_ids=not keep_identical_ids,
    )  # fmt: skip
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"against {result['baseline']} ({result['queries']} queries, {iterations} resamples)")
    for column in ("system", "metric", "baseline", "system score", "delta", "W/L/T", "t-test p", "rand. p"):
        table.add_column(column, justify="left" if column in ("system", "metric") else "right")
    for c in result["comparisons"]:
        table.add_row(
            c["system"], c["metric"], f"{c['mean_a']:.4f}", f"{c['mean_b']:.4f}", f"{c['delta']:+.4f}",
            f"{c['wins']}/{c['losses']}/{c['ties']}", _p(c["t_pvalue"]), _p(c["permutation_pvalue"]),
        )  # fmt: skip
    print_table(table)
    _print_overlap(result["overlap"], paired=result["queries"])


def _print_overlap(overlaps: dict[str, dict[str, int]], *, paired: int | None = None) -> None:
    """A line per run whose queries and the qrels' judged queries differ (the counts are in --json too)."""
    for name, o in overlaps.items():
        if not o or (o["qrels_only"] == 0 and o["run_only"] == 0):
            continue
        line = f"{name}: {o['shared']} of {o['qrels']} judged queries scored"
        if o["qrels_only"]:
            line += f", {o['qrels_only']} judged queries not in the run"
        if o["run_only"]:
            line += f", {o['run_only']} run queries without a relevant document in the qrels ignored"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if paired is not None and any(o["shared"] != paired for o in overlaps.values()):
        console.print(
            f"compared on the {paired} judged queries every run answers", markup=False, highlight=False, soft_wrap=True
        )


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]
