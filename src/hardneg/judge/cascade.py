"""The judging cascade: N stages, each judging only what the stage before routed to it.

Stages run one after the other over the instance file (streamed, never held in memory). Stage 1 sees every
instance; stage k > 1 sees the instances stage k-1 routed on, with either all their negatives
(`candidates: all`, the paper's stage 2) or only those passed on (`candidates: routed`).

A judgment bought once is never bought again. Each call is stored as soon as it arrives, keyed by its identity
only (`call_key`: the judge's config and the stage number), with its raw output (scores, or the judge's own
better/worse lists, and the docids judged). Thresholds, fusion and routing are applied when reading: each stage's
derived verdicts go to the store's `verdicts` table under a view hash (`view_key`: the call identity, the stage's
post-processing and the view above), so changing them re-derives verdicts without a call. When routing passes
more negatives to a score (pointwise) stage, only those not yet scored are sent, and the record grows: scores
are per negative. A verdict (listwise) judge's answer depends on the whole list shown, so a different list is a
different call (stored beside the first; going back to a list already judged reuses it).

An instance's final verdict is that of the last stage that judged it (`JudgmentStore.final_verdicts`, by default
for the latest run, or with `CascadeReport.stage_hashes`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judge.base import Judge, JudgeOutput, config_hash
from hardneg.judge.registry import BACKENDS, LISTWISE_BACKENDS, build_judge, known_backends
from hardneg.judge.store import DEFAULT_MAX_ATTEMPTS, Judgment, JudgmentStore, StageVerdict, docids_key

if TYPE_CHECKING:
    from hardneg.judge.cost import Budget

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
    config_hash: str  # the stage's call identity: the key of its records in the store
    view_hash: str = ""  # the call identity plus this cascade's post-processing: the key of its verdicts
    routed_in: int = 0  # instances this stage had to judge (all, or routed to it)
    judged_now: int = 0  # calls made in this run (one per instance)
    extended: int = 0  # of those, calls for negatives newly routed to a score judge's existing record
    negatives_judged_now: int = 0  # negatives sent to the judge in this run
    reused: int = 0  # instances whose judgment was already in the store (no call)
    unjudged: int = 0  # routed in but not judged (the budget ran out): no verdict of this stage
    judged: int = 0  # ok verdicts of this stage
    flagged: int = 0  # ok verdicts with at least one negative in better or worse
    routed_on: int = 0  # instances passed to the next stage
    parse_errors: int = 0
    failed: int = 0
    tokens_in: int = 0  # tokens of the records behind this stage's verdicts (each paid once)
    tokens_out: int = 0
    tokens_in_now: int = 0  # tokens of this run's calls
    tokens_out_now: int = 0
    wall_s: float = 0.0


@dataclass(slots=True)
class CascadeReport:
    stages: list[StageReport] = field(default_factory=list)
    instances: int = 0
    budget: dict[str, Any] | None = None  # `Budget.report()` when the run had one

    @property
    def stage_hashes(self) -> dict[int, str]:
        """{stage: view_hash}, for `JudgmentStore.final_verdicts` (this run's thresholds and routing)."""
        return {s.stage: s.view_hash for s in self.stages}

    @property
    def call_hashes(self) -> dict[int, str]:
        """{stage: config_hash}: the call identities whose records this run read or wrote."""
        return {s.stage: s.config_hash for s in self.stages}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"instances": self.instances, "stages": [asdict(s) for s in self.stages]}
        if self.budget is not None:
            out["budget"] = self.budget
        return out


# --- keys ---------------------------------------------------------------------------------------------------
# The settings applied when reading a stage's records: they never change a call, only the verdicts derived.
POST_PROCESSING = (
    "mode",
    "t_better",
    "t_worse",
    "fuse",
    "min_raw_score",
    "candidates",
    "route",
    "route_top",
    "route_min_score",
)


def call_key(stage_number: int, stage: StageConfig, judge: Judge) -> dict[str, Any]:
    """What a judge call depends on: the judge's own config (backend, model, template, generation parameters,
    prompt format) and the stage number; never thresholds, fusion or routing. Its hash keys the records."""
    return {"backend": stage.backend, "model": judge.model_name, "judge": judge.config(), "stage": stage_number}


def view_key(stage: StageConfig, call_hash: str, upstream_view: str | None) -> dict[str, Any]:
    """What a stage's derived verdicts depend on: its records, its post-processing and the view above it."""
    return {"call": call_hash, "upstream": upstream_view, **{name: getattr(stage, name) for name in POST_PROCESSING}}


# --- routing ------------------------------------------------------------------------------------------------
def routed_on(stage: StageConfig, record: Judgment | StageVerdict | None) -> list[str] | None:
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


# --- deriving verdicts --------------------------------------------------------------------------------------
def _verdict_from_scores(
    stage: StageConfig, docids: list[str], scores: dict[str, float], raw: dict[str, float]
) -> tuple[list[str], list[str]]:
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


def derive_verdict(
    stage: StageConfig,
    stage_number: int,
    view_hash: str,
    record: Judgment,
    docids: list[str],
    earlier: list[dict[str, float]],
) -> StageVerdict:
    """A stage's verdict on `docids` of one instance from its stored record: thresholds, fusion (with the earlier
    stages' raw scores) and routing applied. No call is made; a record that failed gives a failed verdict."""
    base: dict[str, Any] = {
        "query_id": record.query_id,
        "stage": stage_number,
        "view_hash": view_hash,
        "config_hash": record.config_hash,
        "judge_name": record.judge_name,
        "docids": list(docids),
    }
    if record.status != "ok":
        return StageVerdict(**base, status=record.status, reason=record.reason, better=[], worse=[])
    if stage.mode == "verdict":
        if record.better is None or record.worse is None:
            reason = "listwise stage: the judge returned no better/worse verdict"
            return StageVerdict(**base, status="failed", reason=reason, better=[], worse=[])
        scores = {d: record.scores[d] for d in docids if d in record.scores} if record.scores else None
        verdict = StageVerdict(**base, status="ok", reason="", better=list(record.better), worse=list(record.worse))
        verdict.scores = scores
    else:
        stored = record.scores or {}
        missing = [d for d in docids if d not in stored]
        if missing:
            why = (record.extra.get("extend_failed") or {}).get("reason") or "not judged"
            reason = f"no score for {len(missing)} routed negative(s): {why}"
            return StageVerdict(**base, status="failed", reason=reason, better=[], worse=[])
        raw = {d: float(stored[d]) for d in docids}
        used = _fuse(raw, earlier) if stage.fuse == "rank-average" and earlier else raw
        better, worse = _verdict_from_scores(stage, list(docids), used, raw)
        verdict = StageVerdict(**base, status="ok", reason="", better=better, worse=worse, scores=used, raw_scores=raw)
    verdict.routed = routed_on(stage, verdict)
    return verdict


def _check_output(stage: StageConfig, out: JudgeOutput, docids: list[str]) -> JudgeOutput:
    """An ok answer that lacks what the stage reads is stored as failed (retried), never as a clean verdict."""
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


# --- running ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Plan:
    docids: list[str]  # what the stage judges for the instance under this cascade's routing
    ask: list[str] | None  # what must be sent to the judge now (None: the store has it)
    extend: bool = False  # the call adds negatives to a score judge's existing record


class _VerdictWriter:
    """Derived verdicts are written in batches: they cost nothing to recompute if a run is killed."""

    def __init__(self, store: JudgmentStore, size: int = 500) -> None:
        self.store, self.size = store, size
        self.rows: list[StageVerdict] = []
        self.stale: list[tuple[str, int, str]] = []

    def add(self, verdict: StageVerdict) -> None:
        self.rows.append(verdict)
        if len(self.rows) >= self.size:
            self.flush()

    def delete(self, query_id: str, stage: int, view: str) -> None:
        self.stale.append((query_id, stage, view))
        if len(self.stale) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.rows or self.stale:
            self.store.put_verdicts(self.rows, delete=self.stale)
            self.rows, self.stale = [], []


def _accepts_budget(backend: str) -> bool:
    import inspect

    from hardneg.judge.registry import _resolve

    try:
        params = inspect.signature(_resolve(backend)).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "budget" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _paid_backends() -> set[str]:
    from hardneg.judge.cost import API_KINDS

    return set(API_KINDS)


class _Cascade:
    def __init__(
        self,
        path: Path,
        config: CascadeConfig,
        store: JudgmentStore,
        progress: Progress | None,
        judges: dict[str, Judge] | None,
        budget: Budget | None,
    ) -> None:
        self.path = path
        self.config = config
        self.store = store
        self.progress = progress
        self.judges = judges or {}
        self.budget = budget
        self.views: list[str] = []  # view hash of each finished stage

    def check_budget(self) -> None:
        """Before any call: every paid stage must be able to honour the budget."""
        if self.budget is None:
            return
        for i, stage in enumerate(self.config.stages):
            if stage.name in self.judges or "budget" in stage.params:
                continue
            if stage.backend in _paid_backends() and not _accepts_budget(stage.backend):
                raise ConfigError(
                    f"stages.{i} ({stage.name}): backend {stage.backend!r} cannot enforce a budget; "
                    "run it without --budget (see --estimate for its cost)"
                )

    def build(self, stage: StageConfig) -> Judge:
        if stage.name in self.judges:
            return self.judges[stage.name]
        params = dict(stage.params)
        if self.budget is not None and "budget" not in params and _accepts_budget(stage.backend):
            params["budget"] = self.budget  # one budget shared by every paid stage
        if stage.backend == "openai-batch":
            # Batch ids live beside the judgments, so a later run picks up batches still in flight.
            params.setdefault("state_db", str(self.store.path))
        return build_judge(stage.backend, **params)

    def _candidates(self, k: int, instance: Instance) -> list[str] | None:
        """Docids stage k (1-based) judges for this instance, or None when the instance is not routed to it."""
        all_ids = instance.negative_ids
        if not all_ids:
            return None
        if k == 1:
            return all_ids
        above = self.store.get_verdict(instance.query_id, k - 1, self.views[k - 2])
        if above is None or above.routed is None:
            return None
        if self.config.stages[k - 1].candidates == "all":
            return all_ids
        keep = set(above.routed)
        return [d for d in all_ids if d in keep]

    def _earlier_scores(self, k: int, query_id: str) -> list[dict[str, float]]:
        out = []
        for j in range(1, k):
            verdict = self.store.get_verdict(query_id, j, self.views[j - 1])
            if verdict is not None and verdict.status == "ok" and verdict.raw_scores:
                out.append(verdict.raw_scores)
        return out

    def _record(self, k: int, stage: StageConfig, chash: str, query_id: str, docids: list[str]) -> Judgment | None:
        if stage.mode == "verdict":
            return self.store.get(query_id, k, chash, docids=docids)
        return self.store.get(query_id, k, chash, docset="")

    def _plan(self, k: int, stage: StageConfig, chash: str, instance: Instance) -> _Plan | None:
        docids = self._candidates(k, instance)
        if docids is None:
            return None
        record = self._record(k, stage, chash, instance.query_id, docids)
        max_attempts = self.config.max_attempts
        if record is None or (record.status != "ok" and record.attempts < max_attempts):
            return _Plan(docids, list(docids))
        if record.status == "ok" and stage.mode == "score":
            scored = record.scores or {}
            missing = [d for d in docids if d not in scored]
            failures = int((record.extra.get("extend_failed") or {}).get("attempts", 0))
            if missing and failures < max_attempts:
                return _Plan(docids, missing, extend=True)
        return _Plan(docids, None)

    def _derive(
        self, k: int, stage: StageConfig, view: str, record: Judgment, docids: list[str], report: StageReport
    ) -> StageVerdict:
        earlier = self._earlier_scores(k, record.query_id) if stage.fuse != "none" else []
        report.tokens_in += record.tokens_in
        report.tokens_out += record.tokens_out
        return derive_verdict(stage, k, view, record, docids, earlier)

    def run_stage(self, k: int, stage: StageConfig) -> StageReport:
        judge = self.build(stage)
        writer = _VerdictWriter(self.store)
        try:
            key = call_key(k, stage, judge)
            chash = config_hash(key)
            view = config_hash(view_key(stage, chash, self.views[-1] if self.views else None))
            report = StageReport(k, stage.name, stage.backend, judge.model_name, chash, view)
            # pass 1: what the store already holds is derived at once; the rest is counted for the calls
            todo = 0
            for instance in read_instances(self.path):
                plan = self._plan(k, stage, chash, instance)
                if plan is None:
                    writer.delete(instance.query_id, k, view)  # no longer routed here under this view
                    continue
                report.routed_in += 1
                if plan.ask is None:
                    report.reused += 1
                    record = self._record(k, stage, chash, instance.query_id, plan.docids)
                    assert record is not None
                    writer.add(self._derive(k, stage, view, record, plan.docids, report))
                else:
                    todo += 1
                    writer.delete(instance.query_id, k, view)
            writer.flush()
            start = time.perf_counter()
            if self.progress:
                self.progress(stage.name, 0, todo)
            # pass 2: the calls, each stored as it arrives
            asked: dict[str, _Plan] = {}

            def items() -> Iterator[tuple[Instance, list[str]]]:
                for instance in read_instances(self.path):
                    plan = self._plan(k, stage, chash, instance)
                    if plan is None or plan.ask is None:
                        continue
                    asked[instance.query_id] = plan  # only calls in flight are held
                    yield instance, plan.ask

            if todo:
                for instance, out in judge.judge_many(items()):
                    plan = asked.pop(instance.query_id)
                    assert plan.ask is not None
                    out = _check_output(stage, out, plan.ask)
                    qid = instance.query_id
                    if plan.extend:
                        record = self.store.merge_scores(qid, k, stage.name, key, out, order=instance.negative_ids)
                        report.extended += 1
                    else:
                        docset = docids_key(plan.ask) if stage.mode == "verdict" else ""
                        self.store.put(qid, k, stage.name, key, out, docset=docset)
                        record = self.store.get(qid, k, chash, docset=docset)
                        assert record is not None
                    report.judged_now += 1
                    report.negatives_judged_now += len(plan.ask)
                    report.tokens_in_now += out.tokens_in
                    report.tokens_out_now += out.tokens_out
                    writer.add(self._derive(k, stage, view, record, plan.docids, report))
                    if self.progress:
                        self.progress(stage.name, report.judged_now, todo)
            report.unjudged = len(asked)  # a budget stops a judge early: these have no verdict of this stage
            report.wall_s = time.perf_counter() - start
        finally:
            writer.flush()
            if stage.name not in self.judges:
                judge.close()
        self._tally(report, k == len(self.config.stages))
        self.views.append(report.view_hash)
        return report

    def _tally(self, report: StageReport, last: bool) -> None:
        for verdict in self.store.iter_verdicts(stage=report.stage, view_hash=report.view_hash):
            if verdict.status == "ok":
                report.judged += 1
                report.flagged += bool(verdict.flagged)
                if not last and verdict.routed is not None:
                    report.routed_on += 1
            elif verdict.status == "parse_error":
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
    budget: Budget | None = None,
) -> CascadeReport:
    """Run (or resume) the cascade over a file of instances; every result goes to `store` as it arrives.

    A call already in the store (same judge config, same stage) is never made again: thresholds, fusion and
    routing are applied when deriving verdicts, so changing them costs no call. A score stage asked for more
    negatives than its record holds judges only the new ones. The run's derived verdicts become the store's
    current ones (`JudgmentStore.final_verdicts()`).

    `judges` may supply ready judges by stage name (otherwise each stage's is built from its backend and params,
    and closed after the stage). `budget` is shared by every stage whose judge takes one (the API judges); a
    paid stage that cannot honour it is refused before any call. `progress(stage_name, done, total)` is called
    as calls finish.
    """
    path = Path(instances_path)
    runner = _Cascade(path, config, store, progress, judges, budget)
    runner.check_budget()
    report = CascadeReport()
    # validates the whole file before any paid call
    report.instances = sum(1 for _ in read_instances(path))
    for k, stage in enumerate(config.stages, start=1):
        report.stages.append(runner.run_stage(k, stage))
    store.set_current_run(
        {"name": config.name, "views": report.stage_hashes, "calls": report.call_hashes},
    )
    if budget is not None:
        report.budget = budget.report()
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
