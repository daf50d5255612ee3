"""`clean`: the whole job in one call, judge with a cascade (default: the shipped local one), then relabel.

The default cascade ships as `hardneg/judging/cascade/default.yaml` (the MiniLM embedding judge on every negative,
its cut calibrated on human labels; the shipped `local-llm` config adds a local LLM stage). Verdicts go
to a judgment store (SQLite) as they arrive, so an interrupted `clean` resumes where it stopped, and a `clean`
with edited thresholds or routing on the same store makes no call it already made; a cleaned file is written
atomically at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.cluster import Engine, EngineSpec
from hardneg.data.source import Selection, as_source, filter_source, select_source
from hardneg.judging.base import JudgeStopped
from hardneg.judging.cascade.config import CascadeConfig, as_config, cut_in_force
from hardneg.judging.cascade.runner import CascadeReport
from hardneg.judging.cost.budget import Budget
from hardneg.judging.run import check_store, run_engine, run_into_store
from hardneg.judging.store import JudgmentStore, PartialCascade
from hardneg.progress import CountProgress, StageProgress
from hardneg.relabeling.run import relabel, relabel_options
from hardneg.relabeling.treatments import RelabelOptions, RelabelReport, Treatment


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
    selection: Selection | None = None  # limit / sample: which queries were used, of how many
    not_judged: int = 0  # instances of skip_subsets, passed unchanged without a judge call
    cut: dict[str, Any] | None = None  # the last stage's cut in force (`cut_in_force`: operating point, figures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "in": self.in_path,
            "out": self.out_path,
            "store": self.store,
            "config": self.config,
            "selection": self.selection.to_dict() if self.selection is not None else None,
            "not_judged_skipped_subsets": self.not_judged,
            "cut": self.cut,
            "judging": self.cascade.to_dict(),
            "relabel": self.relabel.to_dict(),
        }


def clean(
    data: Any,
    config: CascadeConfig | dict[str, Any] | str | Path | None = None,
    store: JudgmentStore | str | Path | None = None,
    *,
    treatment: Treatment = "rlhn",
    output: str | Path | None = None,
    options: RelabelOptions | None = None,
    budget: Budget | None = None,
    allow_partial: bool = False,
    allow_empty: bool = False,
    report: CleanReport | None = None,
    progress: StageProgress | None = None,
    relabel_progress: CountProgress | None = None,
    engine: Engine | EngineSpec = "local",
    ray_address: str | None = None,
    overwrite: bool = False,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    retry_failed: bool = False,
    **relabel_overrides: Any,
) -> Any:
    """Judge `data` with the cascade (default: the shipped local one), then relabel it; returns the kind given.

    `data`: instances, a `datasets.Dataset`, a training file (written cleaned to `output`) or a `load_dataset`
    spec. `store`: the judgment store (a path or a `JudgmentStore`): a re-run resumes from it and makes no call
    twice. `treatment` defaults to `rlhn` (flagged negatives become positives); other `RelabelOptions` fields
    may be passed by name. Where the config has `operating_points` (the shipped default: precision-first for
    rlhn, rlhn+filter and default, recall-first for remove and hn_remove), the last stage's cut is the one listing
    the treatment (`CascadeConfig.for_treatment`); a config without them keeps its own cut. `report.cut` says which
    cut was in force (`cut_in_force`). The stored scores serve every cut: another treatment makes no new call.
    Instances whose last stage failed are never treated as clean. A run that left instances routed to a later
    stage unjudged (a budget) raises `PartialCascade` unless `allow_partial`; a judge that cannot go on raises
    `JudgeStopped`. Either way the store keeps every call made: the same call resumes.
    `retry_failed`: re-send every failed call once more (`hardneg.judging.run_cascade`).
    `engine` (``"local"`` or ``"ray"``) and `ray_address` say where the judges run (`hardneg.judging.run_cascade`);
    the output is the same on both; a cluster address that does not answer is refused before any judging. The
    cascade runs into the store as `hardneg.judge` runs it (`hardneg.judging.run.run_into_store`). `output` follows
    the one output rule (`hardneg.data.formats.check_output`: .jsonl, .jsonl.gz, .parquet, or .hf / a trailing / for
    a datasets folder, which replaces an existing folder only with `overwrite` and only one hardneg wrote), checked
    before any judging.

    Instances of the `skip_subsets` relabel option (default ``("arguana",)``: ArguAna's "relevant" passage is a
    counter-argument, so a close negative is not a missed positive; RLHN leaves it out too) are passed through
    unchanged and never sent to a judge; `report.not_judged` counts them. `limit=N` cleans only the first N
    instances, `sample=N` a random N of them (seeded by `seed`, kept in input order): only those are judged and
    written (`hardneg.data.source.select_source`); `report.selection` says how many of how many.

    >>> import hardneg
    >>> from hardneg.data.sample import sample_train_path
    >>> from hardneg.data import read_instances
    >>> one_stage = {"stages": [{"name": "cosine", "backend": "embedding", "t_better": 0.75}]}
    >>> cleaned = hardneg.clean(list(read_instances(sample_train_path())), store=":memory:", config=one_stage)
    >>> len(cleaned)
    24
    """
    store = check_store(store)
    spec = run_engine(engine, ray_address)
    chosen = relabel_options(options, treatment=treatment, **relabel_overrides)
    # the cut that fits the treatment, where the config has operating points (the shipped default does)
    cascade, point = as_config(config).for_treatment(chosen.treatment)
    given = as_source(data)
    given.check_output(output, overwrite=overwrite)  # an output that cannot be written stops here, before judging
    source, selection = select_source(given, limit=limit, sample=sample, seed=seed)
    source.validate(allow_empty=allow_empty)  # bad input stops here, before a store is created
    report = report if report is not None else CleanReport()
    report.in_path, report.config = source.name, cascade.name
    report.cut = cut_in_force(cascade, point)
    report.out_path = str(output) if output is not None else ""
    report.selection = selection
    skip = {s.lower() for s in chosen.skip_subsets}
    judged = source
    if skip:
        report.not_judged = sum(1 for instance in source if instance.subset.lower() in skip)
        if report.not_judged:  # no call for what relabel passes unchanged anyway
            judged = filter_source(source, lambda instance: instance.subset.lower() not in skip)
    report.store = str(store.path if isinstance(store, JudgmentStore) else Path(store))
    report.cascade = run_into_store(
        judged, cascade, store, selection=selection, budget=budget, progress=progress,
        allow_empty=allow_empty or report.not_judged > 0, engine=spec, retry_failed=retry_failed,
    )  # fmt: skip
    verdicts = report.cascade.verdicts
    if report.cascade.stopped:
        raise JudgeStopped(report.cascade.stopped, report=report)
    if report.cascade.pending and not allow_partial:
        raise PartialCascade(report.store, report.cascade.pending, final=len(verdicts))
    return relabel(
        source, verdicts, options=chosen, output=output, report=report.relabel, progress=relabel_progress,
        allow_empty=allow_empty, overwrite=overwrite,
    )  # fmt: skip
