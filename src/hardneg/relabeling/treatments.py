"""Treatments of flagged negatives: turn final verdicts into cleaned training instances.

Treatments (RLHN paper, method.md §3):

- `default`: every instance unchanged (the baseline; flags are still counted).
- `remove`: drop every instance with at least one flagged negative.
- `hn_remove`: delete the flagged negatives, keep the instance.
- `rlhn`: move the flagged negatives into the positives.
- `rlhn+filter` (R+F, after ARHN): move the `better` negatives into the positives and delete the `worse` ones
  (they answer only partly: neither clean negatives nor positives), in one pass. With `tags` better only the
  `better` list counts, so the `worse` negatives stay negatives (as for every treatment).

Everything is keyed by docid: a verdict names negatives by docid, so shuffled or re-ordered negatives are
relabelled correctly, and no passage is ever duplicated. Unlike the reference implementation, an instance whose
final verdict failed is never treated as clean, an instance left with too few negatives is dropped (Tevatron
cannot train on zero negatives), and a verdict naming a docid that is not among the instance's negatives is an
error (or counted, never guessed at by position).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from hardneg.data.records import Instance
from hardneg.errors import InputError, config_dataclass
from hardneg.judging.verdicts import FinalVerdict

TREATMENTS = ("default", "remove", "hn_remove", "rlhn", "rlhn+filter")
TAGS = ("better", "both")
Treatment = Literal["default", "remove", "hn_remove", "rlhn", "rlhn+filter"]
Tags = Literal["better", "both"]

# Reasons an instance is dropped, in the order they are checked.
DROP_REASONS = ("failed_judgment", "ambiguous", "flagged", "too_few_negatives")


@config_dataclass
class RelabelOptions:
    """How final verdicts change a training file (checked when made: `ConfigError` naming the field)."""

    treatment: Treatment = "rlhn"
    # Which verdict lists count as flagged: `better` only, or `better` and `worse`.
    tags: Tags = "both"
    # Instances with more flagged negatives than this are dropped as ambiguous (None: no limit).
    max_flags: Annotated[int, Field(ge=0)] | None = 8
    # Subsets passed through unchanged whatever their verdicts: ArguAna's "relevant" passage is the best
    # counter-argument, so a negative close to it is not a missed positive (RLHN skips it too). Counted per subset
    # (`skipped_subset`, `RelabelReport.skipped_subsets`); () relabels every subset. Kept as a tuple; a string is
    # read as a comma-separated list.
    skip_subsets: Sequence[str] = ("arguana",)
    # An instance left with fewer negatives than this after the treatment is dropped.
    min_negatives: Annotated[int, Field(ge=0)] = 1
    # What to do with an instance whose final verdict failed (status != ok): keep it unchanged, or drop it.
    on_failed: Literal["keep", "drop"] = "keep"
    # A verdict docid that is not among the instance's negatives: raise InputError, or count and ignore it.
    on_unknown: Literal["error", "count"] = "error"

    @field_validator("skip_subsets", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        return [s for s in value.split(",") if s] if isinstance(value, str) else value

    @field_validator("skip_subsets")
    @classmethod
    def _as_tuple(cls, value: Sequence[str]) -> tuple[str, ...]:
        return tuple(value)

    def flagged(self, verdict: FinalVerdict) -> list[str]:
        """The verdict's flagged docids (better, then worse if `tags` is both), each once."""
        lists = [verdict.better, verdict.worse] if self.tags == "both" else [verdict.better]
        return list(dict.fromkeys(docid for docids in lists for docid in docids or ()))


@dataclass
class SubsetCounts:
    """What the treatment did to one subset (or to the whole file)."""

    instances_in: int = 0
    kept: int = 0  # written unchanged
    changed: int = 0  # written with negatives removed or moved
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    flagged_instances: int = 0  # instances with at least one flagged negative (before any drop)
    flags: int = 0  # flagged negatives over all judged instances
    negatives_removed: int = 0  # deleted by hn_remove
    negatives_moved: int = 0  # moved to the positives by rlhn
    positives_after: int = 0  # positives in the written instances
    negatives_after: int = 0  # negatives in the written instances
    unjudged: int = 0  # no verdict: passed unchanged
    not_final: int = 0  # of those, routed to a stage that has not judged them yet (partial verdicts allowed)
    failed: int = 0  # final verdict failed: passed unchanged (on_failed=keep) or dropped
    skipped_subset: int = 0  # in skip_subsets: passed unchanged
    unknown_docids: int = 0  # verdict docids not among the negatives (on_unknown=count)

    @property
    def written(self) -> int:
        return self.kept + self.changed

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def add(self, other: SubsetCounts) -> None:
        for name, value in asdict(other).items():
            if name == "dropped":
                for reason, count in value.items():
                    self.dropped[reason] = self.dropped.get(reason, 0) + count
            else:
                setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["written"] = self.written
        out["dropped_total"] = self.dropped_total
        return out


@dataclass
class RelabelReport:
    """Counts per subset, filled while `relabel_instances` streams."""

    options: RelabelOptions
    subsets: dict[str, SubsetCounts] = field(default_factory=dict)

    def subset(self, name: str) -> SubsetCounts:
        if name not in self.subsets:
            self.subsets[name] = SubsetCounts()
        return self.subsets[name]

    def skipped_subsets(self) -> dict[str, int]:
        """Instances passed unchanged because their subset is in `skip_subsets`, by subset (only those with any)."""
        return {name: c.skipped_subset for name, c in sorted(self.subsets.items()) if c.skipped_subset}

    @property
    def total(self) -> SubsetCounts:
        total = SubsetCounts()
        for counts in self.subsets.values():
            total.add(counts)
        return total

    def to_dict(self) -> dict[str, Any]:
        options = asdict(self.options)
        options["skip_subsets"] = list(self.options.skip_subsets)
        return {
            "options": options,
            "subsets": {name: counts.to_dict() for name, counts in sorted(self.subsets.items())},
            "total": self.total.to_dict(),
            "skipped_subsets": self.skipped_subsets(),
        }


def _treat(
    inst: Instance, verdict: FinalVerdict, options: RelabelOptions, counts: SubsetCounts, where: tuple[str, int | None]
) -> Instance | None:
    """Apply the treatment to one judged instance; None means dropped (the reason is counted)."""
    if verdict.status != "ok":
        counts.failed += 1
        if options.on_failed == "drop":
            counts.dropped["failed_judgment"] += 1
            return None
        return inst

    negative_ids = set(inst.negative_ids)
    flagged = options.flagged(verdict)
    unknown = [docid for docid in flagged if docid not in negative_ids]
    if unknown:
        if options.on_unknown == "error":
            raise InputError(
                where[0],
                where[1],
                "negative_passages",
                f"query {inst.query_id!r}: the verdict (stage {verdict.stage}) names docids that are not among the "
                f"instance's negatives: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} "
                "(were the verdicts made on another version of this file? use on_unknown=count to ignore them)",
            )
        counts.unknown_docids += len(unknown)
        flagged = [docid for docid in flagged if docid in negative_ids]

    if not flagged:
        return inst
    counts.flagged_instances += 1
    counts.flags += len(flagged)
    if options.treatment == "default":
        return inst
    if options.max_flags is not None and len(flagged) > options.max_flags:
        counts.dropped["ambiguous"] += 1
        return None
    if options.treatment == "remove":
        counts.dropped["flagged"] += 1
        return None

    flagged_set = set(flagged)
    negatives = [p for p in inst.negatives if p.docid not in flagged_set]
    positives = list(inst.positives)
    moved = 0
    # what becomes a positive: every flag (rlhn), the `better` ones (rlhn+filter: `worse` is only removed)
    promote = flagged_set if options.treatment == "rlhn" else flagged_set & set(verdict.better)
    if options.treatment in ("rlhn", "rlhn+filter"):
        seen = set(inst.positive_ids)
        # Walk the instance's own negatives (not the verdict's list): the passage objects come from the data,
        # and a docid repeated among the negatives is added once.
        for passage in inst.negatives:
            if passage.docid in promote and passage.docid not in seen:
                positives.append(passage)
                seen.add(passage.docid)
                moved += 1
    if len(negatives) < options.min_negatives:
        counts.dropped["too_few_negatives"] += 1
        return None
    counts.negatives_moved += moved
    counts.negatives_removed += len(inst.negatives) - len(negatives) - moved
    return Instance(
        query_id=inst.query_id,
        query=inst.query,
        positives=positives,
        negatives=negatives,
        subset=inst.subset,
        extra=dict(inst.extra),
    )


def relabel_instances(
    instances: Iterable[Instance],
    verdicts: Mapping[str, FinalVerdict],
    options: RelabelOptions | None = None,
    *,
    report: RelabelReport | None = None,
    source: str | Path = "<instances>",
) -> Iterator[Instance]:
    """Yield the treated instances (dropped ones are left out), counting into `report` as it goes.

    `verdicts` maps query_id to the instance's final verdict (its `pending`, where it has one, names the instances
    a stage has not judged yet: counted `not_final`). `source` names the input in error messages
    (the line is the instance's position, 1-based, which is the line of a JSONL file).
    """
    options = options or RelabelOptions()
    report = report if report is not None else RelabelReport(options)
    skip = {s.lower() for s in options.skip_subsets}
    pending = getattr(verdicts, "pending", None) or {}
    for number, inst in enumerate(instances, start=1):
        counts = report.subset(inst.subset)
        counts.instances_in += 1
        if inst.subset.lower() in skip:
            counts.skipped_subset += 1
            out: Instance | None = inst
        else:
            verdict = verdicts.get(inst.query_id)
            if verdict is None:
                counts.unjudged += 1
                counts.not_final += inst.query_id in pending
                out = inst
            else:
                out = _treat(inst, verdict, options, counts, (str(source), number))
        if out is None:
            continue
        if out is inst:
            counts.kept += 1
        else:
            counts.changed += 1
        counts.positives_after += len(out.positives)
        counts.negatives_after += len(out.negatives)
        yield out


def verdicts_from_dicts(rows: Iterable[Mapping[str, Any]]) -> dict[str, FinalVerdict]:
    """Build a verdict map from plain dicts (query_id, stage, better, worse, status, reason)."""
    out: dict[str, FinalVerdict] = {}
    for row in rows:
        verdict = FinalVerdict(
            query_id=str(row["query_id"]),
            stage=int(row.get("stage", 1)),
            better=[str(d) for d in row.get("better") or []],
            worse=[str(d) for d in row.get("worse") or []],
            status=row.get("status", "ok"),
            reason=row.get("reason", ""),
        )
        out[verdict.query_id] = verdict
    return out
