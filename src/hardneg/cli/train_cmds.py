"""Training and evaluation verbs: `train retriever`, `train reranker`, `evaluate`, `compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import STATE, app, console, handle_errors, print_json, print_table, progress, stdout_to_stderr
from hardneg.errors import ConfigError
from hardneg.evaluation.compare import compare_runs
from hardneg.evaluation.run import evaluate_bm25, evaluate_model
from hardneg.training.reranker import RerankerConfig, train_reranker
from hardneg.training.retriever import RetrieverConfig, train_retriever

train_app = typer.Typer(help="Fine-tune a retriever (bi-encoder) or a reranker (cross-encoder).", no_args_is_help=True)
app.add_typer(train_app, name="train")

OUTPUT_HELP = "Model folder to write (written in full beside it, then renamed into place)."
OVERWRITE_HELP = (
    "Replace an existing model folder, once the new model is complete (only a folder hardneg wrote; without this "
    "flag an existing folder is refused before training)."
)
TRAIN_HELP = "Training file (Tevatron rows: .jsonl, .jsonl.gz, .parquet or a datasets folder)."


def _print_train(result: Any, as_json: bool) -> None:
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    sampling = data["sampling"]
    console.print(
        f"{data['kind']} written to {data['output_dir']}: {data['steps']} steps, {data['examples']} examples, "
        f"{data['examples_per_second']:.2f} examples/s, train loss {data['train_loss']:.4f}",
        markup=False,
        highlight=False,
    )
    console.print(
        f"instances {sampling['instances']}, skipped without negatives {sampling['skipped_no_negatives']}, "
        f"without positives {sampling['skipped_no_positives']}, negatives drawn with replacement "
        f"{sampling['padded_with_replacement']}",
        markup=False,
        highlight=False,
    )


# The library configs are where the defaults live; the flags show them.
_R = RetrieverConfig()
_K = RerankerConfig()
MEMORY_CHECK_HELP = "Refuse, before the first step, a step estimated not to fit in the available memory."


def _train(run: Any, as_json: bool) -> Any:
    """Run a trainer with a progress display on stderr (a bar on a terminal, lines elsewhere, none with --quiet)."""
    with progress() as bar, stdout_to_stderr(as_json):
        task: list[Any] = []

        def report(step: int, total: int) -> None:
            if not task:
                task.append(bar.add_task("training steps", total=total))
            bar.update(task[0], completed=step, total=total)

        return run(report)


@train_app.command("retriever")
@handle_errors
def train_retriever_cmd(
    train_file: Path = typer.Argument(..., metavar="TRAIN", help=TRAIN_HELP),
    output: Path = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    model: str | None = typer.Option(None, "--model", help="Base model path or name; default: embedded MiniLM."),
    negatives: int = typer.Option(_R.negatives, "--negatives", "-k", help="Hard negatives per group."),
    temperature: float = typer.Option(
        _R.temperature, "--temperature", help="InfoNCE temperature (scale = 1/temperature)."
    ),
    positives: str = typer.Option(_R.positives, "--positives", help="sample (one per epoch) or all."),
    query_prefix: str = typer.Option(_R.query_prefix, "--query-prefix", help='E.g. "query: " for E5.'),
    passage_prefix: str = typer.Option(_R.passage_prefix, "--passage-prefix", help='E.g. "passage: " for E5.'),
    max_length: int = typer.Option(_R.max_length, "--max-length", help="Max tokens per query or passage."),
    lr: float = typer.Option(_R.lr, "--lr"),
    epochs: int = typer.Option(_R.epochs, "--epochs"),
    batch_size: int = typer.Option(_R.batch_size, "--batch-size", help="Groups per device per step."),
    warmup: float = typer.Option(_R.warmup, "--warmup", help="Warmup: a ratio of the steps when < 1, else steps."),
    seed: int = typer.Option(_R.seed, "--seed"),
    precision: str = typer.Option(_R.precision, "--precision", help="auto, fp32, bf16 or fp16."),
    cached_loss: bool | None = typer.Option(
        _R.cached_loss, "--cached-loss/--no-cached-loss",
        help="InfoNCE with gradient caching (the default with --loss infonce): memory bounded by --mini-batch-size "
        "whatever the batch size; --no-cached-loss: one backward pass over the whole batch.",
    ),
    mini_batch_size: int = typer.Option(
        _R.mini_batch_size, "--mini-batch-size", help="With the cached loss: texts per backward pass."
    ),
    memory_check: bool = typer.Option(_R.memory_check, "--memory-check/--no-memory-check", help=MEMORY_CHECK_HELP),
    lora: bool = typer.Option(_R.lora, "--lora", help="LoRA (peft), last-token pooling: decoders."),
    lora_r: int = typer.Option(_R.lora_r, "--lora-r"),
    lora_alpha: int = typer.Option(_R.lora_alpha, "--lora-alpha"),
    pooling: str = typer.Option(_R.pooling, "--pooling", help="auto, mean, cls or lasttoken."),
    max_steps: int | None = typer.Option(_R.max_steps, "--max-steps", help="Stop after this many steps."),
    loss: str = typer.Option(
        _R.loss, "--loss", help="infonce, or distillation from a teacher's scores: margin_mse or kl_div."
    ),
    teacher: str | None = typer.Option(
        _R.teacher, "--teacher", help="With margin_mse / kl_div: cross-encoder:DIR (or a CrossEncoder folder) or "
        "dense:[MODEL], scored once before training; default: the passages' own teacher_score / teacher_logit.",
    ),
    teacher_max_length: int | None = typer.Option(
        _R.teacher_max_length, "--teacher-max-length", help="The teacher's token limit."
    ),
    teacher_backend: str = typer.Option(
        _R.teacher_backend, "--teacher-backend", help="Teacher scoring: auto, torch or onnx."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:  # fmt: skip
    """Fine-tune a bi-encoder: InfoNCE over 1 positive + k hard negatives + in-batch negatives, or MarginMSE / KL
    distillation of a teacher's scores (--loss, --teacher).

    Runs on CPU, one GPU, or several with `accelerate launch` / `torchrun` (same command)."""

    config = RetrieverConfig(
        base_model=model, negatives=negatives, temperature=temperature, positives=_positives(positives),
        query_prefix=query_prefix, passage_prefix=passage_prefix, max_length=max_length, lr=lr, epochs=epochs,
        batch_size=batch_size, warmup=warmup, seed=seed, precision=precision, cached_loss=cached_loss,
        mini_batch_size=mini_batch_size, memory_check=memory_check, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha,
        pooling=pooling, max_steps=max_steps, quiet=bool(STATE["quiet"]), loss=loss,  # type: ignore[arg-type]
        teacher=teacher, teacher_max_length=teacher_max_length, teacher_backend=teacher_backend,
    )  # fmt: skip
    result = _train(
        lambda report: train_retriever(train_file, output, config, overwrite=overwrite, progress=report), as_json
    )
    _print_train(result, as_json)


@train_app.command("reranker")
@handle_errors
def train_reranker_cmd(
    train_file: Path = typer.Argument(..., metavar="TRAIN", help=TRAIN_HELP),
    output: Path = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    model: str | None = typer.Option(None, "--model", help="Base model; default: embedded MiniLM with a new head."),
    loss: str = typer.Option(_K.loss, "--loss", help="bce (pointwise) or listwise (softmax over the group)."),
    negatives: int = typer.Option(_K.negatives, "--negatives", "-k", help="Hard negatives per group."),
    positives: str = typer.Option(_K.positives, "--positives", help="sample or all (see `train retriever`)."),
    query_prefix: str = typer.Option(_K.query_prefix, "--query-prefix"),
    passage_prefix: str = typer.Option(_K.passage_prefix, "--passage-prefix"),
    max_length: int = typer.Option(_K.max_length, "--max-length", help="Max tokens per (query, passage) pair."),
    lr: float = typer.Option(_K.lr, "--lr"),
    epochs: int = typer.Option(_K.epochs, "--epochs"),
    batch_size: int = typer.Option(_K.batch_size, "--batch-size", help="Pairs (bce) or groups (listwise) per step."),
    mini_batch_size: int = typer.Option(
        _K.mini_batch_size, "--mini-batch-size",
        help="Pairs per forward pass: a bigger step is split into equal micro-batches (accumulated gradients).",
    ),
    memory_check: bool = typer.Option(_K.memory_check, "--memory-check/--no-memory-check", help=MEMORY_CHECK_HELP),
    warmup: float = typer.Option(_K.warmup, "--warmup"),
    seed: int = typer.Option(_K.seed, "--seed"),
    precision: str = typer.Option(_K.precision, "--precision"),
    max_steps: int | None = typer.Option(_K.max_steps, "--max-steps"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:  # fmt: skip
    """Fine-tune a cross-encoder reranker on positives vs hard negatives."""

    if loss not in ("bce", "listwise"):
        raise ConfigError(f"--loss must be bce or listwise, got {loss!r}")
    config = RerankerConfig(
        base_model=model, loss=loss, negatives=negatives, positives=_positives(positives),  # type: ignore[arg-type]
        query_prefix=query_prefix, passage_prefix=passage_prefix, max_length=max_length, lr=lr, epochs=epochs,
        batch_size=batch_size, mini_batch_size=mini_batch_size, memory_check=memory_check, warmup=warmup, seed=seed,
        precision=precision, max_steps=max_steps, quiet=bool(STATE["quiet"]),
    )  # fmt: skip
    result = _train(
        lambda report: train_reranker(train_file, output, config, overwrite=overwrite, progress=report), as_json
    )
    _print_train(result, as_json)


def _positives(value: str) -> Any:
    if value not in ("sample", "all"):
        raise ConfigError(f"--positives must be sample or all, got {value!r}")
    return value


@app.command()
@handle_errors
def evaluate(
    model: str | None = typer.Argument(None, metavar="[MODEL]", help="Retriever folder or name, or bm25."),
    beir_dir: Path | None = typer.Argument(None, metavar="BEIR_DIR", help="BEIR folder (corpus, queries, qrels/)."),
    split: str = typer.Option("test", "--split"),
    bm25: bool = typer.Option(False, "--bm25", help="Evaluate BM25 (bm25s) instead of a model."),
    reranker: Path | None = typer.Option(None, "--reranker", help="Cross-encoder folder: rerank the first stage."),
    rerank_top: int = typer.Option(100, "--rerank-top", help="How many first-stage hits to rerank."),
    depth: int | None = typer.Option(None, "--depth", help="First-stage depth (default: the largest cutoff)."),
    query_prefix: str | None = typer.Option(None, "--query-prefix", help="Default: the trained-with prefix."),
    passage_prefix: str | None = typer.Option(None, "--passage-prefix"),
    max_length: int | None = typer.Option(None, "--max-length", help="Max tokens per passage (and query)."),
    batch_size: int = typer.Option(64, "--batch-size"),
    keep_identical_ids: bool = typer.Option(False, "--keep-identical-ids", help="Keep hits with docid == query id."),
    save_run: Path | None = typer.Option(None, "--save-run", help="Write the (final) run as a TREC run file."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: ndcg@10, recall@100, mrr@10, queries."),
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
    with progress() as bar, stdout_to_stderr(as_json):
        tasks: dict[str, list[Any]] = {}  # phase -> [its task, its last count]

        def report(stage: str, done: int, total: int) -> None:
            task = tasks.get(stage)
            if task is None or done < task[1]:  # a phase that starts again: the reranked run is scored too
                task = tasks[stage] = [bar.add_task(stage, total=total), 0]
            task[1] = done
            bar.update(task[0], completed=done, total=total)

        common: dict[str, Any] = {
            "split": split, "depth": depth, "ignore_identical_ids": not keep_identical_ids, "reranker": reranker,
            "rerank_top": rerank_top, "save_run": save_run, "progress": report,
        }  # fmt: skip
        if bm25:
            result = evaluate_bm25(beir_dir, **common)
        else:
            result = evaluate_model(
                model, beir_dir, query_prefix=query_prefix, passage_prefix=passage_prefix,
                query_max_length=max_length, passage_max_length=max_length, batch_size=batch_size,
                use_cache=not no_cache, **common,
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
        table.add_row(row.system, *(f"{row.metrics[n]:.4f}" for n in names))  # type: ignore[union-attr]
    print_table(table)
    _print_overlap({result.system: result.overlap})


@app.command()
@handle_errors
def compare(
    qrels: Path = typer.Argument(..., metavar="QRELS", help="BEIR qrels TSV or TREC qrels file."),
    runs: list[Path] = typer.Argument(..., metavar="RUN_A RUN_B [...]", help="TREC runs; the first is the baseline."),
    metric: list[str] = typer.Option(["ndcg@10", "recall@100", "mrr@10"], "--metric", "-m", help="Repeatable."),
    iterations: int = typer.Option(10000, "--iterations", help="Randomization-test resamples."),
    seed: int = typer.Option(42, "--seed"),
    keep_identical_ids: bool = typer.Option(False, "--keep-identical-ids"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
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
