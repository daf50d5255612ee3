"""Training verbs: `train retriever`, `train reranker`.

Every option that sets a field of `RetrieverConfig` / `RerankerConfig` takes its default (and help, where the
field has one) from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import STATE, app, console, handle_errors, print_json, progress, stage_bars, stdout_to_stderr
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


def _train(run: Any, as_json: bool) -> Any:
    """Run a trainer with a progress display on stderr (a bar on a terminal, lines elsewhere, none with --quiet)."""
    with progress() as bar, stdout_to_stderr(as_json):
        bars = stage_bars(bar)
        return run(lambda step, total: bars("training steps", step, total))


# Options both trainers take, said the same way (`TrainerConfig`'s fields).
NEGATIVES = opt.flag("negatives", "--negatives", "-k", help="Hard negatives per group.")
PREFIXES = [
    opt.flag("query_prefix", "--query-prefix", help='E.g. "query: " for E5.'),
    opt.flag("passage_prefix", "--passage-prefix", help='E.g. "passage: " for E5.'),
]
SCHEDULE = [opt.flag("lr", "--lr"), opt.flag("epochs", "--epochs")]
WARMUP = opt.flag("warmup", "--warmup", help="Warmup: a ratio of the steps when < 1, else steps.")
SEED = opt.flag("seed", "--seed")
PRECISION = opt.flag("precision", "--precision", help="auto, fp32, bf16 or fp16.")
MEMORY_CHECK = opt.flag(
    "memory_check", "--memory-check/--no-memory-check",
    help="Refuse, before the first step, a step estimated not to fit in the available memory.",
)  # fmt: skip
MAX_STEPS = opt.flag("max_steps", "--max-steps", help="Stop after this many steps.")

CACHED_LOSS_HELP = (
    "InfoNCE with gradient caching (the default with --loss infonce): memory bounded by --mini-batch-size whatever "
    "the batch size; --no-cached-loss: one backward pass over the whole batch."
)
TEACHER_HELP = (
    "With margin_mse / kl_div: cross-encoder:DIR (or a CrossEncoder folder) or dense:[MODEL], scored once before "
    "training; default: the passages' own teacher_score / teacher_logit."
)
PAIRS_PER_PASS_HELP = "Pairs per forward pass: a bigger step is split into equal micro-batches (accumulated gradients)."
RETRIEVER_FLAGS = [
    opt.flag("base_model", "--model", help="Base model path or name; default: embedded MiniLM."),
    NEGATIVES,
    opt.flag("temperature", "--temperature", help="InfoNCE temperature (scale = 1/temperature)."),
    opt.flag("positives", "--positives", help="sample (one per epoch) or all."),
    *PREFIXES,
    opt.flag("max_length", "--max-length", help="Max tokens per query or passage."),
    *SCHEDULE,
    opt.flag("batch_size", "--batch-size", help="Groups per device per step."),
    WARMUP,
    SEED,
    PRECISION,
    opt.flag("cached_loss", "--cached-loss/--no-cached-loss", help=CACHED_LOSS_HELP),
    opt.flag("mini_batch_size", "--mini-batch-size", help="With the cached loss: texts per backward pass."),
    MEMORY_CHECK,
    opt.flag("lora", "--lora", help="LoRA (peft), last-token pooling: decoders."),
    opt.flag("lora_r", "--lora-r"),
    opt.flag("lora_alpha", "--lora-alpha"),
    opt.flag("pooling", "--pooling", help="auto, mean, cls or lasttoken."),
    MAX_STEPS,
    opt.flag("loss", "--loss", help="infonce, or distillation from a teacher's scores: margin_mse or kl_div."),
    opt.flag("teacher", "--teacher", help=TEACHER_HELP),
    opt.flag("teacher_max_length", "--teacher-max-length", help="The teacher's token limit."),
    opt.flag("teacher_backend", "--teacher-backend", help="Teacher scoring: auto, torch or onnx."),
]
RERANKER_FLAGS = [
    opt.flag("base_model", "--model", help="Base model; default: embedded MiniLM with a new head."),
    opt.flag("loss", "--loss", help="bce (pointwise) or listwise (softmax over the group)."),
    NEGATIVES,
    opt.flag("positives", "--positives", help="sample or all (see `train retriever`)."),
    *PREFIXES,
    opt.flag("max_length", "--max-length", help="Max tokens per (query, passage) pair."),
    *SCHEDULE,
    opt.flag("batch_size", "--batch-size", help="Pairs (bce) or groups (listwise) per step."),
    opt.flag("mini_batch_size", "--mini-batch-size", help=PAIRS_PER_PASS_HELP),
    MEMORY_CHECK,
    WARMUP,
    SEED,
    PRECISION,
    MAX_STEPS,
]


def _trainer_command(name: str, config: type, flags: list[Any], trainer: Any, help: str) -> None:
    """Register `train NAME`: TRAIN -o FOLDER, the config's flags, and the one call of `trainer`."""

    def command(
        train_file: Path = typer.Argument(..., metavar="TRAIN", help=TRAIN_HELP),
        output: Path = opt.output(OUTPUT_HELP, "--output", "-o"),
        overwrite: bool = opt.overwrite(OVERWRITE_HELP),
        options: dict[str, Any] = opt.CONFIG_FLAGS,
        as_json: bool = opt.as_json("Print the result as one JSON object."),
    ) -> None:
        chosen = config(**options, quiet=bool(STATE["quiet"]))
        result = _train(
            lambda report: trainer(train_file, output, chosen, overwrite=overwrite, progress=report), as_json
        )
        _print_train(result, as_json)

    command.__doc__ = help
    command.__name__ = f"train_{name}_cmd"
    train_app.command(name)(handle_errors(opt.config_flags(config, flags)(command)))


_trainer_command(
    "retriever", RetrieverConfig, RETRIEVER_FLAGS, train_retriever,
    """Fine-tune a bi-encoder: InfoNCE over 1 positive + k hard negatives + in-batch negatives, or MarginMSE / KL
    distillation of a teacher's scores (--loss, --teacher).

    Runs on CPU, one GPU, or several with `accelerate launch` / `torchrun` (same command).""",
)  # fmt: skip
_trainer_command(
    "reranker", RerankerConfig, RERANKER_FLAGS, train_reranker,
    "Fine-tune a cross-encoder reranker on positives vs hard negatives.",
)  # fmt: skip
