"""Mining verb: `hardneg mine BEIR_DIR --split train -o OUT`.

Every option that sets a `MineConfig` field takes its default, type and (where the field has one) help from
`MineConfig` (`MINE_FLAGS`).
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import app, console, handle_errors, print_json, progress, stage_bars
from hardneg.mining import MineConfig, mine_beir, parse_range
from hardneg.mining.miner import mine as run_mine

# The options that set MineConfig fields, in the order `hardneg mine --help` lists them (`--range` and
# `--no-cache` are the command's own: a field pair, and a field the flag negates).
MINE_FLAGS: list[opt.Flag | str] = [
    opt.flag("method", "--method", help="bm25, dense or hybrid (reciprocal rank fusion)."),
    opt.flag("model", "--model", help="sentence-transformers name or path (dense/hybrid); default: embedded MiniLM."),
    "rank_range",
    opt.flag("negatives", "--negatives", "-n", help="Negatives per instance."),
    opt.flag("sampling", "--sampling", help="top (best-ranked first) or random (from the range)."),
    opt.flag("seed", "--seed", help="Seed of --sampling random, and of --sample."),
    opt.flag(
        "relative_margin",
        "--relative-margin",
        help="Drop candidates scoring above (1-R) x the lowest positive's score.",
    ),
    opt.flag(
        "absolute_margin", "--absolute-margin", help="Drop candidates scoring above the lowest positive's score - M."
    ),
    opt.flag(
        "min_score", "--min-score", help="Drop candidates scoring below this (the score that ranks; see --rescore)."
    ),
    opt.flag("max_score", "--max-score", help="Drop candidates scoring above this."),
    opt.flag(
        "rescore",
        "--rescore",
        type=Path | None,
        help="A sentence-transformers CrossEncoder folder (e.g. from `train reranker`): rescore the top "
        "--rescore-depth candidates and rank, filter and sample by its scores.",
    ),
    opt.flag("rescore_depth", "--rescore-depth", help="Candidates rescored per query (default: the end of --range)."),
    opt.flag(
        "rescore_max_length", "--rescore-max-length", help="Cross-encoder token limit (default: the model's own)."
    ),
    opt.flag("min_positive_score", "--min-positive-score", help="qrels label that makes a positive."),
    opt.flag("min_negatives", "--min-negatives", help="Skip instances left with fewer negatives."),
    opt.flag("query_prefix", "--query-prefix", help='Prepended to queries (e.g. "query: ").'),
    opt.flag("passage_prefix", "--passage-prefix", help='Prepended to passages (e.g. "passage: ").'),
    opt.flag("query_max_length", "--query-max-length", help="Max query tokens (dense)."),
    opt.flag("passage_max_length", "--passage-max-length", help="Max passage tokens (dense)."),
    opt.flag("use_title", "--title/--no-title", help='Retrieve on "title text" (BEIR convention).'),
    opt.flag("save_scores", "--save-scores", help="Keep score and rank on every passage."),
    opt.flag("batch_size", "--batch-size", help="Encoding batch size (dense/hybrid)."),
    opt.flag(
        "backend",
        "--backend",
        help="Dense encoder and --rescore cross-encoder: auto (ONNX Runtime on CPU when installed, else torch), "
        "torch, onnx.",
    ),
    opt.flag(
        "index", "--index", help="Dense index: flat (exact), or FAISS ivf / hnsw (approximate, for millions of docs)."
    ),
    opt.flag(
        "engine", "--engine", help="local, or ray: corpus and query encoding sharded over Ray actors (search here)."
    ),
    opt.flag(
        "ray_address", "--ray-address", help="Ray cluster for --engine ray (default: $RAY_ADDRESS, else a local Ray)."
    ),
    opt.flag("workers", "--workers", help="--engine ray: encoding actors."),
    opt.flag("worker_gpus", "--worker-gpus", help="--engine ray: GPUs per actor (0: one CPU each)."),
    opt.flag("cache_dir", "--cache-dir", type=Path | None, help="Embedding cache folder."),
    "no_cache",
]
RANGE = (opt.library_default(MineConfig, "range_start"), opt.library_default(MineConfig, "range_end"))


@app.command()
@handle_errors
@opt.config_flags(MineConfig, MINE_FLAGS)
def mine(
    beir_dir: Path = typer.Argument(..., help="BEIR folder: corpus.jsonl[.gz], queries.jsonl[.gz], qrels/SPLIT.tsv."),
    output: str = opt.output(f"Output rows, {opt.OUTPUT_RULE}", "--output", "-o"),
    split: str = opt.library(run_mine, "split", "--split", help="qrels split to mine."),
    options: dict[str, Any] = opt.CONFIG_FLAGS,
    rank_range: str = typer.Option(
        "{}-{}".format(*RANGE), "--range", help="Candidate ranks A-B: A+1..B (10-100 skips the top 10)."
    ),
    no_cache: bool = opt.library(
        MineConfig, "use_cache", "--no-cache", shown=operator.not_, help="Neither read nor write the embedding cache."
    ),
    subset: str | None = typer.Option(None, "--subset", help="Row `subset` (default: the folder name)."),
    limit: int | None = opt.limit("Mine only the first N queries of the qrels (file order); the corpus is whole."),
    sample: int | None = opt.sample("Mine a random N of the qrels' queries (seeded by --seed), in file order."),
    overwrite: bool = opt.overwrite(),
    as_json: bool = opt.as_json("Print the report as one JSON object on stdout."),
) -> None:
    """Mine hard negatives from a BEIR folder into Tevatron training rows."""

    start, end = parse_range(rank_range)
    config = MineConfig(**options, range_start=start, range_end=end, use_cache=not no_cache)
    with progress() as bar:
        report = mine_beir(
            beir_dir, split, output, config, subset=subset, progress=stage_bars(bar), overwrite=overwrite,
            limit=limit, sample=sample,
        )  # fmt: skip
    if as_json:
        print_json(report.to_dict())
        return
    _print_report(report.to_dict(), output)


def _print_report(data: dict[str, Any], output: str) -> None:
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
