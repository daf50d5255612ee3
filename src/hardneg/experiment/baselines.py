"""The published baselines of an experiment, done as published: TopK-PercPos and cross-encoder distillation.

- `topk_percpos` (NV-Retriever, Moreira et al. 2024): drop every negative whose score under a *teacher* is above
  `margin` (0.95) x the positive's score under the same teacher. The teacher is named in the config
  (`topk_percpos.teacher`: ``dense:`` the embedded MiniLM, ``dense:MODEL``, ``cross-encoder:DIR``, or
  ``cross-encoder:train``), and the positives and negatives of the training instances are scored with it
  (`hardneg.training.teacher`). ``teacher: mining`` reuses the mining scores instead (BM25 by default), which is
  what hardneg did before: not what the paper compares with.
- `ce_distill`: the retriever is trained on a cross-encoder teacher's scores of the positive and the hard
  negatives with MarginMSE (Hofstätter et al. 2020) or a KL divergence over each group (`ce_distill.loss`,
  `hardneg.training.retriever`), with the experiment's training options otherwise.

A teacher's scores are computed once per teacher and training data: one `teacher/...` step writes the training
rows with ``teacher_score`` (and a cross-encoder's ``teacher_logit``) on every passage, keyed like every step by its
config (the teacher spec) and the content of its inputs (the mined data; a cross-encoder folder's files), so
re-running, adding a seed or another baseline with the same teacher reuses them. No pretrained cross-encoder can be
downloaded offline, so ``cross-encoder:train`` trains one in the experiment from the mined data (a
`reranker/teacher` step, `hardneg train reranker` with the `reranker:` options).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError, InputError
from hardneg.experiment.config import MINING_TEACHER, TRAINED_TEACHER, ExperimentConfig
from hardneg.experiment.steps import MODEL_DIR, TRAIN_FILE, Step, StepContext, StepGraph, hash_json, tenths
from hardneg.training.reranker import RerankerConfig, train_reranker
from hardneg.training.teacher import TEACHER_SCORE, score_instances

MINING_SCORE = "score"


def topk_percpos(
    instances: Iterable[Instance], margin: float, *, key: str = TEACHER_SCORE, source: str = "<instances>"
) -> Iterator[tuple[Instance, int]]:
    """TopK-PercPos: drop negatives whose `key` score is above `margin` x the lowest positive's score.

    `key` is the passages' score field: ``teacher_score`` (`hardneg.training.teacher.score_instances`) or the
    mining ``score`` (mine with `save_scores`). For a negative positive score (cosine, a logit), margin x pos
    would be above pos: the sign-safe ``pos - |pos| x (1 - margin)`` is used, as the miner does.
    Yields (instance, negatives removed); an instance may be left without negatives.
    """
    for number, inst in enumerate(instances, start=1):
        try:
            positive = min(float(p.extra[key]) for p in inst.positives)
            scores = {n.docid: float(n.extra[key]) for n in inst.negatives}
        except (KeyError, TypeError, ValueError):
            hint = "mine with save_scores" if key == MINING_SCORE else "score the instances with a teacher first"
            raise InputError(source, number, key, f"no {key} on a passage: {hint} for topk_percpos") from None
        threshold = positive - abs(positive) * (1.0 - margin)
        kept = [n for n in inst.negatives if scores[n.docid] <= threshold]
        yield (
            Instance(inst.query_id, inst.query, inst.positives, kept, inst.subset, inst.extra),
            len(inst.negatives) - len(kept),
        )


# ----------------------------------------------------------------------------------------------- step bodies


def reranker_config(options: dict[str, Any]) -> RerankerConfig:
    """The teacher reranker's options (`reranker:`), checked."""
    fields = {f.name for f in dataclasses.fields(RerankerConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"reranker.{unknown[0]}: unknown reranker option (known: {', '.join(sorted(fields))})")
    config = RerankerConfig(**{"seed": 42, **options, "quiet": True})
    config.check()
    return config


def _reranker_step(options: dict[str, Any]) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:
        progress = functools.partial(tenths(ctx.progress), "train reranker")
        result = train_reranker(
            ctx.inputs["data"] / TRAIN_FILE, ctx.out / MODEL_DIR, reranker_config(options), progress=progress
        )
        summary = result.to_dict()
        summary.pop("output_dir", None)
        return summary

    return run


def _teacher_step(spec: str, options: dict[str, Any]) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:
        teacher = f"cross-encoder:{ctx.inputs['teacher'] / MODEL_DIR}" if spec == TRAINED_TEACHER else spec
        source = ctx.inputs["data"] / TRAIN_FILE
        scored = score_instances(
            read_instances(source),
            teacher,
            batch_size=int(options.get("batch_size") or 32),
            max_length=options.get("max_length"),
            backend=str(options.get("backend", "auto")),
            cache_dir=ctx.experiment_dir / "cache" / "embeddings",
            # A teacher trained here is exported here too, not into the shared ~/.cache/hardneg/onnx.
            onnx_cache_dir=ctx.experiment_dir / "cache" / "onnx" if spec == TRAINED_TEACHER else None,
            progress=tenths(ctx.progress),
        )
        pairs = sum(len(i.positives) + len(i.negatives) for i in scored)
        count = write_instances(ctx.out / TRAIN_FILE, scored)
        return {"instances": count, "teacher": spec, "pairs_scored": pairs}

    return run


def _topk_step(margin: float, key: str) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:
        source = ctx.inputs["data"] / TRAIN_FILE
        counts = {"instances_in": 0, "negatives_removed": 0, "dropped_no_negatives": 0}

        def rows() -> Any:
            for inst, removed in topk_percpos(read_instances(source), margin, key=key, source=str(source)):
                counts["instances_in"] += 1
                counts["negatives_removed"] += removed
                if not inst.negatives:
                    counts["dropped_no_negatives"] += 1
                    continue
                yield inst

        written = write_instances(ctx.out / TRAIN_FILE, rows())
        return {"instances": written, **counts, "margin": margin}

    return run


# ----------------------------------------------------------------------------------------------- the graph


def _slug(spec: str) -> str:
    """A readable step label for a teacher spec: its kind and the model folder's name."""
    kind, _, model = spec.partition(":")
    name = Path(model).name if model else ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{kind}-{name}" if name else kind).strip("-") or "teacher"


def _teacher_steps(graph: StepGraph, cfg: ExperimentConfig, data: str, spec: str, options: Mapping[str, Any]) -> str:
    """The step that scores the training data with `spec` (shared by the baselines naming the same teacher)."""
    inputs = {"data": data}
    external: dict[str, Path] = {}
    if spec == TRAINED_TEACHER:
        reranker_config(cfg.reranker)  # fail on a bad option before anything runs
        step_id = "reranker/teacher"
        if step_id not in graph.steps:
            graph.add(
                Step(
                    id=step_id,
                    kind="reranker",
                    config={"options": cfg.reranker},
                    run=_reranker_step(cfg.reranker),
                    outputs=(MODEL_DIR,),
                    inputs={"data": data},
                )
            )
        inputs["teacher"] = step_id
    elif spec.startswith("cross-encoder:"):
        external["teacher"] = Path(spec.partition(":")[2])
    scoring = {k: options[k] for k in ("batch_size", "max_length", "backend") if options.get(k) is not None}
    step_id = f"teacher/{_slug(spec)}" + (f"@{hash_json(scoring)[:8]}" if scoring else "")
    if step_id not in graph.steps:
        graph.add(
            Step(
                id=step_id,
                kind="teacher",
                config={"teacher": spec if spec != TRAINED_TEACHER else "trained", "options": scoring},
                run=_teacher_step(spec, scoring),
                outputs=(TRAIN_FILE,),
                inputs=inputs,
                external=external,
            )
        )
    return step_id


def add_baseline(graph: StepGraph, cfg: ExperimentConfig, name: str, data: str) -> tuple[str, dict[str, Any] | None]:
    """Add the steps of baseline `name` over the training data step `data`.

    Returns the step whose training rows the baseline trains on, and the training options that differ from the
    experiment's (`ce_distill`: its loss), or None.
    """
    if name == "topk_percpos":
        section = cfg.topk_percpos
        margin = float(section.get("margin", 0.95))
        spec = str(section.get("teacher", "dense:"))
        if spec == MINING_TEACHER:
            source, key = data, MINING_SCORE
        else:
            source, key = _teacher_steps(graph, cfg, data, spec, section), TEACHER_SCORE
        step = graph.add(
            Step(
                id=f"variant/{name}",
                kind="variant",
                config={"treatment": name, "verdicts": None, "relabel": {}, "margin": margin, "teacher": spec},
                run=_topk_step(margin, key),
                outputs=(TRAIN_FILE,),
                inputs={"data": source},
            )
        )
        return step.id, None
    if name == "ce_distill":
        distill = cfg.ce_distill
        spec = str(distill.get("teacher", TRAINED_TEACHER))
        loss = str(distill.get("loss", "margin_mse"))
        return _teacher_steps(graph, cfg, data, spec, distill), {**cfg.training, "loss": loss}
    raise ConfigError(f"unknown baseline {name!r}")
