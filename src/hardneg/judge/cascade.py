"""The judging cascade: N stages, each judging only what the stage before routed to it.

Stages run one after the other over the instance file (streamed, never held in memory). Stage 1 sees every
instance; stage k > 1 sees the instances stage k-1 routed on, with either all their negatives
(`candidates: all`, the paper's stage 2) or only those passed on (`candidates: routed`). Each result is stored
as soon as it arrives, keyed by (query_id, stage, stage config hash); a stage's config hash covers its judge's
config, its own settings and the chain of stages above it, so resuming reuses exactly the matching records.

An instance's final verdict is that of the last stage that judged it (`JudgmentStore.final_verdicts` with
`CascadeReport.stage_hashes`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judge.base import Judge, JudgeOutput, config_hash
from hardneg.judge.registry import BACKENDS, LISTWISE_BACKENDS, build_judge, known_backends
from hardneg.judge.store import DEFAULT_MAX_ATTEMPTS, Judgment, JudgmentStore

_SCORE_RULE = re.compile(r"^score\s*>=\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)$")

Progress = Callable[[str, int, int], None]  # (stage name, done, total)


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


class CascadeConfig(BaseModel):
    """A cascade of judging stages (stage numbers are 1-based positions in `stages`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "cascade"
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1)
    stages: list[StageConfig] = Field(min_length=1)

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
        return self


def _format_validation(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "-"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc}: {msg}")
    return "; ".join(lines)


def parse_config(data: Any, source: str = "config") -> CascadeConfig:
    """Validate a config mapping; errors name the field (`stages.1.t_better: ...`)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'stages' list")
    try:
        return CascadeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None


def load_config(path: str | Path) -> CascadeConfig:
    """Read a cascade YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: bad YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(path))


# --- per-stage report ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class StageReport:
    stage: int
    name: str
    backend: str
    model: str
    config_hash: str
    routed_in: int = 0  # instances this stage had to judge (all, or routed to it)
    judged_now: int = 0  # calls made in this run
    reused: int = 0  # already in the store with the same config
    judged: int = 0  # ok records in the store for this stage config
    flagged: int = 0  # ok records with at least one negative in better or worse
    routed_on: int = 0  # instances passed to the next stage
    parse_errors: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    wall_s: float = 0.0


@dataclass(slots=True)
class CascadeReport:
    stages: list[StageReport] = field(default_factory=list)
    instances: int = 0

    @property
    def stage_hashes(self) -> dict[int, str]:
        """{stage: config_hash}, for `JudgmentStore.final_verdicts`."""
        return {s.stage: s.config_hash for s in self.stages}

    def to_dict(self) -> dict[str, Any]:
        return {"instances": self.instances, "stages": [asdict(s) for s in self.stages]}


# --- routing ------------------------------------------------------------------------------------------------
def routed_on(stage: StageConfig, record: Judgment | None) -> list[str] | None:
    """The negatives `stage` passes on to the next stage for this record, or None if the instance stops here."""
    if record is None or record.status != "ok":
        return None
    scores = record.scores or {}
    flagged = record.flagged
    threshold = stage.route_threshold
    if stage.route == "any":
        go = bool(flagged)
    elif stage.route == "better":
        go = bool(record.better)
    else:
        go = any(s >= threshold for s in scores.values())  # type: ignore[operator]
    if not go:
        return None
    if stage.route_top is not None or stage.route_min_score is not None:
        ranked = sorted(record.docids, key=lambda d: -scores.get(d, -math.inf))
        keep = set(ranked)
        if stage.route_top is not None:
            keep &= set(ranked[: max(1, math.ceil(stage.route_top * len(ranked)))])
        if stage.route_min_score is not None:
            keep &= {d for d in ranked if scores.get(d, -math.inf) >= stage.route_min_score}
        passed = [d for d in record.docids if d in keep]
    elif threshold is not None:
        passed = [d for d in record.docids if scores.get(d, -math.inf) >= threshold]
    elif stage.route == "better":
        passed = list(record.better or [])
    else:
        passed = flagged
    return passed or None


def _verdict_from_scores(
    stage: StageConfig, docids: list[str], scores: dict[str, float], raw: dict[str, float]
) -> tuple[list, list]:
    t_better, t_worse = stage.t_better, stage.t_worse
    gate = stage.min_raw_score
    eligible = [d for d in docids if gate is None or raw[d] >= gate]
    better = [d for d in eligible if scores[d] >= t_better]  # type: ignore[operator]
    worse = [d for d in eligible if t_worse <= scores[d] < t_better]  # type: ignore[operator]
    return better, worse


def _fuse(scores: dict[str, float], earlier: list[dict[str, float]]) -> dict[str, float]:
    """Rank-average this stage's scores with earlier stages' (ranks taken within the instance).

    Earlier stages keep every negative they scored, so a negative's earlier rank is its rank among all the
    instance's negatives, as in calibration (`hardneg.judge.calibrate.fuse_scores`).
    """
    try:
        from hardneg.judge.fusion import rank_average
    except ImportError as exc:  # pragma: no cover - depends on the installed tree
        raise ConfigError("fuse: rank-average needs hardneg.judge.fusion, which is not available") from exc
    fused = rank_average([*earlier, scores])
    return {d: float(fused[d]) for d in scores}


def _finish_output(
    stage: StageConfig, out: JudgeOutput, docids: list[str], earlier: list[dict[str, float]]
) -> JudgeOutput:
    """Check a judge's output and turn scores into a verdict for score stages."""
    if not out.docids:
        out.docids = list(docids)
    if out.status != "ok":
        return out
    if stage.mode == "verdict":
        if out.better is None or out.worse is None:
            out.status, out.reason = "failed", "listwise stage: the judge returned no better/worse verdict"
        return out
    scores = out.scores or {}
    missing = [d for d in docids if d not in scores]
    if missing:
        out.status, out.reason = "failed", f"the judge returned no score for {len(missing)} negative(s)"
        return out
    raw = {d: float(scores[d]) for d in docids}
    if stage.fuse == "rank-average" and earlier:
        out.extra = {**out.extra, "raw_scores": raw}
        scores = _fuse(raw, earlier)
        out.scores = scores
    out.better, out.worse = _verdict_from_scores(stage, docids, scores, raw)
    return out


def stage_key(stage: StageConfig, judge: Judge, upstream: dict[str, Any] | None) -> dict[str, Any]:
    """What a stage's stored records depend on: its judge, its own settings and the stages above it."""
    return {
        "backend": stage.backend,
        "model": judge.model_name,
        "judge": judge.config(),
        "mode": stage.mode,
        "t_better": stage.t_better,
        "t_worse": stage.t_worse,
        "fuse": stage.fuse,
        "min_raw_score": stage.min_raw_score,
        "candidates": stage.candidates,
        "upstream": upstream,
    }


# --- running ------------------------------------------------------------------------------------------------
class _Cascade:
    def __init__(
        self,
        path: Path,
        config: CascadeConfig,
        store: JudgmentStore,
        progress: Progress | None,
        judges: dict[str, Judge] | None,
    ) -> None:
        self.path = path
        self.config = config
        self.store = store
        self.progress = progress
        self.judges = judges or {}
        self.hashes: list[str] = []

    def _candidates(self, k: int, instance: Instance) -> list[str] | None:
        """Docids stage k (1-based) judges for this instance, or None when the instance is not routed to it."""
        all_ids = instance.negative_ids
        if not all_ids:
            return None
        if k == 1:
            return all_ids
        prev_stage = self.config.stages[k - 2]
        passed = routed_on(prev_stage, self.store.get(instance.query_id, k - 1, self.hashes[k - 2]))
        if passed is None:
            return None
        if self.config.stages[k - 1].candidates == "all":
            return all_ids
        keep = set(passed)
        return [d for d in all_ids if d in keep]

    def _earlier_scores(self, k: int, query_id: str) -> list[dict[str, float]]:
        out = []
        for j in range(1, k):
            record = self.store.get(query_id, j, self.hashes[j - 1])
            if record is not None and record.status == "ok" and record.scores:
                out.append(record.extra.get("raw_scores") or record.scores)
        return out

    def run_stage(self, k: int, stage: StageConfig, upstream: dict[str, Any] | None) -> StageReport:
        judge = self.judges.get(stage.name) or build_judge(stage.backend, **stage.params)
        try:
            key = stage_key(stage, judge, upstream)
            chash = config_hash(key)
            self.hashes.append(chash)
            report = StageReport(k, stage.name, stage.backend, judge.model_name, chash)
            done = self.store.done_ids(k, chash, self.config.max_attempts)
            todo = 0
            for instance in read_instances(self.path):
                if self._candidates(k, instance) is None:
                    continue
                report.routed_in += 1
                if instance.query_id in done:
                    report.reused += 1
                else:
                    todo += 1
            start = time.perf_counter()
            if self.progress:
                self.progress(stage.name, 0, todo)

            docids_of: dict[str, list[str]] = {}

            def items() -> Iterator[tuple[Instance, list[str]]]:
                for instance in read_instances(self.path):
                    if instance.query_id in done:
                        continue
                    docids = self._candidates(k, instance)
                    if docids is None:
                        continue
                    docids_of[instance.query_id] = docids  # only calls in flight are held
                    yield instance, docids

            for instance, out in judge.judge_many(items()):
                docids = docids_of.pop(instance.query_id, list(out.docids))
                earlier = self._earlier_scores(k, instance.query_id) if stage.fuse != "none" else []
                out = _finish_output(stage, out, docids, earlier)
                self.store.put(instance.query_id, k, stage.name, key, out)
                report.judged_now += 1
                if self.progress:
                    self.progress(stage.name, report.judged_now, todo)
            report.wall_s = time.perf_counter() - start
        finally:
            if stage.name not in self.judges:
                judge.close()
        self._tally(report, stage, k == len(self.config.stages))
        return report

    def _tally(self, report: StageReport, stage: StageConfig, last: bool) -> None:
        for record in self.store.iter_judgments(stage=report.stage, config_hash=report.config_hash):
            report.tokens_in += record.tokens_in
            report.tokens_out += record.tokens_out
            if record.status == "ok":
                report.judged += 1
                report.flagged += bool(record.flagged)
                if not last and routed_on(stage, record) is not None:
                    report.routed_on += 1
            elif record.status == "parse_error":
                report.parse_errors += 1
            else:
                report.failed += 1


def run_cascade(
    instances_path: str | Path,
    config: CascadeConfig,
    store: JudgmentStore,
    *,
    progress: Progress | None = None,
    judges: dict[str, Judge] | None = None,
) -> CascadeReport:
    """Run (or resume) the cascade over a file of instances; every result goes to `store` as it arrives.

    `judges` may supply ready judges by stage name (otherwise each stage's is built from its backend and params,
    and closed after the stage). `progress(stage_name, done, total)` is called as calls finish.
    """
    path = Path(instances_path)
    runner = _Cascade(path, config, store, progress, judges)
    report = CascadeReport()
    # validates the whole file before any paid call
    report.instances = sum(1 for _ in read_instances(path))
    upstream: dict[str, Any] | None = None
    for k, stage in enumerate(config.stages, start=1):
        stage_report = runner.run_stage(k, stage, upstream)
        report.stages.append(stage_report)
        # the next stage depends on this stage's records and on how it routes
        upstream = {
            "config_hash": stage_report.config_hash,
            "route": stage.route,
            "route_top": stage.route_top,
            "route_min_score": stage.route_min_score,
        }
    return report


def default_thresholds(backend: str) -> tuple[float, float] | None:
    """(t_better, t_worse) calibrated for a score backend, from `hardneg.judge.defaults` when it is installed."""
    try:
        from hardneg.judge import defaults  # written by the calibration work; optional
    except ImportError:
        return None
    getter = getattr(defaults, "thresholds", None)
    if callable(getter):
        found = getter(backend)
        return None if found is None else (float(found[0]), float(found[1]))
    table = getattr(defaults, "THRESHOLDS", None)
    if isinstance(table, dict) and backend in table:
        found = table[backend]
        if isinstance(found, dict):
            return float(found["t_better"]), float(found.get("t_worse", found["t_better"]))
        return float(found[0]), float(found[1])
    return None


def stage_from_flag(name: str, spec: str, template: str | None, default_template: str) -> dict[str, Any]:
    """A stage dict from a `BACKEND[:MODEL]` command-line flag."""
    backend, _, model = spec.partition(":")
    if backend not in BACKENDS:
        raise ConfigError(f"--{name} {spec}: unknown judge backend {backend!r}; known: {', '.join(known_backends())}")
    stage: dict[str, Any] = {"name": name, "backend": backend, "params": {}}
    if model:
        stage["params"]["model"] = model
    if backend in LISTWISE_BACKENDS:
        stage["params"]["template"] = template or default_template
        return stage
    found = default_thresholds(backend)
    if found is None:
        raise ConfigError(
            f"--{name} {spec}: a score backend needs thresholds (t_better, t_worse): write them in a --config file"
        )
    stage["t_better"], stage["t_worse"] = found
    return stage


def config_from_flags(stage1: str, stage2: str | None = None, template: str | None = None) -> CascadeConfig:
    """The common two-stage cascade from `--stage1 BACKEND:MODEL [--stage2 BACKEND:MODEL] [--template T]`.

    Listwise stages use the shipped `stage1` / `stage2` templates unless `template` is given; stage 2 re-judges
    every negative of the instances stage 1 flagged (the paper's rule).
    """
    stages = [stage_from_flag("stage1", stage1, template, "stage1")]
    if stage2:
        stages.append(stage_from_flag("stage2", stage2, template, "stage2"))
    return parse_config({"name": "flags", "stages": stages}, "command line")
