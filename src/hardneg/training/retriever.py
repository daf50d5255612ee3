"""Bi-encoder (dense retriever) fine-tuning with the sentence-transformers Trainer.

Losses (`RetrieverConfig.loss`):
- ``infonce`` (default): InfoNCE over (query, positive, negative_1..k) groups plus in-batch negatives, i.e.
  by default sentence-transformers' CachedMultipleNegativesRankingLoss (GradCache: the batch is embedded without
  gradients, then back-propagated `mini_batch_size` texts at a time, so the activations held stay bounded
  whatever the batch size), or with `cached_loss=False` the plain MultipleNegativesRankingLoss (the same loss, one
  backward pass over the whole batch), with scale = 1 / temperature on cosine similarities. Before the first step
  the step's memory is estimated and a step that would not fit is refused with a ConfigError
  (`hardneg.training.memory`).
- ``margin_mse`` / ``kl_div``: distillation from a teacher's scores of the positive and the k hard negatives
  (sentence-transformers' MarginMSELoss, Hofstätter et al. 2020; DistillKLDivLoss over each group). The teacher
  (`teacher`: a CrossEncoder folder, ``cross-encoder:DIR`` or ``dense:[MODEL]``) scores every pair once before
  training (`hardneg.training.teacher`); without `teacher`, the passages' own ``teacher_logit`` /
  ``teacher_score`` are used (what `score_instances` writes, and what `hardneg experiment` caches). The student's
  score is cosine / temperature (20 x cosine at the default 0.05), the teacher's its raw logit, so both live on
  a logit scale: MarginMSE fits the student's margins pos - neg_i to the teacher's, KL the group softmaxes.

The same call runs on CPU, one GPU, or several GPUs under `accelerate launch` / `torchrun`: the Trainer places the
model and shards the batches; nothing here picks a device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from hardneg.errors import ConfigError, FieldError, PathText, config_dataclass
from hardneg.models import minilm_path
from hardneg.progress import announce
from hardneg.retrieval.encoders import EncoderBackend
from hardneg.training.common import (
    AtLeastOne,
    ProgressCallback,
    TrainerConfig,
    TrainingJob,
    TrainResult,
    check_memory,
    fit_and_save,
    group_columns,
    pad_with_eos,
    release_instances,
    run_training,
)
from hardneg.training.memory import StepMemory, refuse, step_memory
from hardneg.training.teacher import TEACHER_KINDS, Teacher, parse_teacher, score_instances

RETRIEVER_LOSSES: tuple[str, ...] = ("infonce", "margin_mse", "kl_div")


@config_dataclass
class RetrieverConfig(TrainerConfig):
    """Options of `train_retriever` (the CLI flags map one to one); the shared ones are `TrainerConfig`'s."""

    # The paper trains E5-base at temperature 0.01. MiniLM (all-MiniLM-L6-v2) was itself trained with
    # MultipleNegativesRankingLoss at scale 20, i.e. temperature 0.05; keeping its temperature avoids
    # re-shaping its similarity distribution in a short fine-tune. Pass 0.01 for E5-style training.
    temperature: Annotated[float, Field(gt=0)] = 0.05
    batch_size: AtLeastOne = 32  # groups per device per step
    # Gradient caching (CachedMultipleNegativesRankingLoss): the batch is embedded without gradients, then
    # back-propagated `mini_batch_size` texts at a time, so activations do not grow with the batch (one step at batch
    # 32 without it holds 288 texts' activations: ~20 GB on MiniLM at 256 tokens). None: on for InfoNCE (the
    # distillation losses have no cached form; True with one of them is refused).
    cached_loss: bool | None = None
    lora: bool = False
    lora_r: AtLeastOne = 16
    lora_alpha: AtLeastOne = 32
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    # auto: the model's own pooling; with --lora, last-token (EOS) pooling
    pooling: Literal["auto", "mean", "cls", "lasttoken"] = "auto"
    loss: Literal["infonce", "margin_mse", "kl_div"] = "infonce"
    # Distillation (margin_mse, kl_div): a CrossEncoder folder or a teacher spec (hardneg.training.teacher); None:
    # the passages' own teacher scores.
    teacher: PathText | None = None
    teacher_max_length: int | None = None  # the teacher's token limit (None: its own)
    teacher_backend: EncoderBackend = "auto"  # auto | torch | onnx, as `hardneg mine --backend`

    @property
    def uses_cached_loss(self) -> bool:
        return self.cached_loss is not False and self.loss == "infonce"

    @model_validator(mode="after")
    def _check_loss(self) -> RetrieverConfig:
        if self.loss == "infonce":
            if self.teacher is not None:
                raise FieldError(
                    "teacher", "a teacher is used by the distillation losses only (loss margin_mse or kl_div)"
                )
            return self
        if self.cached_loss:
            raise FieldError("cached_loss", f"the cached loss is InfoNCE's; it cannot be combined with {self.loss}")
        if self.negatives < 1:
            raise FieldError("negatives", f"{self.loss} needs at least one hard negative per group")
        if self.teacher is not None:
            teacher_spec(self.teacher)  # a ConfigError naming teacher
        return self


def teacher_spec(value: str) -> Teacher:
    """A distillation teacher: ``cross-encoder:DIR``, ``dense:[MODEL]``, or a bare CrossEncoder folder."""
    text = str(value).strip()
    if text.startswith(tuple(f"{kind}:" for kind in TEACHER_KINDS)):
        return parse_teacher(text)
    if not text:
        raise ConfigError("expected a CrossEncoder folder, cross-encoder:DIR or dense:[MODEL]", param="teacher")
    return Teacher("cross-encoder", text)


def check_step_memory(
    config: RetrieverConfig,
    model_config: Any,
    trainable_parameters: int,
    *,
    available: int | None,
    half_precision: bool = False,
    on_gpu: bool = False,
) -> StepMemory | None:
    """Refuse (ConfigError) a configuration whose training step is estimated not to fit in `available` bytes.

    Returns the estimate (None when the model's shape or the available memory is unknown). The parameter named
    is the one whose change makes it fit: `mini_batch_size` with the cached loss, `cached_loss` without it
    (InfoNCE), `batch_size` for the distillation losses, `max_length` when even one text does not fit.
    See `hardneg.training.memory` for what the estimate counts.
    """
    group = 2 + config.negatives  # query, positive, negatives
    cached = config.uses_cached_loss
    texts = min(config.mini_batch_size, config.batch_size) if cached else config.batch_size * group

    def estimate(count: int) -> StepMemory | None:
        return step_memory(
            model_config, texts=count, tokens_per_text=config.max_length, trainable_parameters=trainable_parameters,
            half_precision=half_precision, on_gpu=on_gpu,
        )  # fmt: skip

    need = estimate(texts)
    if need is None or available is None or need.total <= available:
        return need
    fits = need.texts_that_fit(available)
    if fits < 1:
        raise refuse(need, available, param="max_length", what=f"{config.max_length} tokens per text",
                     fix="not even one text of that length fits: lower it")  # fmt: skip
    if cached:
        raise refuse(need, available, param="mini_batch_size", what=f"mini-batches of {texts} texts",
                     fix=f"a mini-batch size of at most {fits} fits")  # fmt: skip
    if config.loss == "infonce":
        mini = min(config.mini_batch_size, fits, config.batch_size)
        raise refuse(need, available, param="cached_loss",
                     what=f"without gradient caching, all {texts} texts of a batch ({config.batch_size} groups)",
                     fix=f"turn the cached loss on (mini-batches of {mini} texts fit)")  # fmt: skip
    if fits >= group:
        raise refuse(need, available, param="batch_size", what=f"batches of {config.batch_size} groups",
                     fix=f"a batch size of at most {fits // group} fits")  # fmt: skip
    raise refuse(need, available, param="max_length", what=f"{config.max_length} tokens per text",
                 fix=f"not even one group of {group} texts fits: lower it")  # fmt: skip


def _student_similarity(scale: float) -> Any:
    """cosine x scale for each (query, document) pair: the student's score on a logit scale."""
    from sentence_transformers.util import pairwise_cos_sim

    def scaled_cos_sim(a: Any, b: Any) -> Any:
        return pairwise_cos_sim(a, b) * scale

    return scaled_cos_sim


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
        pad_with_eos(transformer.tokenizer)
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
        _set_backbone(model[0], get_peft_model(model[0].auto_model, lora_config))  # type: ignore[arg-type]
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
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune a bi-encoder on training instances and write it to `output_dir` atomically.

    `data`: instances, a `datasets.Dataset` with Tevatron columns, a training file or a `load_dataset` spec.
    A ConfigError before the first step when one step is estimated not to fit in memory (`check_step_memory`;
    `memory_check=False` skips the check). An existing `output_dir` is refused before training unless `overwrite`
    (and then only a folder hardneg wrote; it is replaced once the new model is complete).
    """
    return run_training(
        _train_retriever, data, output_dir, config or RetrieverConfig(), overwrite=overwrite, progress=progress
    )


def _train_retriever(job: TrainingJob, config: RetrieverConfig) -> TrainResult:
    announce("loading the base model")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    try:  # sentence-transformers >= 6 path first, then the 3.x-5.x one
        from sentence_transformers.sentence_transformer.losses import (
            CachedMultipleNegativesRankingLoss,
            DistillKLDivLoss,
            MarginMSELoss,
            MultipleNegativesRankingLoss,
        )
    except ImportError:
        from sentence_transformers.losses import (  # type: ignore[no-redef]
            CachedMultipleNegativesRankingLoss,
            DistillKLDivLoss,
            MarginMSELoss,
            MultipleNegativesRankingLoss,
        )

    instances = job.instances
    distill = config.loss != "infonce"
    teacher_name = "passage teacher scores"
    if distill and config.teacher is not None:
        teacher = teacher_spec(config.teacher)
        teacher_name = teacher.spec
        instances = score_instances(
            instances, teacher, backend=config.teacher_backend, max_length=config.teacher_max_length,
            query_prefix=config.query_prefix, passage_prefix=config.passage_prefix,
        )  # fmt: skip
    model = _load_model(config)
    suffix = _eos_suffix(model, config)
    per_epoch, stats = config.examples(instances, text_suffix=suffix, teacher_scores=distill)
    dataset = Dataset.from_dict(group_columns(per_epoch, config.negatives, label=distill))
    del instances, per_epoch
    release_instances(job)
    check_memory(check_step_memory, config, model, model[0].auto_model.config)

    scale = 1.0 / config.temperature
    loss: Any
    if config.loss == "margin_mse":
        loss = MarginMSELoss(model, similarity_fct=_student_similarity(scale))
    elif config.loss == "kl_div":
        loss = DistillKLDivLoss(model, similarity_fct=_student_similarity(scale), temperature=1.0)
    elif config.uses_cached_loss:
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
        job=job,
        sampling=stats,
        metadata={
            "base_model": config.base_model or "embedded all-MiniLM-L6-v2",
            "scale": scale,
            "text_suffix": suffix,
            **({"teacher": teacher_name} if distill else {}),
        },
        before_save=before_save,
    )
