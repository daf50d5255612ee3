"""Published judgments as judges: TREC qrels (graded labels) and TREC run files (scores) read onto a testbed.

`read_external(name, path)` reads one file and tells the kind from its column count (whitespace-separated;
blank lines and lines starting with ``#`` are skipped):

- 4 columns, ``qid 0 docid grade``: a qrels file; a pair is flagged when its grade >= the `min_grade` asked for;
- 6 columns, ``qid Q0 docid rank score tag``: a run file; the score ranks the pairs (higher: more relevant).

Anything else (another column count, a grade that is not an integer, a score that is not a number, a pair twice)
raises `InputError` naming the file and the line. `judge-eval` scores each file on exactly the testbed's labelled
pairs; pairs the file lacks are counted as missing, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hardneg.errors import ConfigError, InputError

Pair = tuple[str, str]
QRELS_COLUMNS = 4
RUN_COLUMNS = 6
_SHAPES = "4 columns (qrels: qid 0 docid grade) or 6 (run: qid Q0 docid rank score tag)"


@dataclass
class ExternalJudge:
    """One file of published judgments: graded labels (qrels) or scores (run), per (query_id, docid)."""

    name: str
    path: str
    kind: str  # "qrels" or "run"
    values: dict[Pair, float]  # the grade (qrels) or the score (run) of every pair in the file


def parse_external(spec: str) -> tuple[str, Path]:
    """``NAME=FILE`` -> (name, path); a `ConfigError` (param ``external``) when either side is empty."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise ConfigError(f"expected NAME=FILE (a TREC qrels or run file); got {spec!r}", param="external")
    return name.strip(), Path(path.strip())


def read_external(name: str, path: str | Path) -> ExternalJudge:
    """Read a TREC qrels or run file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "-", f"no such file (external judge {name!r}: a TREC qrels or run file)")
    kind: str | None = None
    columns = 0
    values: dict[Pair, float] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if kind is None:
                if len(fields) not in (QRELS_COLUMNS, RUN_COLUMNS):
                    raise InputError(path, number, "-", f"expected {_SHAPES}; got {len(fields)} columns")
                columns = len(fields)
                kind = "qrels" if columns == QRELS_COLUMNS else "run"
            elif len(fields) != columns:
                raise InputError(
                    path,
                    number,
                    "-",
                    f"expected {columns} columns like the first line (a {kind} file); got {len(fields)}",
                )
            qid, docid = fields[0], fields[2]
            if kind == "qrels":
                try:
                    value = float(int(fields[3]))
                except ValueError:
                    raise InputError(path, number, "grade", f"expected an integer grade; got {fields[3]!r}") from None
            else:
                try:
                    value = float(fields[4])
                except ValueError:
                    raise InputError(path, number, "score", f"expected a number; got {fields[4]!r}") from None
                if math.isnan(value):
                    raise InputError(path, number, "score", "expected a number; got NaN")
            if (qid, docid) in values:
                raise InputError(path, number, "docid", f"pair ({qid}, {docid}) appears twice")
            values[(qid, docid)] = value
    if kind is None:
        raise InputError(path, None, "-", f"empty file (expected {_SHAPES})")
    return ExternalJudge(name, str(path), kind, values)


__all__ = ["ExternalJudge", "parse_external", "read_external"]
