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

from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from hardneg.errors import FieldError, config_dataclass
from hardneg.models import minilm_path
from hardneg.progress import announce
from hardneg.training.common import (
    AtLeastOne,
    ProgressCallback,
    TrainerConfig,
    TrainingJob,
    TrainResult,
    check_memory,
    fit_and_save,
    group_columns,
    micro_batches,
    pad_with_eos,
    release_instances,
    run_training,
)
from hardneg.training.memory import StepMemory, refuse, step_memory


@config_dataclass
class RerankerConfig(TrainerConfig):
    """Options of `train_reranker` (the CLI flags map one to one); the shared ones are `TrainerConfig`'s
    (`base_model` None: the embedded MiniLM with a new one-logit head)."""

    batch_size: AtLeastOne = 16  # rows: (query, passage) pairs for bce, whole groups for listwise
    # `mini_batch_size`: (query, passage) pairs per forward pass; a bigger batch is split into equal micro-batches
    # whose gradients are accumulated (exact for both losses, which average over independent rows).
    loss: Literal["bce", "listwise"] = "bce"

    @model_validator(mode="after")
    def _check_loss(self) -> RerankerConfig:
        if self.loss == "listwise" and self.negatives < 1:
            raise FieldError("negatives", "the listwise loss needs at least one negative per group")
        return self

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

    return GroupSoftmaxLoss(model, num_negatives=None, scale=1, activation_fn=None)


def train_reranker(
    data: Any,
    output_dir: str | Path,
    config: RerankerConfig | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune a cross-encoder on training instances and write it to `output_dir` atomically.

    Takes what `train_retriever` takes (`data`, `overwrite`, `progress`) and checks the same way: a step estimated
    not to fit in memory is refused before the first one (`check_step_memory`; `memory_check=False` skips it).
    """
    return run_training(
        _train_reranker, data, output_dir, config or RerankerConfig(), overwrite=overwrite, progress=progress
    )


def _train_reranker(job: TrainingJob, config: RerankerConfig) -> TrainResult:
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    per_epoch, stats = config.examples(job.instances)
    announce("loading the base model")
    model = CrossEncoder(config.base_model or minilm_path(), num_labels=1, max_length=config.max_length)
    if pad_with_eos(model.tokenizer):
        model.model.config.pad_token_id = model.tokenizer.eos_token_id

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
        rows = group_columns(per_epoch, config.negatives)
        loss = _group_softmax_loss(model)
    dataset = Dataset.from_dict(rows)
    del rows, per_epoch
    release_instances(job)
    check_memory(check_step_memory, config, model, model.model.config)

    return fit_and_save(
        kind="reranker",
        trainer_base=CrossEncoderTrainer,
        args_class=CrossEncoderTrainingArguments,
        model=model,
        dataset=dataset,
        loss=loss,
        config=config,
        job=job,
        sampling=stats,
        metadata={"base_model": config.base_model or "embedded all-MiniLM-L6-v2 (new head)"},
        micro_batch=config.micro_batch(),
    )
