"""Counts of a training file: instances, positives and negatives per instance, per subset and in total.

Bad rows do not stop the count: they are counted as problems (the first `keep_problems` kept as
examples) and left out of the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.data.io import iter_checked_rows
from hardneg.errors import Problem


@dataclass
class Tally:
    """Running count, sum, min and max of one number (constant memory)."""

    count: int = 0
    total: int = 0
    low: int | None = None
    high: int | None = None

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"mean": round(self.mean, 4), "min": self.low or 0, "max": self.high or 0, "total": self.total}


@dataclass
class GroupStats:
    instances: int = 0
    positives: Tally = field(default_factory=Tally)
    negatives: Tally = field(default_factory=Tally)

    def add(self, positives: int, negatives: int) -> None:
        self.instances += 1
        self.positives.add(positives)
        self.negatives.add(negatives)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "positives_mean": round(self.positives.mean, 4),
            "negatives_mean": round(self.negatives.mean, 4),
            "positives": self.positives.to_dict(),
            "negatives": self.negatives.to_dict(),
        }


@dataclass
class FileStats:
    path: str
    total: GroupStats = field(default_factory=GroupStats)
    subsets: dict[str, GroupStats] = field(default_factory=dict)
    rows: int = 0
    bad_rows: int = 0
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def instances(self) -> int:
        return self.total.instances

    def to_dict(self) -> dict[str, Any]:
        """The `stats --json` object."""
        total = self.total.to_dict()
        return {
            "file": self.path,
            "instances": self.instances,
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "positives_mean": total["positives_mean"],
            "negatives_mean": total["negatives_mean"],
            "positives": total["positives"],
            "negatives": total["negatives"],
            "subsets": {name: group.to_dict() for name, group in sorted(self.subsets.items())},
            "problems": self.problem_count,
            "problem_examples": [str(p) for p in self.problems],
        }


def file_stats(
    path: str | Path, *, keep_problems: int = 50, progress: Callable[[int], None] | None = None
) -> FileStats:
    """Stream `path` once and count. Rows with problems are counted in `bad_rows`, not in the numbers.

    A duplicate query_id is a problem of the later row; that row is left out too.
    """
    stats = FileStats(path=str(path))
    for _number, row, problems in iter_checked_rows(path):
        stats.rows += 1
        if problems:
            stats.bad_rows += 1
            stats.problem_count += len(problems)
            room = keep_problems - len(stats.problems)
            if room > 0:
                stats.problems.extend(problems[:room])
        else:
            positives = len(row["positive_passages"])
            negatives = len(row.get("negative_passages") or [])
            subset = row.get("subset") or ""
            stats.total.add(positives, negatives)
            stats.subsets.setdefault(subset, GroupStats()).add(positives, negatives)
        if progress is not None:
            progress(stats.rows)
    return stats
