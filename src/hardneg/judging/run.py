"""`judge`: run (or resume) a judging cascade over data in memory or on disk, into a judgment store.

`run_into_store` is the one way a cascade runs into a store for a verb: `judge` here, `hardneg.clean` (judge, then
relabel), and both verbs of the CLI go through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.cluster import Engine, EngineSpec, resolve_engine
from hardneg.data.source import InstanceSource, Selection, as_source, select_source
from hardneg.errors import ConfigError
from hardneg.judging.base import Judge, JudgeStopped
from hardneg.judging.cascade.config import CascadeConfig, as_config
from hardneg.judging.cascade.runner import CascadeReport, check_budget, run_cascade
from hardneg.judging.cost.budget import Budget
from hardneg.judging.store import JudgmentStore, open_store
from hardneg.progress import StageProgress


def check_store(store: JudgmentStore | str | Path | None) -> JudgmentStore | str | Path:
    """The store a run writes to: required, since a paid run must survive a crash (``":memory:"`` keeps nothing)."""
    if store is None:
        raise ConfigError("name a judgment store (a path, or ':memory:' to keep nothing)", param="store")
    return store


def run_engine(engine: Engine | EngineSpec, ray_address: str | None) -> EngineSpec:
    """The engine of a run about to start, checked: a Ray cluster that does not answer stops it here, at once."""
    return resolve_engine(engine, ray_address, probe=True)


def run_into_store(
    source: InstanceSource,
    cascade: CascadeConfig,
    store: JudgmentStore | str | Path,
    *,
    selection: Selection | None = None,
    **run: Any,
) -> CascadeReport:
    """Run `cascade` over `source` (already selected and validated) into `store` (a path is opened and closed here),
    and fill the report: `selection`, `pending` (instances routed to a stage that has not judged them: a budget)
    and `verdicts` (this run's final verdicts, pending ones left out). `run`: `run_cascade`'s keywords (`budget`,
    `judges`, `progress`, `allow_empty`, `engine`, `retry_failed`). A stopped judge is the caller's to raise
    (`report.stopped`): `judge` and `clean` carry different reports on `JudgeStopped`."""
    engine = run.get("engine", "local")
    distributed = getattr(engine, "distributed", getattr(engine, "kind", engine) == "ray")
    check_budget(cascade, run.get("budget"), distributed=distributed, judges=run.get("judges"))  # before any store
    with open_store(store) as db:
        report = run_cascade(source, cascade, db, **run)
        report.selection = selection.to_dict() if selection is not None else None
        report.pending = db.pending(report.stage_hashes)
        report.verdicts = db.final_verdicts(report.stage_hashes, allow_partial=True)
    return report


def judge(
    data: Any,
    config: CascadeConfig | dict[str, Any] | str | Path | None = None,
    store: JudgmentStore | str | Path | None = None,
    *,
    split: str | None = None,
    budget: Budget | None = None,
    judges: dict[str, Judge] | None = None,
    progress: StageProgress | None = None,
    allow_empty: bool = False,
    engine: Engine | EngineSpec = "local",
    ray_address: str | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    retry_failed: bool = False,
) -> CascadeReport:
    """Judge `data` with a cascade; every call is stored as it arrives, so a re-run resumes and never pays twice.

    `data`: instances, a `datasets.Dataset` (Tevatron columns), a training file, or a `load_dataset` spec (read
    with `split`). `config`: a `CascadeConfig`, its mapping, a YAML path, or None for the shipped local cascade.
    `store`: a `JudgmentStore` or the path of one (required: a paid run must survive a crash; ``":memory:"``
    keeps nothing). Returns the run's report; `report.verdicts` maps query_id to its final verdict, ready for
    `hardneg.relabel`; instances a budget left unjudged at a later stage are in `report.pending`, not in
    `verdicts` (relabel refuses such a report unless `allow_partial`). A judge that cannot go on (credentials
    refused) raises `JudgeStopped`, with the report so far on it; failed calls are counted in `report.failures()`.
    `engine`: ``"local"`` or ``"ray"`` (each stage in a Ray actor pool; the cluster at `ray_address`, else
    ``$RAY_ADDRESS``, else a local Ray): the same calls, stored under the same keys (`run_cascade`). A cluster
    address that does not answer is refused before anything is read; a budget with ``"ray"`` is refused too
    (a budget is kept by one process).
    Failed calls of earlier runs are sent again up to the cascade's `max_attempts` (refused credentials do not
    count), except those that timed out `max_timeouts` times (possibly billed): `retry_failed` re-sends every
    failed call once more.
    `limit=N` judges the first N instances only, `sample=N` a random N (seeded by `seed`, in input order);
    `report.selection` says how many of how many (`hardneg.data.source.select_source`).

    >>> import hardneg
    >>> from hardneg.data.sample import sample_train_path
    >>> one_stage = {"stages": [{"name": "cosine", "backend": "embedding", "t_better": 0.8}]}
    >>> report = hardneg.judge(sample_train_path(), one_stage, ":memory:")
    >>> report.instances, len(report.verdicts)
    (24, 24)
    """
    store = check_store(store)
    cascade = as_config(config)
    spec = run_engine(engine, ray_address)
    source, selection = select_source(as_source(data, split=split), limit=limit, sample=sample, seed=seed)
    source.validate(allow_empty=allow_empty)  # bad input stops here, before a store is created
    report = run_into_store(
        source, cascade, store, selection=selection, budget=budget, judges=judges, progress=progress,
        allow_empty=allow_empty, engine=spec, retry_failed=retry_failed,
    )  # fmt: skip
    if report.stopped:
        raise JudgeStopped(report.stopped, report=report)
    return report
