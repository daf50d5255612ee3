"""Mining verb: `hardneg mine BEIR_DIR --split train -o OUT`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import app, console, handle_errors, print_json, progress
from hardneg.data.formats import check_output
from hardneg.mining import MineConfig, mine_beir, parse_range


@app.command()
@handle_errors
def mine(
    beir_dir: Path = typer.Argument(..., help="BEIR folder: corpus.jsonl[.gz], queries.jsonl[.gz], qrels/SPLIT.tsv."),
    output: str = typer.Option(
        ...,
        "--output",
        "-o",
        help="Output rows, in the format the name says: .jsonl, .jsonl.gz, .parquet (an existing file is replaced), "
        "or a datasets folder (a name ending in .hf or /; an existing one only with --overwrite).",
    ),
    split: str = typer.Option("train", "--split", help="qrels split to mine."),
    method: str = typer.Option("bm25", "--method", help="bm25, dense or hybrid (reciprocal rank fusion)."),
    model: str | None = typer.Option(
        None, "--model", help="sentence-transformers name or path (dense/hybrid); default: embedded MiniLM."
    ),
    rank_range: str = typer.Option("0-100", "--range", help="Candidate ranks A-B: A+1..B (10-100 skips the top 10)."),
    negatives: int = typer.Option(30, "--negatives", "-n", help="Negatives per instance."),
    sampling: str = typer.Option("top", "--sampling", help="top (best-ranked first) or random (from the range)."),
    seed: int = typer.Option(42, "--seed", help="Seed of --sampling random, and of --sample."),
    relative_margin: float | None = typer.Option(
        None, "--relative-margin", help="Drop candidates scoring above (1-R) x the lowest positive's score."
    ),
    absolute_margin: float | None = typer.Option(
        None, "--absolute-margin", help="Drop candidates scoring above the lowest positive's score - M."
    ),
    min_score: float | None = typer.Option(
        None, "--min-score", help="Drop candidates scoring below this (the score that ranks; see --rescore)."
    ),
    max_score: float | None = typer.Option(None, "--max-score", help="Drop candidates scoring above this."),
    rescore: Path | None = typer.Option(
        None,
        "--rescore",
        help="A sentence-transformers CrossEncoder folder (e.g. from `train reranker`): rescore the top "
        "--rescore-depth candidates and rank, filter and sample by its scores.",
    ),
    rescore_depth: int | None = typer.Option(
        None, "--rescore-depth", help="Candidates rescored per query (default: the end of --range)."
    ),
    rescore_max_length: int | None = typer.Option(
        None, "--rescore-max-length", help="Cross-encoder token limit (default: the model's own)."
    ),
    min_positive_score: int = typer.Option(1, "--min-positive-score", help="qrels label that makes a positive."),
    min_negatives: int = typer.Option(1, "--min-negatives", help="Skip instances left with fewer negatives."),
    query_prefix: str = typer.Option("", "--query-prefix", help='Prepended to queries (e.g. "query: ").'),
    passage_prefix: str = typer.Option("", "--passage-prefix", help='Prepended to passages (e.g. "passage: ").'),
    query_max_length: int | None = typer.Option(None, "--query-max-length", help="Max query tokens (dense)."),
    passage_max_length: int | None = typer.Option(None, "--passage-max-length", help="Max passage tokens (dense)."),
    title: bool = typer.Option(True, "--title/--no-title", help='Retrieve on "title text" (BEIR convention).'),
    save_scores: bool = typer.Option(False, "--save-scores", help="Keep score and rank on every passage."),
    batch_size: int = typer.Option(32, "--batch-size", help="Encoding batch size (dense/hybrid)."),
    backend: str = typer.Option(
        "auto",
        "--backend",
        help="Dense encoder and --rescore cross-encoder: auto (ONNX Runtime on CPU when installed, else torch), "
        "torch, onnx.",
    ),
    index: str = typer.Option(
        "flat", "--index", help="Dense index: flat (exact), or FAISS ivf / hnsw (approximate, for millions of docs)."
    ),
    engine: str = typer.Option(
        "local", "--engine", help="local, or ray: corpus and query encoding sharded over Ray actors (search here)."
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster for --engine ray (default: $RAY_ADDRESS, else a local Ray)."
    ),
    workers: int = typer.Option(2, "--workers", help="--engine ray: encoding actors."),
    worker_gpus: float = typer.Option(0.0, "--worker-gpus", help="--engine ray: GPUs per actor (0: one CPU each)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache folder."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the embedding cache."),
    subset: str | None = typer.Option(None, "--subset", help="Row `subset` (default: the folder name)."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Mine only the first N queries of the qrels (file order); the corpus is whole."
    ),
    sample: int | None = typer.Option(
        None, "--sample", min=1, help="Mine a random N of the qrels' queries (seeded by --seed), in file order."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing output folder hardneg wrote (never a folder of other files)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object on stdout."),
) -> None:
    """Mine hard negatives from a BEIR folder into Tevatron training rows."""

    check_output(output, overwrite=overwrite, param="output")  # before any mining
    start, end = parse_range(rank_range)
    config = MineConfig(
        method=method,
        model=model,
        range_start=start,
        range_end=end,
        negatives=negatives,
        sampling=sampling,
        seed=seed,
        relative_margin=relative_margin,
        absolute_margin=absolute_margin,
        min_score=min_score,
        max_score=max_score,
        rescore=str(rescore) if rescore is not None else None,
        rescore_depth=rescore_depth,
        rescore_max_length=rescore_max_length,
        min_positive_score=min_positive_score,
        min_negatives=min_negatives,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
        use_title=title,
        save_scores=save_scores,
        batch_size=batch_size,
        backend=backend,
        index=index,  # type: ignore[arg-type]
        engine=engine,  # type: ignore[arg-type]
        ray_address=ray_address,
        workers=workers,
        worker_gpus=worker_gpus,
        cache_dir=str(cache_dir) if cache_dir else None,
        use_cache=not no_cache,
    )
    config.check()
    with progress() as bar:
        tasks: dict[str, Any] = {}

        def report_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = mine_beir(
            beir_dir, split, output, config, subset=subset, progress=report_progress, overwrite=overwrite,
            limit=limit, sample=sample,
        )  # fmt: skip
    data = report.to_dict()
    if as_json:
        print_json(data)
        return
    per = data["negatives_per_instance"]
    console.print(
        f"{data['instances']} instances written to {output} "
        f"(negatives per instance: mean {per['mean']}, min {per['min']}, max {per['max']})",
        highlight=False,
    )
    skipped = ", ".join(f"{k} {v}" for k, v in data["skipped"].items())
    encoder = f"; encoder {data['encoder']}" if data["encoder"] else ""
    if data.get("rescorer"):
        encoder += f"; rescored {data['rescored']} pairs with the cross-encoder ({data['rescorer']})"
    chosen = data.get("selection")
    if chosen:
        how = f"the first {chosen['used']}" if chosen["limit"] is not None else f"a random {chosen['used']}"
        skipped = f"{skipped}; mined {how} of {chosen['total']} queries"
    console.print(f"queries {data['queries']}; skipped: {skipped}{encoder}", highlight=False)
    dropped = data["positives_dropped"]
    if any(dropped.values()):
        console.print(
            f"positives dropped: {dropped['not_in_corpus']} not in the corpus, {dropped['empty_text']} with empty text",
            highlight=False,
        )
    removed = ", ".join(f"{k} {v}" for k, v in data["removed"].items())
    console.print(
        f"candidates {data['candidates']}; removed: {removed}; not sampled {data['not_sampled']}", highlight=False
    )
