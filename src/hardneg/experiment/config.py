"""The experiment config: one YAML file from training data to a results table.

```yaml
name: scifact-rlhn                 # optional, default: the file's stem
output: runs/scifact-rlhn          # experiment folder (relative paths are relative to this file)
seeds: [0]                         # one model per variant and seed
engine: local                      # or ray: mining and judging on Ray (RAY_ADDRESS, ray_address:, else a local
                                   # Ray); the results, and so every cached step, are the same on both
train:                             # training sources; each becomes one `subset`
  - name: scifact
    beir: ../shared/data/scifact   # a BEIR folder to mine from ...
    split: train
    max_queries: 200               # optional: the first N queries (sorted ids) only
  # - name: fiqa
  #   file: fiqa.jsonl.gz          # ... or a ready Tevatron file (mining is skipped)
mine: {method: bm25, negatives: 20}  # options of `hardneg.mine` (BEIR sources only)
judge: {config: cascade.yaml}      # a cascade YAML (`hardneg judge`), or inline `stages: [...]`
variants: [default, remove, hn_remove, rlhn, topk_percpos, ce_distill]
verdicts: [stage1, cascade]        # relabel from stage 1's verdicts alone and from the whole cascade
relabel: {}                        # options of `hardneg.relabeling.RelabelOptions`
topk_percpos:                      # NV-Retriever: drop negatives scoring above margin x the positive's score ...
  margin: 0.95
  teacher: "dense:"                # ... under this teacher: dense:[MODEL] (default: the embedded MiniLM),
                                   # cross-encoder:DIR, cross-encoder:train, or mining (the mining scores)
ce_distill:                        # train the retriever on a cross-encoder's scores (MarginMSE or KL)
  teacher: cross-encoder:train     # cross-encoder:DIR, or cross-encoder:train (trained here, `reranker:`)
  loss: margin_mse                 # or kl_div
reranker: {epochs: 1, negatives: 7}  # `hardneg train reranker` options of a teacher trained here
training: {epochs: 1, batch_size: 16, max_length: 128}   # options of `hardneg.train`
evaluate:                          # test sets
  - name: scifact
    beir: ../shared/data/scifact
    split: test
    max_queries: 100               # optional
evaluation: {metric: ndcg@10, alpha: 0.05}
prune: {threshold: 0.005}          # `hardneg prune` only
```

Every error names the config file, the line and the dotted field (`variants[2]`, `evaluate[0].beir`). The file is
validated by pydantic (`ExperimentConfig` and the models and typed mappings of its sections); relative paths are
read against the config's folder (the validation context).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict  # pydantic validates typing.TypedDict only from Python 3.12

from hardneg.cluster import Engine, resolve_engine
from hardneg.errors import ConfigError, FieldError, InputError, Location, Problem, validation_problems
from hardneg.retrieval.encoders import EncoderBackend
from hardneg.training.teacher import parse_teacher

TREATMENTS = ("default", "remove", "hn_remove", "rlhn")
BASELINES = ("topk_percpos", "ce_distill")
# A baseline's teacher cross-encoder trained by the experiment itself, from the mined data (`reranker:` options).
TRAINED_TEACHER = "cross-encoder:train"
# TopK-PercPos on the scores mining saved (what hardneg did before teachers could be named).
MINING_TEACHER = "mining"
DistillLoss = Literal["margin_mse", "kl_div"]
DISTILL_LOSSES = ("margin_mse", "kl_div")
VARIANT_NAMES = TREATMENTS + BASELINES
VERDICT_SOURCES = ("stage1", "cascade")
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Positive = Annotated[StrictInt, Field(ge=1)]


def _config_path(value: Any, info: ValidationInfo, *, folder: bool) -> Path:
    """A path of the config, relative to the config's folder (the validation context's `folder`), that exists."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a path")
    path = Path(value).expanduser()
    base = (info.context or {}).get("folder")
    if not path.is_absolute() and base is not None:
        path = (base / path).resolve()
    if not path.exists():
        raise ValueError(f"no such {'folder' if folder else 'file'}: {path}")
    if folder and not path.is_dir():
        raise ValueError(f"not a folder: {path}")
    return path


class DataSource(BaseModel):
    """A training source (one subset): a BEIR folder to mine from, or a ready Tevatron file."""

    model_config = ConfigDict(extra="forbid")
    takes_file: ClassVar[bool] = True

    name: Name
    beir: Path | None = None
    file: Path | None = None
    split: Annotated[str, StringConstraints(min_length=1)] = "train"
    max_queries: Positive | None = None  # the first N queries (sorted ids) only

    @field_validator("beir", mode="before")
    @classmethod
    def _beir_folder(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else _config_path(value, info, folder=True)

    @field_validator("file", mode="before")
    @classmethod
    def _ready_file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else _config_path(value, info, folder=False)

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        if self.file is not None and not self.takes_file:
            raise FieldError("file", "test sets must be BEIR folders (`beir:`)")
        if (self.beir is None) == (self.file is None):
            what = "`beir` (a BEIR folder) or `file` (a Tevatron file)" if self.takes_file else "`beir` (a BEIR folder)"
            raise ValueError(f"dataset {self.name!r}: give exactly one of {what}")
        if self.beir is not None and not (qrels := self.beir / "qrels" / f"{self.split}.tsv").is_file():
            raise FieldError("split", f"no qrels for split {self.split!r}: {qrels} does not exist")
        return self


class TestSet(DataSource):
    """A test set: a BEIR folder (its `test` split unless `split` says otherwise)."""

    __test__ = False  # not a pytest class
    takes_file: ClassVar[bool] = False

    split: Annotated[str, StringConstraints(min_length=1)] = "test"


@dataclass
class Variant:
    """One training set to compare: a treatment applied with one verdict source, or a baseline."""

    name: str  # unique label: "default", "rlhn-stage1", "rlhn-cascade", "topk_percpos"
    treatment: str  # default / remove / hn_remove / rlhn / topk_percpos
    verdicts: str | None = None  # stage1 / cascade (None for default and baselines)


# The sections below stay plain mappings (the steps read them so, and their keys enter the steps' cache keys): typed
# mappings check the keys given and add none.
class TopkPercposOptions(TypedDict, total=False):
    """`topk_percpos:` NV-Retriever's TopK-PercPos: drop negatives scoring above margin x the positive's score."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    margin: Annotated[float, Field(gt=0, le=1.5)]
    teacher: str  # dense:[MODEL], cross-encoder:DIR, cross-encoder:train or mining
    batch_size: Positive
    max_length: Positive
    backend: EncoderBackend


class DistillOptions(TypedDict, total=False):
    """`ce_distill:` train the retriever on a cross-encoder's scores."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    teacher: str  # cross-encoder:DIR or cross-encoder:train
    loss: DistillLoss
    batch_size: Positive
    max_length: Positive
    backend: EncoderBackend


class EvaluationOptions(TypedDict, total=False):
    """`evaluation:` the metric and significance level; other keys are `hardneg evaluate` options."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    metric: str
    alpha: Annotated[float, Field(gt=0, lt=1)]


class PruneOptions(TypedDict, total=False):
    """`prune:` (`hardneg prune` only)."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    threshold: Annotated[float, Field(ge=0)]  # nDCG points, e.g. 0.005


class ExperimentConfig(BaseModel):
    """An experiment config (`load_config`): the YAML file's sections, checked, paths absolute, variants expanded.

    Validated with the context ``{"folder": the config's folder, "require_judge": bool}``; `path` and `raw` (the
    mapping read, overrides applied) are set by `load_config`."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    output: Path
    seeds: Annotated[list[StrictInt], Field(min_length=1)] = [0]  # pydantic copies a default
    # where mining and judging run (`hardneg.cluster`): never part of a step's cache key, since both engines
    # give the same results
    engine: Engine = "local"
    ray_address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None
    train: list[DataSource]
    evaluate: list[TestSet]
    verdicts: Annotated[list[Literal["stage1", "cascade"]], Field(min_length=1)] = ["cascade"]
    variants: list[Variant] = Field(default=None, validate_default=True)  # names in the file, expanded
    mine: dict[str, Any] = Field(default_factory=dict)
    judge: dict[str, Any] = Field(default_factory=dict)
    relabel: dict[str, Any] = Field(default_factory=dict)
    topk_percpos: TopkPercposOptions = Field(default_factory=lambda: TopkPercposOptions())
    ce_distill: DistillOptions = Field(default_factory=lambda: DistillOptions())
    reranker: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: EvaluationOptions = Field(default_factory=lambda: EvaluationOptions())
    prune: PruneOptions = Field(default_factory=lambda: PruneOptions())
    _path: Path = PrivateAttr(default=Path("experiment.yaml"))
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> Path:
        """The config file."""
        return self._path

    @property
    def raw(self) -> dict[str, Any]:
        """The mapping read from the file, overrides applied."""
        return self._raw

    @property
    def needs_judge(self) -> bool:
        return any(v.verdicts is not None for v in self.variants)

    @property
    def metric(self) -> str:
        return str(self.evaluation.get("metric", "ndcg@10"))

    @property
    def alpha(self) -> float:
        return float(self.evaluation.get("alpha", 0.05))

    @field_validator(*("mine", "judge", "relabel", "topk_percpos", "ce_distill", "reranker", "training"),
                     *("evaluation", "prune"), mode="before")  # fmt: skip
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("output", mode="before")
    @classmethod
    def _output_folder(cls, value: Any, info: ValidationInfo) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("expected a folder path")
        output = Path(value).expanduser()
        base = (info.context or {}).get("folder")
        return (base / output).resolve() if not output.is_absolute() and base is not None else output

    @field_validator("seeds", mode="before")
    @classmethod
    def _one_seed(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("seeds")
    @classmethod
    def _seeds_once(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a seed is listed twice")
        return value

    @field_validator("train", "evaluate", mode="before")
    @classmethod
    def _some_datasets(cls, value: Any) -> Any:
        if value is None or value == []:
            raise ValueError("missing: at least one dataset is required")
        return [value] if isinstance(value, dict) else value

    @field_validator("train", "evaluate")
    @classmethod
    def _names_once(cls, value: list[DataSource]) -> list[DataSource]:
        seen: set[str] = set()
        for i, source in enumerate(value):
            if source.name in seen:
                raise FieldError((i, "name"), f"duplicate dataset name {source.name!r}")
            seen.add(source.name)
        return value

    @field_validator("verdicts", mode="before")
    @classmethod
    def _one_source(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("verdicts")
    @classmethod
    def _sources_once(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("variants", mode="before")
    @classmethod
    def _expand_variants(cls, value: Any, info: ValidationInfo) -> list[Variant]:
        """Variant names -> variants: a treatment once per verdict source (`verdicts`, validated before), and
        `default` always (every delta and significance test is against it)."""
        names = ["default", "rlhn"] if value is None else value
        if not isinstance(names, list) or not names:
            raise ValueError("expected a non-empty list of variant names")
        for i, name in enumerate(names):
            if name not in VARIANT_NAMES:
                raise FieldError(i, f"unknown variant {name!r} (known: {', '.join(VARIANT_NAMES)})")
        sources = info.data.get("verdicts") or []
        out = [
            variant
            for name in names
            for variant in (
                [Variant(name=name, treatment=name)] if name == "default" or name in BASELINES
                else [Variant(name=f"{name}-{source}", treatment=name, verdicts=source) for source in sources]
            )
        ]  # fmt: skip
        if not any(v.name == "default" for v in out):
            out.insert(0, Variant(name="default", treatment="default"))
        labels = [v.name for v in out]
        twice = sorted({n for n in labels if labels.count(n) > 1})
        if twice:
            raise ValueError(f"variant listed twice: {twice[0]}")
        return out

    @model_validator(mode="after")
    def _check_together(self, info: ValidationInfo) -> ExperimentConfig:
        try:
            resolve_engine(self.engine, self.ray_address)
        except ConfigError as exc:
            raise FieldError(exc.param or "engine", exc.detail) from None
        context = info.context or {}
        if self.needs_judge and (context.get("require_judge", True) or self.judge):
            if "config" in self.judge:
                try:
                    self.judge["config"] = str(_config_path(self.judge["config"], info, folder=False))
                except ValueError as exc:
                    raise FieldError(("judge", "config"), str(exc)) from None
            elif "stages" not in self.judge:
                raise FieldError(
                    "judge", "missing: variants that relabel need `judge: {config: cascade.yaml}` or inline `stages`"
                )
        listed = {v.treatment for v in self.variants}
        if "topk_percpos" in listed:
            teacher = self.topk_percpos.get("teacher", "dense:")
            self.topk_percpos["teacher"] = _teacher(teacher, "topk_percpos", info)
        if "ce_distill" in listed:
            teacher = _teacher(self.ce_distill.get("teacher", TRAINED_TEACHER), "ce_distill", info)
            if teacher.startswith("dense:"):
                raise FieldError(
                    ("ce_distill", "teacher"), "ce_distill distils a cross-encoder: cross-encoder:DIR or train"
                )
            self.ce_distill["teacher"] = teacher
        return self


def _teacher(value: Any, baseline: str, info: ValidationInfo) -> str:
    """A baseline's teacher spec, checked, with folder paths made absolute (relative to the config file)."""
    field = (baseline, "teacher")
    if not isinstance(value, str):
        raise FieldError(field, "expected a teacher: dense:[MODEL], cross-encoder:DIR or cross-encoder:train")
    text = value.strip()
    if text == TRAINED_TEACHER or (text == MINING_TEACHER and baseline == "topk_percpos"):
        return text
    try:
        teacher = parse_teacher(text, param="teacher")
    except ConfigError as exc:
        raise FieldError(field, f"{exc.detail}, or cross-encoder:train") from None
    if teacher.kind == "cross-encoder":
        assert teacher.model is not None
        try:
            return f"cross-encoder:{_config_path(teacher.model, info, folder=True)}"
        except ValueError as exc:
            raise FieldError(field, str(exc)) from None
    if teacher.model is not None:
        local = Path(teacher.model).expanduser()
        base = (info.context or {}).get("folder")
        if not local.is_absolute() and base is not None and (base / local).exists():
            local = (base / local).resolve()
        return f"dense:{local if local.exists() else teacher.model}"
    return "dense:"


class _Lines:
    """Line numbers of every dotted field in a YAML document, for error messages."""

    def __init__(self, text: str) -> None:
        import yaml

        self.lines: dict[str, int] = {}
        try:
            node = yaml.compose(text)
        except yaml.YAMLError:
            return
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: Any, prefix: str) -> None:
        import yaml

        self.lines.setdefault(prefix, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{prefix}.{key.value}" if prefix else str(key.value)
                self.lines[name] = key.start_mark.line + 1
                self._walk(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{prefix}[{index}]")

    def line(self, dotted: str) -> int | None:
        # Fall back to the nearest enclosing field that exists (a missing key is reported at its parent).
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            cut = max(dotted.rfind("."), dotted.rfind("["))
            dotted = dotted[:cut] if cut > 0 else ""
        return None


def _dotted(loc: Location) -> str:
    """A pydantic location as the config's field: ``evaluate[0].beir``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


# The keys each mapping of the file takes, by its top-level section ("" for the top level), for unknown-key errors.
_KNOWN_KEYS: dict[str, list[str]] = {
    "": sorted(ExperimentConfig.model_fields),
    "train": sorted(DataSource.model_fields),
    "evaluate": sorted(TestSet.model_fields),
    "topk_percpos": sorted(TopkPercposOptions.__annotations__),
    "ce_distill": sorted(DistillOptions.__annotations__),
}


def _problems(exc: ValidationError, path: Path, lines: _Lines) -> list[Problem]:
    problems = []
    for loc, message in validation_problems(exc):
        if message == "Extra inputs are not permitted":
            message = f"unknown field (known: {', '.join(_KNOWN_KEYS[str(loc[0]) if len(loc) > 1 else ''])})"
        dotted = _dotted(loc)
        problems.append(Problem(str(path), lines.line(dotted), dotted or "-", message))
    return problems


def load_config(
    path: str | Path, *, overrides: dict[str, Any] | None = None, require_judge: bool = True
) -> ExperimentConfig:
    """Read and check an experiment config; raise InputError naming the file, line and field.

    `require_judge=False` (the pruning study) accepts a config without a `judge` section.
    """
    import yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise InputError(path, None, "-", "no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        detail = f"not a YAML text file (not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise InputError(path, None, "-", detail) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, mark.line + 1 if mark else None, "-", f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(path, None, "-", "expected a YAML mapping at the top level")
    raw = copy.deepcopy(raw)
    raw.update(overrides or {})
    document = {"name": path.stem, "output": f"{path.stem}.experiment", **raw}
    try:
        config = ExperimentConfig.model_validate(
            document, context={"folder": path.parent, "require_judge": require_judge}
        )
    except ValidationError as exc:
        raise InputError.from_problems(_problems(exc, path, _Lines(text))) from None
    config._path, config._raw = path, raw
    return config
