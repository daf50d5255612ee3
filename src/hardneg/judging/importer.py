"""Import verdicts already paid for: judged rows of the reference implementation become stage-N judgments.

A judged row is a Tevatron row plus `negative_passage_ids` (prompt order: `Doc (i)` is the i-th id),
`response` (the raw LLM text) and `finish_reason` (a string, or a list in the reference's stage-2 files).
Each row is parsed with `parse_verdict` and stored as one judgment; rows that cannot be parsed are stored
as `parse_error` with the reason (and counted), never as "no false negatives". Importing the same rows again
changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardneg.data.io import iter_raw_rows
from hardneg.errors import InputError
from hardneg.judging.base import config_hash
from hardneg.judging.prompts.parse import verdict_output
from hardneg.judging.store import JudgmentStore

IMPORT_BACKEND = "import"


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    parsed: int = 0  # stored with status ok
    failed: int = 0  # stored with status parse_error
    unchanged: int = 0  # already in the store with the same response
    flagged: int = 0  # parsed rows listing at least one negative
    reasons: Counter[str] = field(default_factory=Counter)  # parse failure reason -> count
    config_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": dict(self.reasons.most_common())}


def import_config(judge_name: str, stage: int) -> dict[str, Any]:
    """The config recorded for imported judgments (the judge is named by the user, e.g. its model)."""
    return {"backend": IMPORT_BACKEND, "model": judge_name, "source": "reference-implementation", "stage": stage}


def _id_list(value: Any, path: Path, line: int, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise InputError(path, line, name, "expected a list of docids")
    return [str(v) for v in value]


def _row_docids(row: dict[str, Any], path: Path, line: int) -> list[str]:
    if "negative_passage_ids" in row and row["negative_passage_ids"] is not None:
        return _id_list(row["negative_passage_ids"], path, line, "negative_passage_ids")
    negatives = row.get("negative_passages")
    if isinstance(negatives, list) and all(isinstance(p, dict) and "docid" in p for p in negatives):
        return [str(p["docid"]) for p in negatives]
    raise InputError(path, line, "negative_passage_ids", "missing (and no negative_passages with docids)")


def judged_rows(paths: Iterable[str | Path]) -> Iterator[tuple[str, list[str], str | None, Any]]:
    """(query_id, docids in prompt order, response, finish_reason) of each judged row; a bad row, or a query_id
    met twice in one file (which verdict is meant?), raises `InputError` naming file, line and field."""
    for raw_path in paths:
        path = Path(raw_path)
        first: dict[str, int] = {}
        rows = 0
        for line, row in iter_raw_rows(path):
            rows += 1
            if not isinstance(row, dict):
                raise InputError(path, line, "-", "expected a JSON object")
            if row.get("query_id") is None:
                raise InputError(path, line, "query_id", "missing")
            query_id = str(row["query_id"])
            seen = first.setdefault(query_id, line)
            if seen != line:
                raise InputError(path, line, "query_id", f"duplicate query_id {query_id!r} (first at line {seen})")
            if "response" not in row:
                raise InputError(path, line, "response", "missing: not a judged row")
            response = row["response"]
            if response is not None and not isinstance(response, str):
                raise InputError(path, line, "response", "expected a string")
            yield query_id, _row_docids(row, path, line), response, row.get("finish_reason")
        if rows == 0:
            raise InputError(path, None, "-", "no judged rows: the file is empty")


def check_judged_rows(paths: Iterable[str | Path]) -> int:
    """Read every judged row of `paths` (`judged_rows`) and return how many there are, storing nothing."""
    return sum(1 for _ in judged_rows(paths))


def import_judgments(
    paths: Sequence[str | Path] | Iterable[str | Path],
    stage: int,
    judge_name: str,
    store: JudgmentStore,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Store each judged row of `paths` as a stage-`stage` judgment by `judge_name`.

    Every file is checked before anything is stored, so a bad row (InputError: file, line, field) leaves the
    store untouched.
    """
    if stage < 1:
        raise InputError("-", None, "stage", f"stage must be >= 1, got {stage}")
    config = import_config(judge_name, stage)
    chash = config_hash(config)
    report = ImportReport(config_hash=chash)

    paths = list(paths)
    check_judged_rows(paths)  # a first pass checks every row, so bad input stores nothing
    for query_id, docids, response, finish in judged_rows(paths):
        report.rows += 1
        out = verdict_output(response, docids, finish)
        out.extra = {"imported": True}
        old = store.get(query_id, stage, chash)
        if old is not None and old.raw_response == response and old.finish_reason == out.finish_reason:
            report.unchanged += 1
        else:
            store.put(query_id, stage, judge_name, config, out, count_attempt=False)
        if out.status == "ok":
            report.parsed += 1
            report.flagged += bool(out.better or out.worse)
        else:
            report.failed += 1
            report.reasons[out.reason] += 1
        if progress:
            progress(report.rows)
    return report


__all__ = ["ImportReport", "check_judged_rows", "import_config", "import_judgments", "judged_rows"]
