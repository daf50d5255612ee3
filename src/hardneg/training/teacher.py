"""Teacher scores of training instances: every (query, positive) and (query, negative) pair scored by a model.

Used by the published baselines (`hardneg.experiment.baselines`): TopK-PercPos drops negatives scoring above a
share of the positive's score under a teacher, and cross-encoder distillation (`RetrieverConfig(loss=
"margin_mse" | "kl_div")`) trains a retriever on a cross-encoder's scores of the positive and the hard negatives.

Teachers are named by a spec (`parse_teacher`):

- ``dense:`` (or no spec): the embedded MiniLM; ``dense:MODEL``: any sentence-transformers bi-encoder. The score
  is the cosine of the query's and the passage's embeddings (cached, `hardneg.retrieval.embed`).
- ``cross-encoder:DIR``: a sentence-transformers CrossEncoder folder (`hardneg train reranker` writes one). The
  score is the model's activated output (sigmoid: `CrossEncoder.predict`'s default), and the raw logit is kept
  too: distillation reads the logit (`TEACHER_LOGIT`), margins the score (`TEACHER_SCORE`).

`score_instances` returns copies of the instances with the scores in each passage's `extra`; on either kind of
teacher ONNX Runtime is used on a CPU where the model allows it (`backend="auto"`), as for mining.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hardneg.data.records import Instance, Passage, passage_text
from hardneg.errors import ConfigError
from hardneg.progress import StageProgress
from hardneg.retrieval.cross_encoder import load_cross_encoder, score_pairs
from hardneg.retrieval.embed import encode_texts
from hardneg.retrieval.encoders import check_backend, load_encoder

TeacherKind = Literal["dense", "cross-encoder"]
TEACHER_KINDS: tuple[str, ...] = ("dense", "cross-encoder")
TEACHER_SCORE = "teacher_score"
TEACHER_LOGIT = "teacher_logit"


@dataclass(frozen=True)
class Teacher:
    """A named teacher: ``kind`` and ``model`` (None: the embedded MiniLM, for a dense teacher)."""

    kind: TeacherKind
    model: str | None = None

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.model or ''}"


def parse_teacher(spec: str | Teacher | None, *, param: str = "teacher") -> Teacher:
    """``dense:[MODEL]`` or ``cross-encoder:DIR`` (None or ``""``: ``dense:``, the embedded MiniLM)."""
    if isinstance(spec, Teacher):
        return spec
    if spec is None or not str(spec).strip():
        return Teacher("dense")
    kind, sep, name = str(spec).strip().partition(":")
    if not sep or kind not in TEACHER_KINDS:
        raise ConfigError(f"expected dense:[MODEL] or cross-encoder:DIR; got {spec!r}", param=param)
    model = name.strip() or None
    if kind == "cross-encoder" and model is None:
        raise ConfigError("a cross-encoder teacher needs its folder: cross-encoder:DIR", param=param)
    return Teacher(kind, model)  # type: ignore[arg-type]


def _with_extra(passage: Passage, values: dict[str, float]) -> Passage:
    return Passage(passage.docid, passage.text, passage.title, {**passage.extra, **values})


def score_instances(
    instances: Iterable[Instance],
    teacher: str | Teacher | None,
    *,
    batch_size: int = 32,
    backend: str = "auto",
    max_length: int | None = None,
    query_prefix: str = "",
    passage_prefix: str = "",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    onnx_cache_dir: str | Path | None = None,
    progress: StageProgress | None = None,
    param: str = "teacher",
) -> list[Instance]:
    """Copies of `instances` whose passages carry the teacher's score of (query, passage) in `extra`.

    Every positive and negative gets ``teacher_score`` (dense: cosine; cross-encoder: its activated score) and,
    for a cross-encoder, ``teacher_logit``. `query_prefix` / `passage_prefix` apply to a dense teacher (a
    cross-encoder brings its own from its training metadata); `max_length` caps the teacher's tokens.
    `cache_dir` / `use_cache`: the embedding cache of a dense teacher; `onnx_cache_dir`: where a cross-encoder's
    ONNX export is kept (default ``<cache>/onnx``). `progress("teacher", done, total)` counts pairs.
    """
    check_backend(backend)
    chosen = parse_teacher(teacher, param=param)
    items = list(instances)
    if chosen.kind == "dense":
        return _dense_scores(
            items, chosen, batch_size=batch_size, backend=backend, max_length=max_length, query_prefix=query_prefix,
            passage_prefix=passage_prefix, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
        )  # fmt: skip
    assert chosen.model is not None
    scorer = load_cross_encoder(
        chosen.model, backend=backend, max_length=max_length, cache_dir=onnx_cache_dir, param=param
    )
    pairs = [
        (inst.query, passage_text(p, with_title=True)) for inst in items for p in (*inst.positives, *inst.negatives)
    ]
    logits = score_pairs(
        scorer,
        pairs,
        batch_size=batch_size,
        progress=(lambda n: progress("teacher", n, len(pairs))) if progress else None,
    )
    scores = scorer.activate(logits)
    out: list[Instance] = []
    at = 0

    def take(passages: list[Passage]) -> list[Passage]:
        nonlocal at
        scored = [
            _with_extra(p, {TEACHER_SCORE: float(scores[at + i]), TEACHER_LOGIT: float(logits[at + i])})
            for i, p in enumerate(passages)
        ]
        at += len(passages)
        return scored

    for inst in items:
        positives = take(inst.positives)
        negatives = take(inst.negatives)
        out.append(Instance(inst.query_id, inst.query, positives, negatives, inst.subset, dict(inst.extra)))
    return out


def _dense_scores(
    items: list[Instance],
    teacher: Teacher,
    *,
    batch_size: int,
    backend: str,
    max_length: int | None,
    query_prefix: str,
    passage_prefix: str,
    cache_dir: str | Path | None,
    use_cache: bool,
    progress: StageProgress | None,
) -> list[Instance]:
    model = load_encoder(teacher.model, backend=backend)
    queries = list(dict.fromkeys(inst.query for inst in items))
    texts = list(
        dict.fromkeys(passage_text(p, with_title=True) for inst in items for p in (*inst.positives, *inst.negatives))
    )
    options: dict[str, Any] = {
        "max_length": max_length, "batch_size": batch_size, "cache_dir": cache_dir, "use_cache": use_cache,
        "progress": progress,
    }  # fmt: skip
    query_emb = encode_texts(model, queries, prefix=query_prefix, stage="teacher queries", **options)
    text_emb = encode_texts(model, texts, prefix=passage_prefix, stage="teacher passages", **options)
    query_row = {q: i for i, q in enumerate(queries)}
    text_row = {t: i for i, t in enumerate(texts)}

    def scored(qrow: np.ndarray, passages: list[Passage]) -> list[Passage]:
        rows = [text_row[passage_text(p, with_title=True)] for p in passages]
        values = (text_emb[rows] @ qrow).tolist() if rows else []
        return [_with_extra(p, {TEACHER_SCORE: float(v)}) for p, v in zip(passages, values, strict=True)]

    out = []
    for inst in items:
        qrow = query_emb[query_row[inst.query]]
        out.append(
            Instance(
                inst.query_id, inst.query, scored(qrow, inst.positives), scored(qrow, inst.negatives), inst.subset,
                dict(inst.extra),
            )
        )  # fmt: skip
    return out


def teacher_values(instance: Instance, *, key: str | None = None) -> dict[str, float] | None:
    """docid -> the teacher value distillation trains on (`TEACHER_LOGIT` where every passage has one, else
    `TEACHER_SCORE`), or None when a passage has neither. `key` forces one."""
    passages = [*instance.positives, *instance.negatives]
    keys = [key] if key else [TEACHER_LOGIT, TEACHER_SCORE]
    for name in keys:
        try:
            return {p.docid: float(p.extra[name]) for p in passages}
        except (KeyError, TypeError, ValueError):
            continue
    return None
