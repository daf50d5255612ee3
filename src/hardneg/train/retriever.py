"""Bi-encoder (dense retriever) fine-tuning with the sentence-transformers Trainer.

Loss: InfoNCE over (query, positive, negative_1..k) groups plus in-batch negatives, i.e. sentence-transformers'
MultipleNegativesRankingLoss (or its GradCache variant CachedMultipleNegativesRankingLoss for big batches on
little memory), with scale = 1 / temperature on cosine similarities.

The same call runs on CPU, one GPU, or several GPUs under `accelerate launch` / `torchrun`: the Trainer places the
model and shards the batches; nothing here picks a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hardneg.errors import ConfigError
from hardneg.models import minilm_path
from hardneg.train.common import ProgressCallback, TrainResult, fit_and_save, group_columns
from hardneg.train.data import build_examples, load_training_instances, training_data_identity


@dataclass
class RetrieverConfig:
    """Options of `train_retriever` (the CLI flags map one to one)."""

    base_model: str | None = None  # None: the embedded all-MiniLM-L6-v2; any HF or sentence-transformers path works
    negatives: int = 7  # hard negatives per group (the paper: 7)
    # The paper trains E5-base at temperature 0.01. MiniLM (all-MiniLM-L6-v2) was itself trained with
    # MultipleNegativesRankingLoss at scale 20, i.e. temperature 0.05; keeping its temperature avoids
    # re-shaping its similarity distribution in a short fine-tune. Pass 0.01 for E5-style training.
    temperature: float = 0.05
    positives: Literal["sample", "all"] = "sample"
    query_prefix: str = ""
    passage_prefix: str = ""
    max_length: int = 256
    lr: float = 2e-5
    epochs: int = 1
    batch_size: int = 32
    warmup: float = 0.1  # a ratio of the total steps when < 1, else a number of steps
    seed: int = 42
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    cached_loss: bool = False
    mini_batch_size: int = 32
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    pooling: str = "auto"  # auto: the model's own pooling; with --lora, last-token (EOS) pooling
    max_steps: int | None = None  # stop early (benchmarks, smoke tests)
    quiet: bool = False

    def check(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.batch_size < 1 or self.mini_batch_size < 1:
            raise ConfigError("batch size and mini-batch size must be >= 1")
        if self.max_length < 8:
            raise ConfigError(f"max length must be >= 8, got {self.max_length}")
        if self.pooling not in ("auto", "mean", "cls", "lasttoken"):
            raise ConfigError(f"pooling must be auto, mean, cls or lasttoken, got {self.pooling!r}")


def _load_model(config: RetrieverConfig) -> Any:
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the modules; 3.x-5.x only have the old path
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer  # type: ignore[no-redef]

    base = config.base_model or minilm_path()
    pooling = config.pooling
    if config.lora and pooling == "auto":
        pooling = "lasttoken"
    is_st_folder = (Path(base) / "modules.json").is_file()
    if pooling == "auto" and is_st_folder:
        model = SentenceTransformer(base)
    else:
        # A plain HF backbone (or a forced pooling): Transformer + pooling + L2 normalisation.
        transformer = Transformer(base, max_seq_length=config.max_length)
        tokenizer = transformer.tokenizer
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token  # decoders often ship without a pad token
        get_dim = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
        dim = get_dim()
        mode = "mean" if pooling == "auto" else pooling
        model = SentenceTransformer(modules=[transformer, Pooling(dim, pooling_mode=mode), Normalize()])
    model.max_seq_length = config.max_length
    if config.lora:
        try:
            from peft import LoraConfig, TaskType, get_peft_model
        except ImportError as exc:
            raise ConfigError("--lora needs peft: pip install 'hardneg[train]'") from exc
        # peft is applied to the backbone directly: transformers' own adapter integration demands a newer
        # peft than some package indexes carry, and get_peft_model works the same across versions.
        lora_config = LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            inference_mode=False,
        )
        _set_backbone(model[0], get_peft_model(model[0].auto_model, lora_config))
    return model


def _eos_suffix(model: Any, config: RetrieverConfig) -> str:
    """With last-token pooling the last token should be EOS; most decoder tokenizers do not append it."""
    if not config.lora and config.pooling != "lasttoken":
        return ""
    tokenizer = model.tokenizer
    return tokenizer.eos_token or ""


def _set_backbone(transformer: Any, backbone: Any) -> None:
    # sentence-transformers >= 6 exposes `auto_model` as a read-only view of `model`; earlier releases store it.
    if isinstance(getattr(type(transformer), "auto_model", None), property):
        transformer.model = backbone
    else:
        transformer.auto_model = backbone


def _merge_lora(model: Any) -> None:
    """Fold the LoRA weights into the backbone so the saved folder loads like any sentence-transformers model."""
    backbone = model[0].auto_model
    if hasattr(backbone, "merge_and_unload"):
        _set_backbone(model[0], backbone.merge_and_unload())


def train_retriever(
    data: Any,
    output_dir: str | Path,
    config: RetrieverConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune a bi-encoder on training instances and write it to `output_dir` atomically.

    `data`: instances, a `datasets.Dataset` with Tevatron columns, a training file or a `load_dataset` spec.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    try:  # sentence-transformers >= 6 path first, then the 3.x-5.x one
        from sentence_transformers.sentence_transformer.losses import (
            CachedMultipleNegativesRankingLoss,
            MultipleNegativesRankingLoss,
        )
    except ImportError:
        from sentence_transformers.losses import (  # type: ignore[no-redef]
            CachedMultipleNegativesRankingLoss,
            MultipleNegativesRankingLoss,
        )

    config = config or RetrieverConfig()
    config.check()
    output_dir = Path(output_dir)
    instances = load_training_instances(data)
    model = _load_model(config)
    suffix = _eos_suffix(model, config)
    per_epoch, stats = build_examples(
        instances,
        negatives=config.negatives,
        epochs=config.epochs,
        seed=config.seed,
        positives=config.positives,
        query_prefix=config.query_prefix,
        passage_prefix=config.passage_prefix,
        text_suffix=suffix,
    )
    dataset = Dataset.from_dict(group_columns(per_epoch, config.negatives))

    scale = 1.0 / config.temperature
    if config.cached_loss:
        loss = CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=config.mini_batch_size)
    else:
        loss = MultipleNegativesRankingLoss(model, scale=scale)

    def before_save() -> None:
        if config.lora:
            _merge_lora(model)
        # Stored as the model's prompts too, so sentence-transformers users get the same prefixes.
        model.prompts = {"query": config.query_prefix, "document": config.passage_prefix}

    return fit_and_save(
        kind="retriever",
        trainer_base=SentenceTransformerTrainer,
        args_class=SentenceTransformerTrainingArguments,
        model=model,
        dataset=dataset,
        loss=loss,
        config=config,
        train_data=training_data_identity(data, instances),
        output_dir=output_dir,
        sampling=stats,
        progress=progress,
        metadata={
            "base_model": config.base_model or "embedded all-MiniLM-L6-v2",
            "scale": scale,
            "text_suffix": suffix,
        },
        before_save=before_save,
    )
