"""Mining options and the run report."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from hardneg.cluster import Engine, resolve_engine
from hardneg.errors import ConfigError, FieldError, PathText, config_dataclass, revalidate
from hardneg.retrieval.encoders import EncoderBackend
from hardneg.retrieval.index import IndexKind
from hardneg.retrieval.retriever import Method

Sampling = Literal["top", "random"]
SAMPLING: tuple[str, ...] = ("top", "random")


def parse_range(text: str) -> tuple[int, int]:
    """``"A-B"`` -> (A, B): retrieval ranks A+1..B are candidates (``"10-100"`` skips the top 10)."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"expected A-B with integers, e.g. 10-100; got {text!r}", param="range")
    start, end = int(match.group(1)), int(match.group(2))
    if end <= start:
        raise ConfigError(f"B must be larger than A; got {text!r}", param="range")
    return start, end


# Annotated constraints keep each default a plain value (`dataclasses.fields` shows it, the CLI reads it).
AtLeastOne = Annotated[int, Field(ge=1)]
NotNegative = Annotated[float, Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


@config_dataclass
class MineConfig:
    """How to mine negatives. Ranks are 1-based positions in the retrieved list (positives included).

    Checked when made (pydantic): a bad value raises `ConfigError` naming the field."""

    method: Method = "bm25"
    model: PathText | None = None  # dense/hybrid: a sentence-transformers name or path; None = embedded MiniLM
    range_start: Annotated[int, Field(ge=0)] = 0  # skip ranks 1..range_start
    range_end: int = 100  # retrieve (and consider) ranks up to range_end
    negatives: AtLeastOne = 30
    sampling: Sampling = "top"
    seed: int = 42
    # drop candidates scoring above (1-R) x lowest positive score
    relative_margin: Annotated[float, Field(ge=0, lt=1)] | None = None
    absolute_margin: NotNegative | None = None  # drop candidates scoring above lowest positive score - M
    min_score: Finite | None = None  # drop candidates scoring below this (on the scale margins use)
    max_score: Finite | None = None  # drop candidates scoring above this
    # A sentence-transformers CrossEncoder folder: rescore each query's top `rescore_depth` retrieved documents
    # (default: range_end) and rank by its scores; ranges, margins, cuts and sampling then apply to that order
    # (hardneg.mining.rescore). Scored under ONNX Runtime on a CPU with `backend="auto"`, as for encoding.
    rescore: PathText | None = None
    rescore_depth: int | None = None
    rescore_max_length: Annotated[int, Field(ge=8)] | None = None  # the cross-encoder's token limit; None: its own
    min_positive_score: int = 1  # qrels label >= this makes a positive
    min_negatives: Annotated[int, Field(ge=0)] = 1  # instances with fewer negatives left are skipped
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_length: int | None = None
    passage_max_length: int | None = None
    use_title: bool = True
    save_scores: bool = False
    batch_size: AtLeastOne = 32  # the longest batch sets peak memory; 32 is also sentence-transformers' default
    # dense/hybrid: "auto" runs the model under ONNX Runtime on a CPU when onnxruntime is installed (no torch in
    # the process: about a quarter of the memory), else torch; "torch" / "onnx" force one (hardneg.retrieval.encoders).
    backend: EncoderBackend = "auto"
    # Dense index (dense/hybrid): exact "flat", or FAISS "ivf" / "hnsw" for millions of docs (hardneg.retrieval.index)
    index: IndexKind = "flat"
    # "ray": corpus and query encoding sharded over `workers` Ray actors (each `worker_gpus` GPUs, else one CPU),
    # into the same embedding cache; search on the driver (hardneg.retrieval.sharded). `ray_address`: the cluster.
    engine: Engine = "local"
    ray_address: str | None = None
    workers: AtLeastOne = 2
    worker_gpus: NotNegative = 0.0
    block_size: AtLeastOne = 1024  # queries per search block
    cache_dir: PathText | None = None
    use_cache: bool = True
    rrf_k: int = 60

    @field_validator("rescore")
    @classmethod
    def _rescore_names_a_folder(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a cross-encoder folder")
        return value

    @field_validator("min_positive_score")
    @classmethod
    def _positive_label(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1 (a zero label means judged non-relevant)")
        return value

    @model_validator(mode="after")
    def _check_together(self) -> MineConfig:
        if self.range_end <= self.range_start:
            raise FieldError("range_end", f"must be larger than range_start ({self.range_start}); got {self.range_end}")
        if self.min_negatives > self.negatives:
            raise FieldError(
                "min_negatives", f"must be between 0 and negatives ({self.negatives}); got {self.min_negatives}"
            )
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            raise FieldError("min_score", f"must not be above max_score ({self.max_score}); got {self.min_score}")
        if self.rescore is None and (self.rescore_depth is not None or self.rescore_max_length is not None):
            name = "rescore_depth" if self.rescore_depth is not None else "rescore_max_length"
            raise FieldError(name, "needs a cross-encoder to rescore with (rescore)")
        if self.rescore_depth is not None and self.rescore_depth < self.range_end:
            raise FieldError(
                "rescore_depth",
                f"must be at least range_end ({self.range_end}): ranks are positions in the rescored list; "
                f"got {self.rescore_depth}",
            )
        if self.index != "flat" and self.method == "bm25":
            raise FieldError("index", f"{self.index} is a dense index: use method dense or hybrid")
        resolve_engine(self.engine, self.ray_address)  # a ConfigError naming engine or ray_address
        return self

    def check(self) -> None:
        """Validate the current values again (`ConfigError` naming the field): for a config changed in place."""
        revalidate(self)

    @property
    def depth(self) -> int:
        """How many documents are retrieved per query: range_end, or rescore_depth when rescoring."""
        return self.rescore_depth if self.rescore and self.rescore_depth else self.range_end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MineReport:
    """What a mining run did. `removed` counts candidates (ranks within the range) each filter dropped, in the
    order they apply: exclusions (positive, self_id, duplicate, empty_text), margins, then the score cuts."""

    method: str = ""
    encoder: str = ""  # dense/hybrid: the backend that encoded, "onnx" or "torch"
    queries: int = 0
    instances: int = 0
    skipped: dict[str, int] = field(
        default_factory=lambda: {
            "no_query_text": 0,  # in the qrels, not in queries.jsonl
            "no_positive": 0,
            "positives_not_in_corpus": 0,
            "too_few_negatives": 0,
        }
    )
    candidates: int = 0
    removed: dict[str, int] = field(
        default_factory=lambda: {
            "positive": 0,
            "self_id": 0,
            "duplicate": 0,
            "empty_text": 0,
            "relative_margin": 0,
            "absolute_margin": 0,
            "max_score": 0,
            "min_score": 0,
        }
    )
    rescorer: str = ""  # with `rescore`: the backend that scored, "onnx" or "torch"
    rescored: int = 0  # (query, passage) pairs the cross-encoder scored
    not_sampled: int = 0
    positives_dropped: dict[str, int] = field(default_factory=lambda: {"not_in_corpus": 0, "empty_text": 0})
    negatives_min: int | None = None
    negatives_max: int | None = None
    negatives_total: int = 0
    output: str | None = None
    subset: str = ""
    split: str = ""
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    # `limit` / `sample`: which queries were mined, of how many (`hardneg.data.source.Selection.to_dict`)
    selection: dict[str, Any] | None = None

    def add_instance(self, n_negatives: int) -> None:
        self.instances += 1
        self.negatives_total += n_negatives
        self.negatives_min = n_negatives if self.negatives_min is None else min(self.negatives_min, n_negatives)
        self.negatives_max = n_negatives if self.negatives_max is None else max(self.negatives_max, n_negatives)

    def to_dict(self) -> dict[str, Any]:
        mean = self.negatives_total / self.instances if self.instances else 0.0
        return {
            "output": self.output,
            "subset": self.subset,
            "split": self.split,
            "method": self.method,
            "encoder": self.encoder,
            **({"rescorer": self.rescorer, "rescored": self.rescored} if self.rescorer else {}),
            "queries": self.queries,
            "selection": self.selection,
            "instances": self.instances,
            "skipped": dict(self.skipped),
            "negatives_per_instance": {
                "mean": round(mean, 3),
                "min": self.negatives_min or 0,
                "max": self.negatives_max or 0,
            },
            "candidates": self.candidates,
            "removed": dict(self.removed),
            "not_sampled": self.not_sampled,
            "positives_dropped": dict(self.positives_dropped),
            "seconds": round(self.seconds, 2),
            "config": self.config,
        }


def default_subset(folder: str | Path) -> str:
    return Path(folder).resolve().name


def mine_config(config: MineConfig | None = None, **options: Any) -> MineConfig:
    """`config` (default: `MineConfig()`) with `options` (MineConfig fields) replaced, checked (`replace` makes a new
    config, which validates)."""
    known = {f.name for f in fields(MineConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"unknown mining option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", param=unknown[0]
        )
    return replace(config or MineConfig(), **options)
