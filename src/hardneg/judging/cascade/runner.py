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
for the latest run, or with `CascadeReport.stage_hashes`). Before its calls, a stage writes a `pending` verdict row
for every instance it must still call the judge for (replaced as each answer is derived): a run killed, or stopped
by a budget, at any stage leaves them, and final verdicts are refused (`PartialCascade`) until a run completes.

Retries follow the cause: a failed call is sent again by the next run up to the cascade's `max_attempts`, except
that a call the server refused for its credentials (401/403) is not counted (the run after the key is fixed sends
it), and a call that timed out `max_timeouts` times in all (each possibly billed; each run's first request of it
waits twice as long per earlier timeout) is sent again only with `retry_failed`, which re-sends every failed call
once more whatever its count.

A full disk (`StoreFull`) stops the calls, not the answers: once a write to the store fails for lack of space no
new call is sent, the answers that arrive (those of the calls in flight) are kept in memory, and once the last is
in they are written into the space the store's reserve frees (`hardneg.judging.store.space`). The run then raises
`StoreFull` naming the store and saying how many of its answered calls are saved (and how many, if any, could not
be); verdicts not written are derived again, at no cost, by the next run.
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from hardneg.cluster import Engine, EngineSpec, PoolSize, resolve_engine
from hardneg.data.records import Instance
from hardneg.data.source import InstanceSource, as_source
from hardneg.errors import ConfigError
from hardneg.judging.base import Judge, JudgeStopped, config_hash
from hardneg.judging.cascade.config import CascadeConfig, StageConfig
from hardneg.judging.cascade.routing import call_key, derive_verdict, view_key
from hardneg.judging.cost import API_KINDS, Budget
from hardneg.judging.engine import LocalEngine, RayEngine, StageEngine, StageTask, make_engine
from hardneg.judging.registry import build_judge, resolve_backend
from hardneg.judging.store import DEFAULT_LEASE_S, PENDING, CallKey, ClaimKeeper, JudgmentStore, StoreFull, docids_key
from hardneg.judging.verdicts import FinalVerdict, JudgeOutput, Judgment, StageVerdict, failure_kind
from hardneg.progress import StageProgress


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
    judged_elsewhere: int = 0  # calls another runner on the same store made while this one waited (no call here)
    failures_now: dict[str, int] = field(default_factory=dict)  # this run's failed calls, by kind (401, timeout...)
    possibly_billed: int = 0  # requests that timed out after they were sent: the server may have billed them
    stopped: str = ""  # why the judge stopped the run early (authentication refused), "" otherwise


@dataclass(slots=True)
class CascadeReport:
    stages: list[StageReport] = field(default_factory=list)
    instances: int = 0
    budget: dict[str, Any] | None = None  # `Budget.report()` when the run had one
    # query_id -> final verdict of this run (filled by `hardneg.judge`; what `hardneg.relabel` reads)
    verdicts: dict[str, FinalVerdict] = field(default_factory=dict, repr=False)
    # query_id -> the stage it was routed to but not judged by (a budget stopped it): left out of `verdicts`
    pending: dict[str, int] = field(default_factory=dict, repr=False)
    # `limit` / `sample`: which queries were judged, of how many (`hardneg.data.source.Selection.to_dict`)
    selection: dict[str, Any] | None = None

    @property
    def stage_hashes(self) -> dict[int, str]:
        """{stage: view_hash}, for `JudgmentStore.final_verdicts` (this run's thresholds and routing)."""
        return {s.stage: s.view_hash for s in self.stages}

    @property
    def call_hashes(self) -> dict[int, str]:
        """{stage: config_hash}: the call identities whose records this run read or wrote."""
        return {s.stage: s.config_hash for s in self.stages}

    @property
    def failed(self) -> int:
        """Instances whose verdict, at the end of the run, is a failed or unparsable call (of any stage)."""
        return sum(s.failed + s.parse_errors for s in self.stages)

    @property
    def stopped(self) -> str:
        return next((s.stopped for s in self.stages if s.stopped), "")

    def failures(self) -> dict[str, int]:
        """This run's failed calls, summed over the stages by kind."""
        total: Counter[str] = Counter()
        for stage in self.stages:
            total.update(stage.failures_now)
        return dict(total.most_common())

    @property
    def possibly_billed(self) -> int:
        """This run's requests that timed out after they were sent (the server may have billed them)."""
        return sum(s.possibly_billed for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"instances": self.instances, "stages": [asdict(s) for s in self.stages]}
        out["failed"] = self.failed
        out["failures_now"] = self.failures()
        out["possibly_billed"] = self.possibly_billed
        out["stopped"] = self.stopped
        if self.budget is not None:
            out["budget"] = self.budget
        if self.selection is not None:
            out["selection"] = self.selection
        return out


# --- running ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Plan:
    docids: list[str]  # what the stage judges for the instance under this cascade's routing
    ask: list[str] | None  # what must be sent to the judge now (None: the store has it)
    extend: bool = False  # the call adds negatives to a score judge's existing record
    timeouts: int = 0  # possibly billed timeouts of the record's earlier calls


class _VerdictWriter:
    """Derived verdicts are written in batches (`size` rows, or every `every_s` seconds): they cost nothing to
    recompute if a run is killed (until then a killed run's instance keeps its `pending` row: not final). Once a
    full disk refused them (`full`), rows are dropped: the next run derives them again."""

    def __init__(self, store: JudgmentStore, size: int = 500, every_s: float = 2.0) -> None:
        self.store, self.size, self.every_s = store, size, every_s
        self.rows: list[StageVerdict] = []
        self.stale: list[tuple[str, int, str]] = []
        self.flushed = time.monotonic()
        self.full: StoreFull | None = None

    def add(self, verdict: StageVerdict) -> None:
        self.rows.append(verdict)
        if len(self.rows) >= self.size or time.monotonic() - self.flushed > self.every_s:
            self.flush()

    def delete(self, query_id: str, stage: int, view: str) -> None:
        self.stale.append((query_id, stage, view))
        if len(self.stale) >= self.size:
            self.flush()

    def flush(self) -> None:
        if (self.rows or self.stale) and self.full is None:
            try:
                self.store.put_verdicts(self.rows, delete=self.stale)
            except StoreFull as exc:
                self.full = exc
        self.rows, self.stale = [], []
        self.flushed = time.monotonic()


@dataclass(slots=True)
class _Answer:
    """An answer received from the judge, to be written to the store."""

    instance: Instance
    plan: _Plan
    call: CallKey
    output: JudgeOutput
    kind: str  # why it failed (`failure_kind`), "" when ok


def _accepts_budget(backend: str) -> bool:
    try:
        params = inspect.signature(resolve_backend(backend)).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "budget" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def check_budget(
    config: CascadeConfig, budget: Budget | None, *, distributed: bool, judges: dict[str, Judge] | None = None
) -> None:
    """Before any call, and before a store is opened: a budget is kept by one process, and every paid stage must be
    able to honour it."""
    if budget is None:
        return
    if distributed:
        raise ConfigError("a budget is kept by one process: run a budgeted cascade with engine 'local'", param="engine")
    for i, stage in enumerate(config.stages):
        if stage.name in (judges or {}) or "budget" in stage.params:
            continue
        if stage.backend in API_KINDS and not _accepts_budget(stage.backend):
            raise ConfigError(
                f"stages.{i} ({stage.name}): backend {stage.backend!r} cannot enforce a budget; "
                "run it without --budget (see --estimate for its cost)"
            )


class _Cascade:
    def __init__(
        self,
        source: InstanceSource,
        config: CascadeConfig,
        store: JudgmentStore,
        progress: StageProgress | None,
        judges: dict[str, Judge] | None,
        budget: Budget | None,
        engine: StageEngine | None = None,
        retry_failed: bool = False,
    ) -> None:
        self.source = source
        self.retry_failed = retry_failed
        self.started = time.time()  # `retry_failed` re-sends what failed before this run, once
        self.engine = engine or LocalEngine()
        self.config = config
        self.store = store
        self.progress = progress
        self.judges = judges or {}
        self.budget = budget
        self.views: list[str] = []  # view hash of each finished stage
        self.lease_s = DEFAULT_LEASE_S
        self.poll_s = 0.5  # how often a runner looks again at calls another runner holds
        self.run_views: dict[int, str] = {}
        self.run_calls: dict[int, str] = {}
        self.finished: set[int] = set()
        self.saved = 0  # answered calls this run has written to the store (all stages)

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
        if record is None:
            return _Plan(docids, list(docids))
        if record.status != "ok" and self._retry(record):
            return _Plan(docids, list(docids), timeouts=int(record.extra.get("timeouts", 0) or 0))
        if record.status == "ok" and stage.mode == "score":
            scored = record.scores or {}
            missing = [d for d in docids if d not in scored]
            failures = int((record.extra.get("extend_failed") or {}).get("attempts", 0))
            if missing and failures < max_attempts:
                return _Plan(docids, missing, extend=True)
        return _Plan(docids, None)

    def _retry(self, record: Judgment) -> bool:
        """Whether a failed (or unparsable) record is sent again by this run (see the module docstring)."""
        kind = failure_kind(record.status, record.reason)
        if kind == "auth" or (self.retry_failed and record.updated_at < self.started):
            return True
        if kind == "timeout" and int(record.extra.get("timeouts", 0) or 0) >= self.config.max_timeouts:
            return False
        return record.attempts < self.config.max_attempts

    def _placeholder(self, k: int, stage: StageConfig, view: str, chash: str, query_id: str) -> StageVerdict:
        """The verdict row of an instance stage k has still to call the judge for (see the module docstring)."""
        status: Any = PENDING
        return StageVerdict(query_id, k, view, chash, stage.name, [], status, "not judged yet", [], [])

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
            for instance in self.source:
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
                    writer.add(self._placeholder(k, stage, view, chash, instance.query_id))
            writer.flush()
            if writer.full is not None:  # no `pending` rows: the stage must not become part of the current run
                raise writer.full
            # the run becomes the store's current one once this stage's `pending` rows are written: a reader never
            # takes a stage whose instances are not all accounted for as complete
            self._record_run(k, chash, view, finished=False)
            start = time.perf_counter()
            if self.progress:
                self.progress(stage.name, 0, todo)
            # pass 2: the calls, each claimed before it is sent (no other runner makes it) and stored as it arrives
            if todo:
                claims = ClaimKeeper(self.store, lease_s=self.lease_s)
                try:
                    waiting = self._calls(k, stage, judge, view, report, writer, claims, todo, None)
                    while waiting:  # calls other runners are making: wait for them, or take over a dead runner's
                        time.sleep(self.poll_s)
                        waiting = self._calls(k, stage, judge, view, report, writer, claims, todo, waiting)
                except JudgeStopped as exc:
                    report.stopped = str(exc)
                finally:
                    claims.close()
            report.possibly_billed = int(getattr(judge, "stats", {}).get("possibly_billed", 0))
            report.wall_s = time.perf_counter() - start
        finally:
            writer.flush()
            if stage.name not in self.judges:
                judge.close()
        self._tally(report, k == len(self.config.stages))
        self.views.append(report.view_hash)
        self._record_run(k, report.config_hash, view, finished=not report.stopped and not report.unjudged)
        return report

    def _record_run(self, k: int, chash: str, view: str, *, finished: bool) -> None:
        """The store's current run, updated as each stage starts and ends: readers of final verdicts see which
        stages of this cascade have judged everything routed to them (see `JudgmentStore.pending`)."""
        self.run_views[k], self.run_calls[k] = view, chash
        if finished:
            self.finished.add(k)
        self.store.set_current_run(
            {
                "name": self.config.name,
                "views": dict(self.run_views),
                "calls": dict(self.run_calls),
                "stages": len(self.config.stages),
                "finished": sorted(self.finished),
            }
        )

    def _calls(
        self,
        k: int,
        stage: StageConfig,
        judge: Judge,
        view: str,
        report: StageReport,
        writer: _VerdictWriter,
        claims: ClaimKeeper,
        todo: int,
        only: set[str] | None,
    ) -> set[str]:
        """Send what stage k still needs (of `only`, when given) and store each answer; returns the query_ids
        whose calls another live runner holds. A full disk: see the module docstring."""
        key = call_key(k, stage, judge)
        chash = config_hash(key)
        asked: dict[str, tuple[_Plan, CallKey]] = {}  # only calls in flight are held
        waiting: set[str] = set()
        full: StoreFull | None = None  # the store's disk is full: no new call is sent
        held: list[_Answer] = []  # answers that arrived since, written once the calls in flight are back

        def take_over(instance: Instance, plan: _Plan) -> None:
            """Another runner judged it: derive its verdict from the store, no call."""
            record = self._record(k, stage, chash, instance.query_id, plan.docids)
            assert record is not None
            report.judged_elsewhere += 1
            writer.add(self._derive(k, stage, view, record, plan.docids, report))

        def items() -> Iterator[tuple[Instance, list[str]]]:
            nonlocal full
            for instance in self.source:
                if full is not None or writer.full is not None:
                    return  # the judge still hands back the answers of the calls in flight
                if only is not None and instance.query_id not in only:
                    continue
                plan = self._plan(k, stage, chash, instance)
                if plan is None:
                    continue
                if plan.ask is None:
                    # stored since pass 1 by another runner, whose verdict may not be written yet (it writes them
                    # in batches, and may be killed first): derive it here (pass 1 derived the reused ones)
                    # (`get_verdict` is None for a `pending` row too)
                    if only is not None or self.store.get_verdict(instance.query_id, k, view) is None:
                        take_over(instance, plan)
                    continue
                call = (instance.query_id, k, chash, docids_key(plan.ask) if stage.mode == "verdict" else "")
                try:
                    acquired = claims.acquire(call)
                except StoreFull as exc:
                    full = exc
                    return
                if not acquired:
                    waiting.add(instance.query_id)
                    continue
                plan = self._plan(k, stage, chash, instance)  # read again: its runner may have just stored it
                if plan is None or plan.ask is None:
                    claims.release(call)
                    if plan is not None:
                        take_over(instance, plan)
                    continue
                asked[instance.query_id] = (plan, call)
                if isinstance(timeout_plan, dict):
                    allowed = self.config.max_timeouts - (0 if self.retry_failed else plan.timeouts)
                    timeout_plan[instance.query_id] = (plan.timeouts, max(1, allowed))
                yield instance, plan.ask

        # a judge that bounds its possibly billed timeouts (the API judges) is told each instance's history
        timeout_plan = getattr(judge, "timeout_plan", None)
        if isinstance(timeout_plan, dict) and hasattr(judge, "max_timeouts"):
            judge.max_timeouts = self.config.max_timeouts
        task = StageTask(
            stage.name, stage.backend, dict(stage.params), stage.mode,  # type: ignore[arg-type]
            PoolSize(stage.workers, stage.num_cpus, stage.num_gpus), stage.batch_size,
        )  # fmt: skip
        try:
            for instance, out in self.engine.judge_items(task, judge, items()):
                plan, call = asked.pop(instance.query_id)
                assert plan.ask is not None
                qid = instance.query_id
                if out.extra.get("not_sent"):
                    asked[qid] = (plan, call)  # the judge stopped before sending it: unjudged, not a failed attempt
                    continue
                kind = failure_kind(out.status, out.reason) if out.status != "ok" else ""
                if plan.timeouts or out.extra.get("timeouts"):
                    # every possibly billed timeout of the call, over all runs: bounds its re-sending
                    out.extra["timeouts"] = plan.timeouts + int(out.extra.get("timeouts", 0) or 0)
                answer = _Answer(instance, plan, call, out, kind)
                if full is None:
                    try:
                        record = self._store_answer(k, stage, key, chash, answer)
                    except StoreFull as exc:
                        full = exc
                if full is not None:
                    held.append(answer)
                    continue
                self.saved += 1
                report.extended += int(plan.extend)
                claims.release(call)
                if out.status != "ok":
                    report.failures_now[kind] = report.failures_now.get(kind, 0) + 1
                report.judged_now += 1
                report.negatives_judged_now += len(plan.ask)
                report.tokens_in_now += out.tokens_in
                report.tokens_out_now += out.tokens_out
                writer.add(self._derive(k, stage, view, record, plan.docids, report))
                if self.progress:
                    self.progress(stage.name, report.judged_now + report.judged_elsewhere, todo)
        finally:
            # a budget (or a stopped judge) leaves these without a call: no verdict of this stage
            report.unjudged += len(asked)
            for _plan, call in asked.values():
                claims.release(call)
            lost = self._write_held(k, stage, key, chash, held) if held else 0
        full = full or writer.full
        if full is not None:
            raise StoreFull(self.store.path, saved=self.saved, lost=lost) from full
        return waiting

    def _store_answer(self, k: int, stage: StageConfig, key: dict[str, Any], chash: str, answer: _Answer) -> Judgment:
        """Write an answer to its record (a score judge's answer for more negatives is merged into it)."""
        qid, out, docset = answer.instance.query_id, answer.output, answer.call[3]
        if answer.plan.extend:
            return self.store.merge_scores(qid, k, stage.name, key, out, order=answer.instance.negative_ids)
        # refused credentials are no attempt: the run after the key is fixed sends the call again
        self.store.put(qid, k, stage.name, key, out, docset=docset, free=answer.kind == "auth")
        record = self.store.get(qid, k, chash, docset=docset)
        assert record is not None
        return record

    def _write_held(self, k: int, stage: StageConfig, key: dict[str, Any], chash: str, held: list[_Answer]) -> int:
        """Write the answers held since the disk filled into the space the store's reserve frees; returns how many
        could not be written. One transaction writes each page once, so it fits the most; what does not fit is
        tried in halves."""
        self.store.free_reserve()

        def unwritten(batch: list[_Answer]) -> int:
            try:
                with self.store.transaction():
                    for answer in batch:
                        self._store_answer(k, stage, key, chash, answer)
            except StoreFull:
                if len(batch) == 1:
                    return 1
                half = len(batch) // 2
                return unwritten(batch[:half]) + unwritten(batch[half:])
            self.saved += len(batch)
            return 0

        return unwritten(held)

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
    data: Any,
    config: CascadeConfig,
    store: JudgmentStore,
    *,
    progress: StageProgress | None = None,
    judges: dict[str, Judge] | None = None,
    budget: Budget | None = None,
    allow_empty: bool = False,
    engine: Engine | EngineSpec | StageEngine = "local",
    ray_address: str | None = None,
    retry_failed: bool = False,
) -> CascadeReport:
    """Run (or resume) the cascade over `data`; every result goes to `store` as it arrives.

    `data`: instances in memory, a `datasets.Dataset`, a training file or a `load_dataset` spec
    (`hardneg.data.source.as_source`); it is read once per stage pass, never held whole unless it was given so.

    A call already in the store (same judge config, same stage) is never made again: thresholds, fusion and
    routing are applied when deriving verdicts, so changing them costs no call. A score stage asked for more
    negatives than its record holds judges only the new ones. The run's derived verdicts become the store's
    current ones (`JudgmentStore.final_verdicts()`).

    `judges` may supply ready judges by stage name (otherwise each stage's is built from its backend and params,
    and closed after the stage). `budget` is shared by every stage whose judge takes one (the API judges); a
    paid stage that cannot honour it is refused before any call. `progress(stage_name, done, total)` is called
    as calls finish.

    Several runners may share one store (processes, machines): each call is claimed before it is sent, so no call
    is made twice; a runner waits for the calls another holds. A judge that stops the run (credentials refused)
    sets `report.stopped` and ends the cascade; failed calls are counted by kind in `report.failures()`.
    Failed calls are retried as the module docstring says (`max_attempts`, `max_timeouts`); `retry_failed` sends
    every failed call once more whatever its count. A store whose disk fills stops the calls and raises
    `StoreFull` once the answers in flight are written (module docstring).

    `engine`: ``"local"`` (every call in this process) or ``"ray"`` (each stage in a Ray actor pool sized by the
    stage's `workers`, `num_cpus`, `num_gpus` and `batch_size`; the cluster at `ray_address`, else
    ``$RAY_ADDRESS``, else a local Ray started for the run): `hardneg.judging.engine`. Both store the same calls
    under the same keys, so a run may be resumed on either. A budget is kept in one process: ``ray`` refuses it.
    An engine object (`hardneg.judging.engine.RayEngine`) may be handed in to keep one Ray session and its
    per-stage figures (`stats`, `blocks`) across runs; the caller closes it.
    """
    given = engine if isinstance(engine, LocalEngine | RayEngine) else None
    if given is None:
        spec = resolve_engine(engine, ray_address)  # type: ignore[arg-type]
        distributed = spec.distributed
    else:
        distributed = given.kind == "ray"
    check_budget(config, budget, distributed=distributed, judges=judges)
    source = as_source(data)
    # Ray is joined when a stage first sends calls; an engine handed in is the caller's to close
    stage_engine = given if given is not None else make_engine(spec, ready=judges or ())
    if isinstance(stage_engine, RayEngine) and judges:
        stage_engine.ready |= set(judges)
    runner = _Cascade(source, config, store, progress, judges, budget, stage_engine, retry_failed=retry_failed)
    report = CascadeReport()
    # validates the whole input before any paid call
    report.instances = source.validate(allow_empty=allow_empty)
    try:
        for k, stage in enumerate(config.stages, start=1):
            report.stages.append(runner.run_stage(k, stage))
            if report.stages[-1].stopped:
                break  # the judge cannot go on (credentials refused): later stages would only fail too
    except StoreFull as exc:
        if exc.saved is not None:
            raise
        # a write other than an answer's failed (a verdict, the run's record): every answered call is in the store
        raise StoreFull(store.path, saved=runner.saved) from exc
    finally:
        if given is None:
            stage_engine.close()
    if budget is not None:
        report.budget = budget.report()
    return report
