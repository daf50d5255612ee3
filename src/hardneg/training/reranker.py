"""Cross-encoder reranker fine-tuning with sentence-transformers' CrossEncoderTrainer.

Losses:
- `bce`: binary cross-entropy on (query, passage) pairs, 1 for the positive, 0 for each hard negative, with
  `pos_weight = k` so one positive weighs as much as its k negatives.
- `listwise`: softmax cross-entropy over each group (positive first, then its k hard negatives), the
  "localized contrastive estimation" loss used for Tevatron-style rerankers.

A step of `batch_size` rows runs as equal micro-batches of at most `mini_batch_size` pairs with accumulated
gradients, and is refused before it starts when its memory is estimated not to fit (`hardneg.training.memory`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hardneg.errors import ConfigError
from hardneg.models import minilm_path
from hardneg.progress import announce
from hardneg.training.common import (
    ProgressCallback,
    TrainResult,
    check_model_folder,
    fit_and_save,
    group_columns,
    micro_batches,
    quiet_scope,
    resolve_precision,
)
from hardneg.training.data import build_examples, load_training_instances, training_data_identity
from hardneg.training.memory import StepMemory, available_memory, refuse, step_memory


@dataclass
class RerankerConfig:
    """Options of `train_reranker` (the CLI flags map one to one)."""

    base_model: str | None = None  # None: the embedded MiniLM with a new one-logit head
    loss: Literal["bce", "listwise"] = "bce"
    negatives: int = 7
    positives: Literal["sample", "all"] = "sample"
    query_prefix: str = ""
    passage_prefix: str = ""
    max_length: int = 256
    lr: float = 2e-5
    epochs: int = 1
    batch_size: int = 16  # rows: (query, passage) pairs for bce, whole groups for listwise
    # (query, passage) pairs per forward pass: a bigger batch is split into equal micro-batches whose gradients
    # are accumulated (exact for both losses, which average over independent rows), so memory stays bounded.
    mini_batch_size: int = 8  # measured: 1.9 GB peak RSS on MiniLM at 256 tokens, whatever the batch size
    memory_check: bool = True  # refuse, before the first step, a step estimated not to fit (hardneg.training.memory)
    warmup: float = 0.1
    seed: int = 42
    precision: str = "auto"
    max_steps: int | None = None
    quiet: bool = False

    def check(self) -> None:
        if self.loss not in ("bce", "listwise"):
            raise ConfigError(f"loss must be bce or listwise, got {self.loss!r}")
        if self.batch_size < 1:
            raise ConfigError("batch size must be >= 1", param="batch_size")
        if self.mini_batch_size < 1:
            raise ConfigError("mini-batch size must be >= 1", param="mini_batch_size")
        if self.max_length < 8:
            raise ConfigError(f"max length must be >= 8, got {self.max_length}")
        if self.loss == "listwise" and self.negatives < 1:
            raise ConfigError("the listwise loss needs at least one negative per group")

    @property
    def pairs_per_row(self) -> int:
        return 1 + self.negatives if self.loss == "listwise" else 1

    def micro_batch(self) -> tuple[int, int]:
        """(rows per forward pass, passes per step): at most `mini_batch_size` pairs per pass where a row allows."""
        return micro_batches(self.batch_size, max(1, self.mini_batch_size // self.pairs_per_row))


def check_step_memory(
    config: RerankerConfig,
    model_config: Any,
    trainable_parameters: int,
    *,
    available: int | None,
    half_precision: bool = False,
    on_gpu: bool = False,
) -> StepMemory | None:
    """Refuse (ConfigError naming `mini_batch_size`, or `max_length`) a step estimated not to fit in `available`
    bytes; returns the estimate (None when unknown). See `hardneg.training.memory`."""
    rows, _passes = config.micro_batch()
    pairs = rows * config.pairs_per_row
    need = step_memory(
        model_config, texts=pairs, tokens_per_text=config.max_length, trainable_parameters=trainable_parameters,
        half_precision=half_precision, on_gpu=on_gpu,
    )  # fmt: skip
    if need is None or available is None or need.total <= available:
        return need
    fits = need.texts_that_fit(available)
    if fits < config.pairs_per_row:
        raise refuse(need, available, param="max_length", what=f"{config.max_length} tokens per pair",
                     fix=f"not even {config.pairs_per_row} pair(s) of that length fit: lower it")  # fmt: skip
    raise refuse(need, available, param="mini_batch_size", what=f"forward passes of {pairs} pairs",
                 fix=f"a mini-batch size of at most {fits} pairs fits")  # fmt: skip


def _group_softmax_loss(model: Any) -> Any:
    """Softmax cross-entropy over (positive, hard negatives) only.

    sentence-transformers' cross-encoder MultipleNegativesRankingLoss computes exactly this over its columns but
    always adds random in-batch negatives (num_negatives=0 is rejected by torch.multinomial); the subclass turns
    those off, leaving the group loss with raw logits (no sigmoid, scale 1).
    """
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    class GroupSoftmaxLoss(MultipleNegativesRankingLoss):
        def get_in_batch_negatives(self, anchors: list[str], candidates: list[list[str]]) -> Any:
            return iter(())

    return GroupSoftmaxLoss(model, num_negatives=None, scale=1.0, activation_fn=None)


def train_reranker(
    data: Any,
    output_dir: str | Path,
    config: RerankerConfig | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune a cross-encoder on training instances and write it to `output_dir` atomically.

    `data`: instances, a `datasets.Dataset` with Tevatron columns, a training file or a `load_dataset` spec.
    A ConfigError before the first step when one step is estimated not to fit in memory (`check_step_memory`;
    `memory_check=False` skips the check). An existing `output_dir` is refused before training unless `overwrite`
    (and then only a folder hardneg wrote; it is replaced once the new model is complete).
    """
    check_model_folder(output_dir, overwrite)
    config = config or RerankerConfig()
    config.check()
    with quiet_scope(config.quiet):
        return _train_reranker(data, Path(output_dir), config, progress, overwrite)


def _train_reranker(
    data: Any, output_dir: Path, config: RerankerConfig, progress: ProgressCallback | None, overwrite: bool
) -> Any:
    instances = load_training_instances(data)  # bad input stops here, before torch is imported
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    per_epoch, stats = build_examples(
        instances,
        negatives=config.negatives,
        epochs=config.epochs,
        seed=config.seed,
        positives=config.positives,
        query_prefix=config.query_prefix,
        passage_prefix=config.passage_prefix,
    )
    announce("loading the base model")
    model = CrossEncoder(config.base_model or minilm_path(), num_labels=1, max_length=config.max_length)
    tokenizer = model.tokenizer
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        model.model.config.pad_token_id = tokenizer.eos_token_id

    if config.loss == "bce":
        rows: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
        for examples in per_epoch:
            for example in examples:
                for text, label in [(example.positive, 1.0)] + [(n, 0.0) for n in example.negatives]:
                    rows["query"].append(example.query)
                    rows["passage"].append(text)
                    rows["label"].append(label)
        pos_weight = torch.tensor(float(max(1, config.negatives)))
        loss = BinaryCrossEntropyLoss(model, pos_weight=pos_weight)
    else:
        rows = group_columns(per_epoch, config.negatives)  # type: ignore[assignment]
        loss = _group_softmax_loss(model)
    dataset = Dataset.from_dict(rows)
    if config.memory_check:
        on_gpu = torch.cuda.is_available()
        check_step_memory(
            config, model.model.config, sum(p.numel() for p in model.parameters() if p.requires_grad),
            available=available_memory(on_gpu=on_gpu), half_precision=resolve_precision(config.precision) != "fp32",
            on_gpu=on_gpu,
        )  # fmt: skip

    return fit_and_save(
        kind="reranker",
        trainer_base=CrossEncoderTrainer,
        args_class=CrossEncoderTrainingArguments,
        model=model,
        dataset=dataset,
        loss=loss,
        config=config,
        train_data=training_data_identity(data, instances),
        output_dir=output_dir,
        sampling=stats,
        progress=progress,
        metadata={"base_model": config.base_model or "embedded all-MiniLM-L6-v2 (new head)"},
        micro_batch=config.micro_batch(),
        overwrite=overwrite,
    )
