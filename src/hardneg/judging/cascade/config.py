"""Cascade configuration: the stages, their judges, thresholds, fusion and routing, validated with pydantic.

A cascade is a YAML mapping with a `stages` list (see `default.yaml`, the local cascade `hardneg clean` runs).
Errors name the field (`stages.1.t_better: ...`), never a command-line flag.

Named configs ship inside the package (`shipped_configs`): ``default`` (this folder's `default.yaml`) and
`hardneg/configs/NAME.yaml` (``paper-api``, ``local-llm``, ``embedding``, ``local-bounded``; the repository's
`examples/judge-NAME.yaml` are the same files). `load_cascade` and `as_config` take a name where they take a path
(`resolve_config`). A config's first line ``# description: ...`` is its one-line description.
"""

from __future__ import annotations

import inspect
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hardneg.errors import ConfigError, validation_problems
from hardneg.judging import defaults
from hardneg.judging.registry import BACKENDS, LISTWISE_BACKENDS, known_backends, resolve_backend
from hardneg.judging.store import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TIMEOUTS
from hardneg.models import GGUF_MODELS

_SCORE_RULE = re.compile(r"^score\s*>=\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)$")


class StageConfig(BaseModel):
    """One stage of the cascade."""

    model_config = ConfigDict(extra="forbid")

    name: str
    backend: str
    params: dict[str, Any] = Field(default_factory=dict)
    # verdict: the judge's better/worse lists; score: thresholds on its scores; auto: by backend
    mode: Literal["auto", "verdict", "score"] = "auto"
    t_better: float | None = None  # score >= t_better -> better
    t_worse: float | None = None  # t_worse <= score < t_better -> worse (defaults to t_better: no worse list)
    fuse: Literal["rank-average", "none"] = "none"
    # With fusion: a negative is flagged only if this stage's own (unfused) score also reaches this value, since
    # ranks within an instance are relative and would flag its top negatives even when the judge says no to all.
    min_raw_score: float | None = None
    candidates: Literal["all", "routed"] = "all"
    # Routing to the next stage: which instances go on, and which of their negatives are passed on.
    route: str = "any"  # any | better | score>=T
    route_top: float | None = Field(default=None, gt=0.0, le=1.0)  # the top fraction of negatives by score
    route_min_score: float | None = None
    # Where the stage runs under engine "ray" (`hardneg.judging.engine`): `workers` actors, each reserving
    # `num_cpus` CPUs and `num_gpus` GPUs (None: Ray's default, 1 CPU, no GPU), judging blocks of `batch_size`
    # instances. The local engine ignores them; they never enter a call's identity (RESOURCE_FIELDS).
    workers: int = Field(default=1, ge=1)
    num_cpus: float | None = Field(default=None, gt=0.0)
    num_gpus: float | None = Field(default=None, ge=0.0)
    batch_size: int | None = Field(default=None, ge=1)

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        if value in BACKENDS or (":" in value and "." in value.split(":", 1)[0]):
            return value
        raise ValueError(f"unknown judge backend {value!r}; known: {', '.join(known_backends())}")

    @field_validator("route")
    @classmethod
    def _check_route(cls, value: str) -> str:
        value = value.strip()
        if value in ("any", "better") or _SCORE_RULE.match(value):
            return value
        raise ValueError(f"must be 'any', 'better' or 'score>=T' (T a number), not {value!r}")

    @model_validator(mode="after")
    def _check(self) -> StageConfig:
        if self.mode == "auto":
            self.mode = "verdict" if self.backend in LISTWISE_BACKENDS else "score"
        if self.mode == "score":
            if self.t_better is None:
                raise ValueError("t_better is required for a score stage (scores >= t_better are flagged better)")
            if self.t_worse is None:
                self.t_worse = self.t_better
            if self.t_better < self.t_worse:
                raise ValueError(f"t_better ({self.t_better}) must be >= t_worse ({self.t_worse})")
        return self

    @property
    def route_threshold(self) -> float | None:
        match = _SCORE_RULE.match(self.route)
        return float(match.group(1)) if match else None


# Stage fields that say where a stage runs, not what it asks: left out of every identity (store keys, cached steps).
RESOURCE_FIELDS = ("workers", "num_cpus", "num_gpus", "batch_size")


def identity_dump(config: CascadeConfig) -> dict[str, Any]:
    """The config as plain data without the stages' `RESOURCE_FIELDS`: what a cache key of its results may hold
    (the same cascade on one machine or on a cluster gives the same verdicts)."""
    # max_timeouts says when to stop paying for a slow server, not what is asked: left out like the resources
    return config.model_dump(mode="json", exclude={"max_timeouts": True, "stages": {"__all__": set(RESOURCE_FIELDS)}})


class OperatingPoint(BaseModel):
    """The last stage's cut under some treatments of `clean` (`CascadeConfig.operating_points`)."""

    model_config = ConfigDict(extra="forbid")

    treatments: list[str] = Field(min_length=1)
    t_better: float
    t_worse: float | None = None  # defaults to t_better

    @field_validator("treatments")
    @classmethod
    def _check_treatments(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in defaults.TREATMENT_POINTS]
        if unknown:
            raise ValueError(f"unknown treatment(s) {unknown}; known: {', '.join(defaults.TREATMENT_POINTS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> OperatingPoint:
        if self.t_worse is None:
            self.t_worse = self.t_better
        if self.t_better < self.t_worse:
            raise ValueError(f"t_better ({self.t_better}) must be >= t_worse ({self.t_worse})")
        return self


class CascadeConfig(BaseModel):
    """A cascade of judging stages (stage numbers are 1-based positions in `stages`).

    `operating_points` (optional; the shipped default has two): {name: {treatments, t_better, t_worse}}, the last
    stage's cut when `clean` runs one of those treatments (`for_treatment`); other treatments, and `judge`, use the
    stage's own t_better / t_worse. Thresholds are never part of a call's identity: switching the cut re-derives
    the verdicts from the stored scores without a call.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "cascade"
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1)
    # possibly billed timeouts an instance's call may accumulate (over runs) before it is re-sent only on request
    max_timeouts: int = Field(default=DEFAULT_MAX_TIMEOUTS, ge=1)
    stages: list[StageConfig] = Field(min_length=1)
    operating_points: dict[str, OperatingPoint] = Field(default_factory=dict)

    def for_treatment(self, treatment: str) -> tuple[CascadeConfig, str | None]:
        """(this cascade with its last stage at the operating point that lists `treatment`, that point's name), or
        (this cascade, None) when no point lists it."""
        for name, point in self.operating_points.items():
            if treatment in point.treatments:
                last = self.stages[-1].model_copy(update={"t_better": point.t_better, "t_worse": point.t_worse})
                return self.model_copy(update={"stages": [*self.stages[:-1], last]}), name
        return self, None

    @model_validator(mode="after")
    def _check(self) -> CascadeConfig:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        first = self.stages[0]
        if first.candidates != "all":
            raise ValueError("stages.0.candidates: the first stage sees every negative ('all')")
        if first.fuse != "none":
            raise ValueError("stages.0.fuse: the first stage has no earlier scores to fuse with")
        for i, stage in enumerate(self.stages[:-1]):
            needs_scores = stage.route_threshold is not None or stage.route_top or stage.route_min_score is not None
            if needs_scores and stage.mode == "verdict":
                raise ValueError(
                    f"stages.{i}: route by score (score>=T, route_top, route_min_score) needs a score stage"
                )
        for i, stage in enumerate(self.stages):
            if stage.fuse != "none" and stage.mode != "score":
                raise ValueError(f"stages.{i}.fuse: only score stages can fuse scores")
        if self.operating_points and self.stages[-1].mode != "score":
            raise ValueError("operating_points: they set the last stage's cut, which needs a score stage")
        seen: dict[str, str] = {}
        for name, point in self.operating_points.items():
            for treatment in point.treatments:
                if treatment in seen:
                    raise ValueError(f"operating_points.{name}: {treatment} is already in {seen[treatment]}")
                seen[treatment] = name
        return self


def cut_in_force(config: CascadeConfig, operating_point: str | None = None) -> dict[str, Any]:
    """The cut of the cascade's last stage (the one whose verdicts decide), as `clean` reports it.

    `calibrated` is true for the shipped default judge only (one MiniLM cos(reference) stage) at one of its
    calibrated operating points (`defaults.OPERATING_POINTS`); `held_out` then gives that point's precision, recall
    and kappa measured on NovelEval's held-out half. Any other judge or cut is the config's own: `held_out` None.
    """
    stage = config.stages[-1]
    found = None
    shipped_judge = len(config.stages) == 1 and stage.backend == "embedding" and stage.params == {"score": "reference"}
    if shipped_judge and stage.t_better is not None and stage.t_better == stage.t_worse:
        found = next((n for n, f in defaults.OPERATING_POINTS.items() if f["cut"] == stage.t_better), None)
    figures = defaults.OPERATING_POINTS[found] if found else None
    return {
        "stage": stage.name,
        "t_better": stage.t_better,
        "t_worse": stage.t_worse,
        "operating_point": found or operating_point,
        "calibrated": found is not None,
        "objective": defaults.OBJECTIVES[found] if found else None,
        "held_out": None if figures is None else {
            k: figures[k] for k in ("precision", "recall", "kappa", "n_pairs", "n_relevant")
        },
    }  # fmt: skip


def _format_validation(exc: ValidationError, source: str) -> str:
    """Every problem as ``source: stages.1.t_better: message`` (worded by `hardneg.errors.validation_problems`)."""
    return "; ".join(
        f"{source}: {'.'.join(str(part) for part in loc) or '-'}: {message}"
        for loc, message in validation_problems(exc)
    )


def parse_config(data: Any, source: str = "config") -> CascadeConfig:
    """Validate a config mapping; errors name the field (`stages.1.t_better: ...`)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'stages' list")
    try:
        config = CascadeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None
    for i, stage in enumerate(config.stages):
        _check_params(stage, f"{source}: stages.{i}.params")
    return config


# Backends whose `model` parameter is a GGUF: a known model name or a file.
_GGUF_BACKENDS = frozenset({"llm-pointwise", "llm-listwise"})


def _check_params(stage: StageConfig, where: str) -> None:
    """Parameters the backend does not take, or a GGUF that does not exist, fail when the config is read, not
    hours into a run. Backends whose module cannot be imported here are checked when they are built."""
    try:
        factory = resolve_backend(stage.backend)
    except ConfigError:
        return
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    known = [name for name, p in signature.parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(stage.params) - set(known) - {"budget", "state_db"})
    if unknown and not takes_any:
        raise ConfigError(
            f"{where}: {stage.backend} takes no parameter {', '.join(map(repr, unknown))} "
            f"(it takes: {', '.join(n for n in known if n not in ('budget', 'state_db', 'progress'))})"
        )
    model = stage.params.get("model")
    gguf = stage.backend in _GGUF_BACKENDS and isinstance(model, str) and model not in GGUF_MODELS
    if gguf and not Path(str(model)).expanduser().is_file():
        raise ConfigError(
            f"{where}.model: no such GGUF file {model!r} (and not one of {', '.join(sorted(GGUF_MODELS))})"
        )


def shipped_configs() -> dict[str, Path]:
    """The named cascade configs shipped with hardneg: {name: YAML path}, ``default`` first."""
    found = {"default": default_config_path()}
    folder = resources.files("hardneg") / "configs"
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml")) if folder.is_dir() else []
    for name in names:
        found[name.removesuffix(".yaml")] = Path(str(folder / name))
    return found


def config_description(path: str | Path) -> str:
    """The one-line description of a config file: its `# description: ...` comment ("" without one)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, text = line.lstrip("# ").partition(":")
        if key.strip() == "description":
            return text.strip()
    return ""


def resolve_config(config: str | Path) -> Path:
    """The YAML file a `config` argument names: an existing file, else a shipped config's name.

    A name has no path separator and no `.yaml` / `.yml` suffix (``default``, ``paper-api``, ...; the examples'
    file names ``judge-paper-api`` work too). An unknown name raises `ConfigError` listing the shipped names.
    """
    path = Path(config).expanduser()
    text = str(config)
    if path.exists() or "/" in text or os.sep in text or text.endswith((".yaml", ".yml")):
        return path
    shipped = shipped_configs()
    name = text if text in shipped else text.removeprefix("judge-")
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"{text}: no such config file, and not a shipped config (known: {', '.join(shipped)}; see `hardneg configs`)",
        param="config",
    )


def load_cascade(path: str | Path) -> CascadeConfig:
    """Read a cascade YAML file, or a shipped config by name (`resolve_config`)."""
    path = resolve_config(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: -: not a YAML text file (not UTF-8: byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start})") from None  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: bad YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(path))


def default_config_path() -> Path:
    """The shipped default cascade YAML (the local cascade of `hardneg clean`)."""
    return Path(str(resources.files("hardneg.judging.cascade") / "default.yaml"))


def load_default_config() -> CascadeConfig:
    return load_cascade(default_config_path())


def as_config(config: CascadeConfig | dict[str, Any] | str | Path | None) -> CascadeConfig:
    """A `CascadeConfig` from a config, a mapping, a YAML path or a shipped config's name (`resolve_config`), or
    None (the shipped default)."""
    if config is None:
        return load_default_config()
    if isinstance(config, CascadeConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    if isinstance(config, str | Path):
        return load_cascade(config)
    raise ConfigError(
        f"expected a CascadeConfig, a mapping or a YAML path; got {type(config).__name__}", param="config"
    )
