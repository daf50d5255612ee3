"""`relabel`: apply a treatment of flagged negatives to data in memory or on disk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from hardneg.data.source import as_source
from hardneg.errors import ConfigError
from hardneg.judging.store import JudgmentStore, PartialCascade, open_store
from hardneg.judging.verdicts import FinalVerdict
from hardneg.progress import CountProgress
from hardneg.relabeling.files import relabel_file
from hardneg.relabeling.treatments import RelabelOptions, RelabelReport, Treatment, relabel_instances


def as_verdicts(verdicts: Any, *, allow_partial: bool = False) -> Mapping[str, FinalVerdict]:
    """Final verdicts from a mapping, a judge run's report (`.verdicts`), a `JudgmentStore` or a store path.

    A report or store whose cascade run has not judged everything it must (killed or stopped by a budget, at any
    stage, a one-stage run included) raises `PartialCascade` with the counts unless `allow_partial` (the
    instances concerned then have no verdict: they pass unchanged, counted unjudged and `not_final`).
    """
    if isinstance(verdicts, Mapping):
        return verdicts
    if isinstance(getattr(verdicts, "verdicts", None), Mapping):
        pending = getattr(verdicts, "pending", None) or {}
        if pending and not allow_partial:
            raise PartialCascade("the judge run", pending, final=len(verdicts.verdicts))
        return verdicts.verdicts
    if isinstance(verdicts, JudgmentStore | str | Path):
        if not isinstance(verdicts, JudgmentStore) and not Path(verdicts).is_file():
            raise ConfigError(f"{verdicts}: no such judgment store", param="verdicts")
        with open_store(verdicts, readonly=True) as store:
            return store.final_verdicts(allow_partial=allow_partial)
    raise ConfigError(
        f"expected a mapping of final verdicts, a judge report or a judgment store; got {type(verdicts).__name__}",
        param="verdicts",
    )


def relabel_options(options: RelabelOptions | None = None, **overrides: Any) -> RelabelOptions:
    """`options` (default: `RelabelOptions()`) with `overrides` (its fields) replaced and checked."""
    known = {f.name for f in fields(RelabelOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown relabel option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                          param=unknown[0])  # fmt: skip
    return replace(options or RelabelOptions(), **overrides)


def relabel(
    data: Any,
    verdicts: Any,
    *,
    treatment: Treatment | None = None,
    output: str | Path | None = None,
    options: RelabelOptions | None = None,
    report: RelabelReport | None = None,
    progress: CountProgress | None = None,
    allow_partial: bool = False,
    allow_empty: bool = False,
    overwrite: bool = False,
    **option_overrides: Any,
) -> Any:
    """Remove or relabel the flagged negatives of `data`, keyed by docid; returns the kind of data given.

    `data`: instances (a list comes back), a `datasets.Dataset` (a Dataset comes back), or a training file (the
    result is written to `output`, whose path comes back). `verdicts`: final verdicts by query_id, a
    `hardneg.judge` report, or a judgment store. `treatment`: ``"default" | "remove" | "hn_remove" | "rlhn"``
    (default rlhn); other `RelabelOptions` fields (``tags``, ``max_flags``, ``skip_subsets``, ``min_negatives``,
    ``on_failed``, ``on_unknown``) may be passed by name. `report` (a `RelabelReport`) is filled in.
    `allow_partial`: see `as_verdicts`. `output` follows the one output rule (`hardneg.data.formats.check_output`:
    .jsonl, .jsonl.gz, .parquet, or .hf / a trailing / for a datasets folder; an existing folder is replaced only with
    `overwrite`, and only one hardneg wrote), checked before anything is read.

    >>> import hardneg
    >>> from hardneg.judging import FinalVerdict
    >>> from hardneg.data import Instance, Passage
    >>> inst = Instance("q1", "boil an egg", [Passage("p", "Boil it 8 minutes.")],
    ...                 [Passage("n1", "Simmer eggs for 8 minutes."), Passage("n2", "Eggs are laid by hens.")])
    >>> out = hardneg.relabel([inst], {"q1": FinalVerdict("q1", 1, better=["n1"], worse=[])})
    >>> [p.docid for p in out[0].positives], [p.docid for p in out[0].negatives]
    (['p', 'n1'], ['n2'])
    """
    if treatment is not None:
        option_overrides["treatment"] = treatment
    chosen = relabel_options(options, **option_overrides)
    source = as_source(data)
    source.check_output(output, overwrite=overwrite)
    final = as_verdicts(verdicts, allow_partial=allow_partial)
    if report is None:
        report = RelabelReport(chosen)
    else:
        report.options = chosen
    if source.kind == "path" and output is not None:
        # Streamed, in the format the output's name says; a bad row midway leaves nothing written.
        relabel_file(
            source.data, output, final, chosen, progress=progress, report=report, allow_empty=allow_empty,
            overwrite=overwrite,
        )  # fmt: skip
        return Path(output)
    source.validate(allow_empty=allow_empty)
    treated = relabel_instances(_counted(source, progress), final, chosen, report=report, source=source.name)
    return source.emit(treated, output=output, overwrite=overwrite)


def _counted(source: Any, progress: CountProgress | None) -> Any:
    for number, instance in enumerate(source, start=1):
        yield instance
        if progress is not None:
            progress(number)
