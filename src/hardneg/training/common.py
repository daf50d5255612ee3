"""Pieces shared by the retriever and reranker trainers: their common options (`TrainerConfig`), the run around
the training (`run_training`), precision, sequential batches, the memory check, progress, metadata."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field

from hardneg.data.atomic import atomic_dir, check_target
from hardneg.data.records import Instance
from hardneg.errors import ConfigError, PathText, config_dataclass, revalidate
from hardneg.progress import is_quiet, set_quiet
from hardneg.training.data import (
    Example,
    SamplingStats,
    build_examples,
    load_training_instances,
    training_data_identity,
)
from hardneg.training.memory import available_memory

METADATA_FILE = "hardneg_train.json"
ProgressCallback = Callable[[int, int], None]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
# Annotated constraints keep each default a plain value (`dataclasses.fields` shows it, the CLI reads it).
AtLeastOne = Annotated[int, Field(ge=1)]
TokenLimit = Annotated[int, Field(ge=8)]


@config_dataclass
class TrainerConfig:
    """The options every trainer takes (`RetrieverConfig`, `RerankerConfig` add their own). Checked when made:
    a bad value raises `ConfigError` naming the field."""

    base_model: PathText | None = None  # None: the embedded all-MiniLM-L6-v2; any HF or sentence-transformers path
    negatives: Annotated[int, Field(ge=0)] = 7  # hard negatives per group (the paper: 7)
    positives: Literal["sample", "all"] = "sample"  # one positive per instance and epoch, or one group per positive
    query_prefix: str = ""
    passage_prefix: str = ""
    max_length: TokenLimit = 256
    lr: Annotated[float, Field(gt=0)] = 2e-5
    epochs: AtLeastOne = 1
    batch_size: AtLeastOne = 32
    # Texts (retriever, with the cached loss) or (query, passage) pairs (reranker) per forward or backward pass.
    mini_batch_size: AtLeastOne = 8  # measured on MiniLM at 256 tokens: 1.9 GB peak RSS at batch 8, 2.5 GB at 32
    memory_check: bool = True  # refuse, before the first step, a step estimated not to fit (hardneg.training.memory)
    warmup: Annotated[float, Field(ge=0)] = 0.1  # a ratio of the total steps when < 1, else a number of steps
    seed: int = 42
    precision: Precision = "auto"
    max_steps: int | None = None  # stop early (benchmarks, smoke tests)
    quiet: bool = False

    def check(self) -> None:
        """Validate the current values again (`ConfigError` naming the field): for a config changed in place."""
        revalidate(self)

    def examples(self, instances: Sequence[Instance], **options: Any) -> tuple[list[list[Example]], SamplingStats]:
        """The training groups of every epoch, sampled as these options say (`build_examples`; `options`: its
        other arguments)."""
        return build_examples(
            instances, negatives=self.negatives, epochs=self.epochs, seed=self.seed, positives=self.positives,
            query_prefix=self.query_prefix, passage_prefix=self.passage_prefix, **options,
        )  # fmt: skip


@dataclass
class TrainResult:
    """What a training run produced."""

    output_dir: Path
    kind: str  # "retriever" or "reranker"
    examples: int  # rows seen (all epochs)
    steps: int
    seconds: float
    train_loss: float | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "kind": self.kind,
            "examples": self.examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "examples_per_second": round(self.examples_per_second, 3),
            "train_loss": self.train_loss,
            "sampling": self.metadata.get("sampling", {}),
        }


@dataclass
class TrainingJob:
    """What `run_training` hands a trainer's own part besides its config."""

    instances: list[Instance]
    train_data: dict[str, str]  # where the rows came from (`training_data_identity`), for the metadata
    output_dir: Path
    progress: ProgressCallback | None
    overwrite: bool


Config = TypeVar("Config", bound=TrainerConfig)


def run_training(
    train: Callable[[TrainingJob, Config], TrainResult],
    data: Any,
    output_dir: str | Path,
    config: Config,
    *,
    overwrite: bool,
    progress: ProgressCallback | None,
) -> TrainResult:
    """What every trainer does around its training: refuse a model folder it may not write before anything else,
    check the options, read the data (bad input stops here, before torch is imported), and train, quiet when the
    config says so. `train(job, config)` is the trainer's own part."""
    check_model_folder(output_dir, overwrite)
    config.check()
    with quiet_scope(config.quiet):
        instances = load_training_instances(data)
        job = TrainingJob(instances, training_data_identity(data, instances), Path(output_dir), progress, overwrite)
        del instances  # the job holds them until the trainer has its rows (`release_instances`)
        return train(job, config)


def release_instances(job: TrainingJob) -> None:
    """Once the rows are in the Arrow dataset the instances are not needed: let them go before the first step, and
    hand the freed heap back to the system (glibc keeps freed small blocks otherwise), so that the training's peak
    memory is that of the model and the rows, as with sentence-transformers alone. The caller drops its own
    references first; a list the user passed in stays theirs."""
    job.instances = []
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): the process reuses the memory
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def check_memory(check_step_memory: Callable[..., Any], config: TrainerConfig, model: Any, model_config: Any) -> None:
    """With `config.memory_check`: the trainer's `check_step_memory` against this machine's memory (a GPU's when
    there is one), for the model's trainable parameters at the config's precision."""
    if not config.memory_check:
        return
    import torch

    on_gpu = torch.cuda.is_available()
    check_step_memory(
        config, model_config, sum(p.numel() for p in model.parameters() if p.requires_grad),
        available=available_memory(on_gpu=on_gpu), half_precision=resolve_precision(config.precision) != "fp32",
        on_gpu=on_gpu,
    )  # fmt: skip


def pad_with_eos(tokenizer: Any) -> bool:
    """Decoders often ship without a pad token: pad with EOS. True when it did."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        return True
    return False


def resolve_precision(precision: str) -> str:
    """`auto` -> bf16 on a GPU that has it, else fp16 on a GPU, else fp32 (CPU)."""
    import torch

    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def sequential_trainer(base: type) -> type:
    """A trainer class that reads the training rows in order.

    Rows are already shuffled per epoch by `hardneg.training.data.build_examples`; reading them in order keeps epoch
    blocks intact. Accelerate still shards each batch across processes under `accelerate launch` / `torchrun`.
    """
    from torch.utils.data import SequentialSampler

    try:  # sentence-transformers >= 6; earlier releases keep it in sentence_transformers.sampler
        from sentence_transformers.base.sampler import DefaultBatchSampler
    except ImportError:
        from sentence_transformers.sampler import DefaultBatchSampler  # type: ignore[no-redef]

    class SequentialTrainer(base):  # type: ignore[misc, valid-type, unused-ignore]  # base: a class chosen at run time
        def get_batch_sampler(  # type: ignore[override, unused-ignore]
            self,
            dataset: Any,
            batch_size: int,
            drop_last: bool,
            valid_label_columns: list[str] | None = None,
            generator: Any = None,
            seed: int = 0,
        ) -> Any:
            return DefaultBatchSampler(
                SequentialSampler(dataset),
                batch_size=batch_size,
                drop_last=drop_last,
                valid_label_columns=valid_label_columns,
                generator=generator,
                seed=seed,
            )

    SequentialTrainer.__name__ = f"Sequential{base.__name__}"
    return SequentialTrainer


def progress_callback(progress: ProgressCallback | None) -> Any:
    """A transformers TrainerCallback that reports (step, total steps) to `progress`."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress is not None and state.is_world_process_zero:
                progress(0, state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress is not None and state.is_world_process_zero:
                progress(state.global_step, state.max_steps)

    return _Progress()


def training_arguments(
    args_class: type,
    *,
    output_dir: Path,
    batch_size: int,
    lr: float,
    warmup: float,
    seed: int,
    precision: str,
    max_steps: int | None,
    quiet: bool,
    accumulation: int = 1,
) -> Any:
    """Trainer arguments for one sequential pass over the pre-sampled epochs (see hardneg.training.data).

    `batch_size` rows per forward pass, `accumulation` passes per optimizer step."""
    import torch

    resolved = resolve_precision(precision)
    return args_class(
        output_dir=str(output_dir),
        num_train_epochs=1,
        max_steps=max_steps if max_steps else -1,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=lr,
        warmup_steps=warmup,
        seed=seed,
        data_seed=seed,
        bf16=resolved == "bf16",
        fp16=resolved == "fp16",
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,  # progress and log lines come from `train_logger` and the `progress` callback
        log_level="error" if quiet else "warning",
        dataloader_drop_last=False,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinning is only useful (and only quiet) with a GPU
    )


def micro_batches(batch_size: int, rows_per_pass: int) -> tuple[int, int]:
    """(rows per forward pass, passes per step): the fewest equal micro-batches of at most `rows_per_pass` rows
    that make up `batch_size` (gradient accumulation; exact for losses averaged over independent rows)."""
    passes = max(1, -(-batch_size // max(1, rows_per_pass)))
    while batch_size % passes:
        passes += 1
    return batch_size // passes, passes


def train_logger(quiet: bool) -> Any:
    """A TrainerCallback writing the Trainer's logs as lines on stderr (nothing when quiet).

    Replaces transformers' PrinterCallback / ProgressCallback, which print the raw log dict on stdout."""
    import sys

    from transformers import TrainerCallback

    class _Lines(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if quiet or not logs or not state.is_world_process_zero:
                return
            sys.stderr.write(log_line(logs, state.global_step, state.max_steps) + "\n")
            sys.stderr.flush()

    return _Lines()


def log_line(logs: dict[str, Any], step: int, max_steps: int) -> str:
    """One Trainer log record as a line: `training: step 10/26, loss 1.235, learning rate 1.8e-05`, or the
    summary at the end (`training: 26 steps in 138.9 s, mean loss 1.1`)."""
    if "train_runtime" in logs:
        text = f"training: {step} steps in {_number(logs['train_runtime'])} s"
        if "train_loss" in logs:
            text += f", mean loss {_number(logs['train_loss'])}"
        return text
    parts = [f"{key.replace('_', ' ')} {_number(value)}" for key, value in logs.items() if key != "epoch"]
    return f"training: step {step}/{max_steps}, " + ", ".join(parts)


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number == 0 or 1e-3 <= abs(number) < 1e5:
        return f"{number:.4g}"
    return f"{number:.3g}"


def environment() -> dict[str, Any]:
    import torch

    versions: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("sentence_transformers", "transformers", "peft"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            continue
    versions["cuda_devices"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    versions["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
    return versions


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """The metadata hardneg wrote beside a trained model ({} for other models)."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def quiet_scope(quiet: bool) -> Iterator[bool]:
    """Quiet for the block when `quiet` (the config's) or `hardneg.progress.is_quiet()`; yields which."""
    if not quiet or is_quiet():
        yield is_quiet()
        return
    set_quiet(True)
    try:
        yield True
    finally:
        set_quiet(False)


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def group_columns(per_epoch: Sequence[Sequence[Any]], negatives: int, *, label: bool = False) -> dict[str, list[Any]]:
    """Columns `query`, `positive`, `negative_1..k`: one row per sampled group, epochs in order.

    `label`: a last column `label` with each example's teacher scores (positive first), for distillation losses.
    """
    columns: dict[str, list[Any]] = {"query": [], "positive": []}
    for i in range(negatives):
        columns[f"negative_{i + 1}"] = []
    if label:
        columns["label"] = []
    for examples in per_epoch:
        for example in examples:
            columns["query"].append(example.query)
            columns["positive"].append(example.positive)
            for i, negative in enumerate(example.negatives):
                columns[f"negative_{i + 1}"].append(negative)
            if label:
                columns["label"].append(list(example.scores))
    return columns


def check_model_folder(output_dir: str | Path, overwrite: bool) -> None:
    """Refuse, before any training, a model folder that `fit_and_save` would not be allowed to write."""
    check_target(output_dir, folder=True, overwrite=overwrite, param="output_dir")


def fit_and_save(
    *,
    kind: str,
    trainer_base: type,
    args_class: type,
    model: Any,
    dataset: Any,
    loss: Any,
    config: TrainerConfig,
    job: TrainingJob,
    sampling: SamplingStats,
    metadata: dict[str, Any],
    before_save: Callable[[], None] | None = None,
    micro_batch: tuple[int, int] | None = None,
) -> TrainResult:
    """Train `model` on `dataset` in order, then write it and its metadata to `job.output_dir` atomically.

    `config` gives batch_size, lr, warmup, seed, precision, max_steps and quiet; `job` the data's identity, the
    folder, the progress callback and `overwrite` (replace an existing model folder hardneg wrote, `atomic_dir`;
    `run_training` checked it before training). `metadata` holds what is particular to the kind of model and is
    merged into the common record. `before_save` runs on the main process only, after training (e.g. to merge LoRA
    weights). `micro_batch`: (rows per forward pass, passes per step) when a step is split (gradient accumulation).
    Trainer scratch lives in a temporary folder removed when training ends, failed or not; nothing is left beside
    the model folder (itself written through `atomic_dir`).
    """

    rows, accumulation = micro_batch or (config.batch_size, 1)
    with tempfile.TemporaryDirectory(prefix="hardneg-trainer-") as scratch:
        args = training_arguments(
            args_class,
            output_dir=Path(scratch),
            batch_size=rows,
            lr=config.lr,
            warmup=config.warmup,
            seed=config.seed,
            precision=config.precision,
            max_steps=config.max_steps,
            quiet=config.quiet or is_quiet(),
            accumulation=accumulation,
        )
        trainer = sequential_trainer(trainer_base)(
            model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[progress_callback(job.progress)]
        )
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)  # both print the raw log dict on stdout
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(train_logger(config.quiet or is_quiet()))
        with Timer() as timer:
            output = trainer.train()
    steps = int(output.global_step)
    seen = min(len(dataset), steps * rows * accumulation * max(1, args.world_size))
    record: dict[str, Any] = {
        "kind": kind,
        "config": asdict(config),
        "precision": resolve_precision(config.precision),
        "loss": type(loss).__name__,
        **job.train_data,
        "sampling": sampling.to_dict(),
        "rows": len(dataset),
        "steps": steps,
        "train_loss": output.training_loss,
        "train_seconds": round(timer.seconds, 3),
        "environment": environment(),
        **metadata,
    }
    if trainer.is_world_process_zero():
        if before_save is not None:
            before_save()
        with atomic_dir(job.output_dir, overwrite=job.overwrite, param="output_dir") as tmp:
            model.save(str(tmp))
            write_metadata(tmp, record)
    return TrainResult(
        output_dir=job.output_dir,
        kind=kind,
        examples=seen,
        steps=steps,
        seconds=timer.seconds,
        train_loss=output.training_loss,
        metadata=record,
    )
