"""Streaming readers and writers of training instances.

Memory stays constant in the number of rows: rows are read, checked and yielded one at a
time (only the set of seen query_ids grows, to catch duplicates).
Formats are chosen by extension: `.jsonl`, `.jsonl.gz`, `.parquet`, or a folder written by
HF `datasets.save_to_disk`.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hardneg.data.atomic import atomic_path
from hardneg.data.records import Instance
from hardneg.data.validate import check_row
from hardneg.errors import InputError, Problem

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


def detect_format(path: str | Path) -> str:
    """`jsonl`, `jsonl.gz`, `parquet` or `hf` (a `save_to_disk` folder)."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "hf"
    if name.endswith((".jsonl.gz", ".json.gz")):
        return "jsonl.gz"
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(path, None, "-", "unknown format: expected .jsonl, .jsonl.gz, .parquet or a datasets folder")


def open_text(path: str | Path, mode: str = "rt") -> io.TextIOBase:
    """Open a text file, gzip-compressed when its name ends in `.gz`."""
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")  # noqa: SIM115


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line; bad JSON raises InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "-", "no such file")
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, number, "-", f"broken JSON: {exc.msg} at column {exc.colno}") from None


def iter_raw_rows(path: str | Path, *, batch_size: int = 1024) -> Iterator[tuple[int, Any]]:
    """Yield (line or row number, row dict) from any supported format, unvalidated."""
    fmt = detect_format(path)
    if fmt in ("jsonl", "jsonl.gz"):
        yield from iter_jsonl(path)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    else:
        from hardneg.data.hf import iter_hf_rows

        yield from iter_hf_rows(path)


def iter_checked_rows(path: str | Path) -> Iterator[tuple[int, Any, list[Problem]]]:
    """Yield (line, row, problems) for every row, duplicate query_ids included in problems."""
    seen: dict[str, int] = {}
    where = str(path)
    try:
        for number, row in iter_raw_rows(path):
            problems = check_row(row, where, number)
            if isinstance(row, dict) and row.get("query_id") is not None:
                qid = str(row["query_id"])
                if qid in seen:
                    problems.append(Problem(where, number, "query_id", f"duplicate query_id {qid!r} (first at line {seen[qid]})"))
                else:
                    seen[qid] = number
            yield number, row, problems
    except InputError as exc:
        # Broken JSON ends the file: report it as the last problem.
        yield exc.problem.line or 0, None, [exc.problem]


def read_instances(path: str | Path) -> Iterator[Instance]:
    """Stream validated instances; the first bad row raises InputError (file, line, field)."""
    for _number, row, problems in iter_checked_rows(path):
        if problems:
            raise InputError.from_problems(problems)
        yield Instance.from_row(row)


def validate_file(path: str | Path, *, max_errors: int | None = None) -> list[Problem]:
    """Every problem of a file (up to `max_errors`)."""
    found: list[Problem] = []
    for _number, _row, problems in iter_checked_rows(path):
        found.extend(problems)
        if max_errors is not None and len(found) >= max_errors:
            return found[:max_errors]
    return found


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]], *, gz: bool) -> int:
    count = 0
    if gz:
        # mtime=0 keeps the output byte-identical across runs.
        raw = open(path, "wb")  # noqa: SIM115
        handle: Any = io.TextIOWrapper(gzip.GzipFile(fileobj=raw, mode="wb", mtime=0), encoding="utf-8")
    else:
        raw = None
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")
            count += 1
    finally:
        handle.close()
        if raw is not None:
            raw.close()
    return count


def _write_parquet(path: Path, rows: Iterable[dict[str, Any]], *, batch_size: int = 2048) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    count = 0
    batch: list[dict[str, Any]] = []
    schema = None

    def flush() -> None:
        nonlocal writer, schema
        if not batch:
            return
        table = pa.Table.from_pylist(batch, schema=schema)
        if writer is None:
            schema = table.schema
            writer = pq.ParquetWriter(path, schema)
        writer.write_table(table)
        batch.clear()

    try:
        for row in rows:
            batch.append(row)
            count += 1
            if len(batch) >= batch_size:
                flush()
        flush()
        if writer is None:
            pq.write_table(pa.table({}), path)
    finally:
        if writer is not None:
            writer.close()
    return count


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write plain dict rows atomically, in the format the extension names. Returns the row count."""
    path = Path(path)
    name = path.name.lower()
    with atomic_path(path) as tmp:
        if name.endswith((".jsonl.gz", ".json.gz")):
            return _write_jsonl(tmp, rows, gz=True)
        if name.endswith((".jsonl", ".json")):
            return _write_jsonl(tmp, rows, gz=False)
        if name.endswith(".parquet"):
            return _write_parquet(tmp, rows)
        raise InputError(path, None, "-", "unknown output format: expected .jsonl, .jsonl.gz or .parquet")


def write_instances(path: str | Path, instances: Iterable[Instance]) -> int:
    """Write Tevatron rows atomically. Returns the number written."""
    return write_rows(path, (inst.to_row() for inst in instances))
