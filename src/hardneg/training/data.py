"""Training examples from Tevatron-style instances, resampled every epoch.

Sampling rules (after Tevatron's training dataset, written in our own words):
- One positive per instance per epoch (`positives="sample"`, chosen with a per-instance, per-epoch seed), so
  relabelled positives (RLHN moves false negatives into the positives) act as alternative positives; or one
  example per positive (`positives="all"`).
- k negatives per example. With at least k negatives, each instance's negatives are shuffled once with its own
  seed and a window of k rotates through them epoch by epoch, so successive epochs see different negatives.
  With fewer than k (but at least one), k are drawn with replacement, as Tevatron does; those instances are
  counted. Instances without any negative cannot form a group and are skipped and counted (Tevatron would crash).

Per-epoch resampling is done by materialising all epochs up front: epoch e's examples are shuffled with
`seed + e` and the epochs are concatenated in order. The trainers then read the rows sequentially in a single
pass (`num_train_epochs=1`), so the learning-rate schedule spans all epochs and every epoch block uses fresh
samples. This is simple, deterministic for a given seed and correct under data-parallel sharding.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hardneg.data import records
from hardneg.data.records import Instance, Passage
from hardneg.data.source import as_source
from hardneg.errors import ConfigError, InputError
from hardneg.training.teacher import TEACHER_LOGIT, TEACHER_SCORE, teacher_values

PositiveMode = Literal["sample", "all"]


@dataclass
class SamplingStats:
    """What the sampler did, written into the model's metadata."""

    instances: int = 0
    examples_per_epoch: int = 0
    epochs: int = 0
    skipped_no_negatives: int = 0
    skipped_no_positives: int = 0
    padded_with_replacement: int = 0  # instances with fewer than k negatives (k drawn with replacement)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Example:
    """One training group: a query, one positive and k negatives (already formatted as model input text)."""

    query_id: str
    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    # With teacher scores (distillation): the teacher's value of the positive, then of each negative.
    scores: list[float] | None = None


def passage_text(passage: Passage, prefix: str = "") -> str:
    """Model input for a passage: the prefix, then title and text (`hardneg.data.records.passage_text`)."""
    return f"{prefix}{records.passage_text(passage, with_title=True).strip()}"


def _instance_seed(seed: int, query_id: str) -> int:
    # A stable per-instance seed (Python's hash() is salted per process, so it cannot be used).
    digest = hashlib.blake2b(f"{seed}\x00{query_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def pick_negatives(instance: Instance, k: int, epoch: int, seed: int) -> list[Passage]:
    """k negatives of `instance` for `epoch` (see the module docstring). Empty when it has none."""
    negatives = list(instance.negatives)
    if not negatives or k <= 0:
        return []
    base = _instance_seed(seed, instance.query_id)
    if len(negatives) < k:
        return random.Random(base + epoch).choices(negatives, k=k)
    random.Random(base).shuffle(negatives)
    offset = (epoch * k) % len(negatives)
    doubled = negatives + negatives
    return doubled[offset : offset + k]


def pick_positives(instance: Instance, mode: PositiveMode, epoch: int, seed: int) -> list[Passage]:
    if mode == "all":
        return list(instance.positives)
    if not instance.positives:
        return []
    rng = random.Random(_instance_seed(seed, instance.query_id) + 7919 * (epoch + 1))
    return [rng.choice(instance.positives)]


def load_training_instances(data: Any) -> list[Instance]:
    """Validated training instances from any `data` a stage accepts (instances, a Dataset, a file)."""
    source = as_source(data)
    source.validate()
    instances = list(source)
    if not instances:
        raise InputError(source.name, None, "-", "no training instances")
    return instances


def training_data_identity(data: Any, instances: Sequence[Instance]) -> dict[str, str]:
    """What the model metadata records about its training data: the file and its sha256, or for data in memory
    the sha256 of its rows (JSON, in order), so a model can be traced back to what it was trained on."""
    source = as_source(data) if isinstance(data, str | Path) else None
    if source is not None and source.kind == "path":
        return {"train_file": str(Path(source.data).resolve()), "train_sha256": file_sha256(source.data)}
    digest = hashlib.sha256()
    for instance in instances:
        digest.update(json.dumps(instance.to_row(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return {"train_file": "<in memory>", "train_sha256": digest.hexdigest()}


def build_examples(
    instances: Sequence[Instance],
    *,
    negatives: int,
    epochs: int,
    seed: int,
    positives: PositiveMode = "sample",
    query_prefix: str = "",
    passage_prefix: str = "",
    text_suffix: str = "",
    teacher_scores: bool = False,
) -> tuple[list[list[Example]], SamplingStats]:
    """Examples for each epoch (a list per epoch, already shuffled with `seed + epoch`) and sampling counts.

    `teacher_scores`: each example also carries the teacher's values of its positive and negatives
    (`hardneg.training.teacher.teacher_values`: the passages' `teacher_logit`, else `teacher_score`); a ConfigError
    naming `teacher` when an instance's passages have none.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if negatives < 0:
        raise ConfigError(f"negatives must be >= 0, got {negatives}")
    if positives not in ("sample", "all"):
        raise ConfigError(f"positives must be 'sample' or 'all', got {positives!r}")
    stats = SamplingStats(instances=len(instances), epochs=epochs)
    usable: list[Instance] = []
    for instance in instances:
        if not instance.positives:
            stats.skipped_no_positives += 1
        elif negatives > 0 and not instance.negatives:
            stats.skipped_no_negatives += 1
        else:
            usable.append(instance)
            if 0 < len(instance.negatives) < negatives:
                stats.padded_with_replacement += 1
    if not usable:
        raise ConfigError("no usable training instance (every instance lacks positives or negatives)")
    values: dict[str, dict[str, float]] = {}
    if teacher_scores:
        for instance in usable:
            found = teacher_values(instance)
            if found is None:
                raise ConfigError(
                    f"instance {instance.query_id!r} has passages without teacher scores ({TEACHER_LOGIT} or "
                    f"{TEACHER_SCORE}): name a teacher to score them, or score them first "
                    "(hardneg.training.teacher.score_instances)",
                    param="teacher",
                )
            values[instance.query_id] = found
    per_epoch: list[list[Example]] = []
    for epoch in range(epochs):
        examples: list[Example] = []
        for instance in usable:
            query = f"{query_prefix}{instance.query}{text_suffix}"
            picked = pick_negatives(instance, negatives, epoch, seed)
            negs = [passage_text(p, passage_prefix) + text_suffix for p in picked]
            for pos in pick_positives(instance, positives, epoch, seed):
                example = Example(instance.query_id, query, passage_text(pos, passage_prefix) + text_suffix, negs)
                if teacher_scores:
                    known = values[instance.query_id]
                    example.scores = [known[pos.docid], *(known[p.docid] for p in picked)]
                examples.append(example)
        random.Random(seed + epoch).shuffle(examples)
        per_epoch.append(examples)
    stats.examples_per_epoch = len(per_epoch[0])
    return per_epoch, stats


def file_sha256(path: str | Path) -> str:
    """Hash of the training file (a folder: of its files in name order), recorded in the model metadata."""
    path = Path(path)
    digest = hashlib.sha256()
    files: Iterable[Path] = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(functools.partial(handle.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


ProgressCallback = Callable[[int, int], None]
