"""`clean`: the whole job in one call, judge with a cascade (default: the shipped local one), then relabel.

The default cascade ships as `hardneg/judge/cascade/default.yaml` (the MiniLM embedding judge on every negative,
its cut calibrated on human labels; `examples/judge-local-llm.yaml` adds a local LLM stage). Verdicts go
to a judgment store (SQLite) as they arrive, so an interrupted `clean` resumes where it stopped, and a `clean`
with edited thresholds or routing on the same store makes no call it already made; a cleaned file is written
atomically at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.cluster import Engine, resolve_engine
from hardneg.data.source import as_source
from hardneg.judge.base import JudgeStopped
from hardneg.judge.cascade.config import CascadeConfig, as_config
from hardneg.judge.cascade.runner import CascadeReport, run_cascade
from hardneg.judge.cost import Budget
from hardneg.judge.store import JudgmentStore, PartialCascade, open_store
from hardneg.progress import CountProgress, StageProgress
from hardneg.relabel.run import relabel, relabel_options
from hardneg.relabel.treatments import RelabelOptions, RelabelReport, Treatment


def default_store_path(out_path: str | Path) -> Path:
    """Where `hardneg clean` keeps its judgments when no store is named: beside the output."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".judgments.sqlite")


@dataclass(slots=True)
class CleanReport:
    """What `clean` did: the cascade's report and the relabel report (pass one in to have it filled)."""

    in_path: str = ""
    out_path: str = ""
    store: str = ""
    config: str = ""
    cascade: CascadeReport = field(default_factory=CascadeReport)
    relabel: RelabelReport = field(default_factory=lambda: RelabelReport(RelabelOptions()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "in": self.in_path,
            "out": self.out_path,
            "store": self.store,
            "config": self.config,
            "judging": self.cascade.to_dict(),
            "relabel": self.relabel.to_dict(),
        }


def clean(
    data: Any,
    *,
    store: JudgmentStore | str | Path,
    config: CascadeConfig | dict[str, Any] | str | Path | None = None,
    treatment: Treatment = "rlhn",
    output: str | Path | None = None,
    options: RelabelOptions | None = None,
    budget: Budget | None = None,
    allow_partial: bool = False,
    allow_empty: bool = False,
    report: CleanReport | None = None,
    progress: StageProgress | None = None,
    relabel_progress: CountProgress | None = None,
    engine: Engine = "local",
    ray_address: str | None = None,
    **relabel_overrides: Any,
) -> Any:
    """Judge `data` with the cascade (default: the shipped local one), then relabel it; returns the kind given.

    `data`: instances, a `datasets.Dataset`, a training file (written cleaned to `output`) or a `load_dataset`
    spec. `store`: the judgment store (a path or a `JudgmentStore`): a re-run resumes from it and makes no call
    twice. `treatment` defaults to `rlhn` (flagged negatives become positives); other `RelabelOptions` fields
    may be passed by name. Instances whose last stage failed are never treated as clean. A run that left
    instances routed to a later stage unjudged (a budget) raises `PartialCascade` unless `allow_partial`; a judge
    that cannot go on raises `JudgeStopped`. Either way the store keeps every call made: the same call resumes.
    `engine` (``"local"`` or ``"ray"``) and `ray_address` say where the judges run (`hardneg.judge.run_cascade`);
    the output is the same on both.

    >>> import hardneg
    >>> from hardneg.data.sample import sample_train_path
    >>> from hardneg.data import read_instances
    >>> one_stage = {"stages": [{"name": "cosine", "backend": "embedding", "t_better": 0.75}]}
    >>> cleaned = hardneg.clean(list(read_instances(sample_train_path())), store=":memory:", config=one_stage)
    >>> len(cleaned)
    24
    """
    cascade = as_config(config)
    spec = resolve_engine(engine, ray_address)
    chosen = relabel_options(options, treatment=treatment, **relabel_overrides)
    source = as_source(data)
    source.validate(allow_empty=allow_empty)  # bad input stops here, before a store is created
    report = report if report is not None else CleanReport()
    report.in_path, report.config = source.name, cascade.name
    report.out_path = str(output) if output is not None else ""
    with open_store(store) as db:
        report.store = str(db.path)
        report.cascade = run_cascade(
            source, cascade, db, progress=progress, budget=budget, allow_empty=allow_empty, engine=spec
        )
        report.cascade.pending = db.pending(report.cascade.stage_hashes)
        verdicts = db.final_verdicts(report.cascade.stage_hashes, allow_partial=True)
    report.cascade.verdicts = verdicts
    if report.cascade.stopped:
        raise JudgeStopped(report.cascade.stopped, report=report)
    if report.cascade.pending and not allow_partial:
        raise PartialCascade(report.store, report.cascade.pending)
    return relabel(
        source, verdicts, options=chosen, output=output, report=report.relabel, progress=relabel_progress,
        allow_empty=allow_empty,
    )  # fmt: skip
