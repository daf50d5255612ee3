"""Streaming readers and writers of training instances.

Memory stays constant in the number of rows: rows are read, checked and yielded one at a time (only the set
of seen query_ids grows, to catch duplicates). Formats and the Parquet / HF row codec: `hardneg.data.formats`.
Parquet is written with zstd in row groups of about 4 MB of text (at most 1,024 rows), without column
statistics, and read one row group at a time.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from hardneg.data.atomic import atomic_dir, atomic_path
from hardneg.data.formats import (
    EXTRA_JSON,
    JSON_COLUMNS_KEY,
    PASSAGES,
    Format,
    decode_row,
    detect_format,
    encode_passages,
    output_kind,
    parquet_json_columns,
    passage_type,
    tevatron_types,
)
from hardneg.data.hf import count_hf_rows, iter_hf_rows, save_parquet_as_hf
from hardneg.data.records import Instance
from hardneg.data.validate import check_row
from hardneg.errors import HardnegError, InputError, Problem
from hardneg.progress import CountProgress


def open_text(path: str | Path, mode: str = "rt") -> IO[str]:
    """Open a text file, gzip-compressed when its name ends in `.gz`."""
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]  # text mode: IO[str]
    return open(path, mode, encoding="utf-8")


def _iter_jsonl_lenient(path: Path) -> Iterator[tuple[int, Any, Problem | None]]:
    """(line, object, None) per non-blank line, or (line, None, problem) for a line that is not JSON.

    A broken line does not stop the scan (later lines are independent); a damaged file (bad gzip,
    truncated stream, bad UTF-8) ends it with one problem.
    """
    if not path.exists():
        raise InputError(path, None, "-", "no such file")
    number = 0
    try:
        # Bytes, decoded line by line: a bad UTF-8 sequence is reported on its own line, not where a buffer ended.
        with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problem = f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}"
                    yield number, None, Problem(str(path), number, "-", problem)
                    continue
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line), None
                except json.JSONDecodeError as exc:
                    yield number, None, Problem(str(path), number, "-", json_problem(exc))
    except (OSError, EOFError, zlib.error) as exc:
        yield number + 1, None, Problem(str(path), number + 1, "-", f"unreadable file: {exc}")


def json_problem(exc: json.JSONDecodeError) -> str:
    """`broken JSON: <what> at column N` (json's own message for some errors already ends in "at")."""
    return f"broken JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line; bad JSON raises InputError."""
    for number, obj, problem in _iter_jsonl_lenient(Path(path)):
        if problem is not None:
            raise InputError(problem.path, problem.line, problem.field, problem.message)
        yield number, obj


def _iter_parquet_rows(path: Path, batch_size: int) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise InputError(path, None, "-", "no such file")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, None, "-", f"not a readable Parquet file: {exc}") from None
    json_columns = parquet_json_columns(parquet.schema_arrow)
    number = 0
    # One row group at a time: ParquetFile.iter_batches keeps allocations across row groups (Arrow memory
    # grew ~1.6 KB per row in the 200K-row benchmark); read_row_group frees each group once it is consumed.
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group)
        for batch in table.to_batches(max_chunksize=batch_size):
            for row in batch.to_pylist():
                number += 1
                yield number, (decode_row(row, json_columns) if json_columns is not None else row)
        del table


def iter_raw_rows(path: str | Path, *, batch_size: int = 256) -> Iterator[tuple[int, Any]]:
    """Yield (line or row number, row dict) from any supported format, unvalidated."""
    fmt = detect_format(path)
    if fmt in ("jsonl", "jsonl.gz"):
        yield from iter_jsonl(path)
    elif fmt == "parquet":
        yield from _iter_parquet_rows(Path(path), batch_size)
    else:
        yield from iter_hf_rows(path)


def _iter_rows_lenient(path: str | Path) -> Iterator[tuple[int, Any, Problem | None]]:
    if detect_format(path) in ("jsonl", "jsonl.gz"):
        yield from _iter_jsonl_lenient(Path(path))
    else:
        for number, row in iter_raw_rows(path):
            yield number, row, None


def count_rows(path: str | Path) -> int | None:
    """Row count when it is cheap to know (Parquet metadata, HF folders); None for JSONL."""
    fmt = detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:
            return None
    if fmt == "hf":
        return count_hf_rows(path)
    return None


def iter_checked_rows(path: str | Path) -> Iterator[tuple[int, Any, list[Problem]]]:
    """Yield (line, row, problems) for every row, duplicate query_ids included in problems.

    Broken JSON lines are yielded with row None and their problem; scanning goes on after them.
    """
    # query_id -> first line. This is the only state that grows with the file (~100 bytes per row).
    seen: dict[str, int] = {}
    where = str(path)
    for number, row, bad in _iter_rows_lenient(path):
        if bad is not None:
            yield number, None, [bad]
            continue
        problems = check_row(row, where, number)
        if isinstance(row, dict) and isinstance(row.get("query_id"), (str, int)):
            qid = str(row["query_id"])
            first = seen.setdefault(qid, number)
            if first != number:
                problems.append(
                    Problem(where, number, "query_id", f"duplicate query_id {qid!r} (first at line {first})")
                )
        yield number, row, problems


def read_instances(path: str | Path, *, progress: CountProgress | None = None) -> Iterator[Instance]:
    """Stream validated instances; the first bad row raises InputError (file, line, field).

    `progress(n)` is called after each instance with the count so far.
    """
    for count, (_number, row, problems) in enumerate(iter_checked_rows(path), start=1):
        if problems:
            raise InputError.from_problems(problems)
        yield Instance.from_row(row)
        if progress is not None:
            progress(count)


def validate_file(path: str | Path, *, max_errors: int | None = None) -> list[Problem]:
    """Every problem of a file (up to `max_errors`)."""
    found: list[Problem] = []
    for _number, _row, problems in iter_checked_rows(path):
        found.extend(problems)
        if max_errors is not None and len(found) >= max_errors:
            return found[:max_errors]
    return found


# --------------------------------------------------------------------------------------------- writers


class RowSink:
    """A streaming row writer. Use `open_writer`; call `write(row)` per row."""

    count: int = 0

    def write(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (only on success)."""

    def abort(self) -> None:
        """Release handles after a failure; the atomic wrapper removes the temp output."""


class _JsonlSink(RowSink):
    def __init__(self, path: Path, *, gz: bool) -> None:
        self.count = 0
        self._raw = open(path, "wb")  # noqa: SIM115
        # mtime=0 and no file name (it would be the random temp name) keep the output byte-identical across runs.
        stream: Any = (
            gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", mtime=0, compresslevel=6) if gz else self._raw
        )
        self._handle = io.TextIOWrapper(stream, encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._handle.write(json.dumps(row, ensure_ascii=False))
        self._handle.write("\n")
        self.count += 1

    def close(self) -> None:
        self._handle.close()
        self._raw.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _approx_bytes(row: dict[str, Any]) -> int:
    """Rough size of a row: its query and passage texts (what dominates Tevatron rows)."""
    size = 64
    for value in row.values():
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    text = item.get("text")
                    size += 32 + (len(text) if isinstance(text, str) else 0)
                elif isinstance(item, str):
                    size += len(item)
    return size


class _ParquetSink(RowSink):
    """Buffers rows, fixes the schema on the first batch, then writes one row group per batch."""

    def __init__(
        self, path: Path, *, types: dict[str, Any] | None, batch_size: int = 1024, max_batch_bytes: int = 4 << 20
    ) -> None:
        self.count = 0
        self.buffered_bytes = 0
        self.max_batch_bytes = max_batch_bytes
        self.path = path
        # Explicit types (exports) are strict: every field must be typed, no JSON columns.
        self.strict = types is not None
        self.types = types if types is not None else tevatron_types()
        self.batch_size = batch_size
        self.buffer: list[dict[str, Any]] = []
        self.json_columns: list[str] = []
        self.writer: Any = None
        self.schema: Any = None

    def write(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        self.count += 1
        self.buffered_bytes += _approx_bytes(row)
        # A row group per ~4 MB of text (or batch_size rows) bounds memory whatever the row size.
        if len(self.buffer) >= self.batch_size or self.buffered_bytes >= self.max_batch_bytes:
            self._flush()

    def _open(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fields = [pa.field(name, passage_type() if kind == PASSAGES else kind) for name, kind in self.types.items()]
        if not self.strict:
            seen: dict[str, None] = {}
            for row in self.buffer:
                for key in row:
                    if key not in self.types:
                        seen.setdefault(key, None)
            self.json_columns = list(seen)
            fields += [pa.field(name, pa.string()) for name in self.json_columns]
            fields.append(pa.field(EXTRA_JSON, pa.string()))
        metadata = {JSON_COLUMNS_KEY: json.dumps(self.json_columns).encode()} if not self.strict else None
        self.schema = pa.schema(fields, metadata=metadata)
        # No column statistics: min/max of passage texts made the footer ~12 KB per row group, and the writer
        # (and later the reader) holds the whole footer in memory, which grew with the row count.
        self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd", write_statistics=False)

    def _encode(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, kind in self.types.items():
            value = row.get(name)
            out[name] = encode_passages(value) if kind == PASSAGES else value
        if self.strict:
            unknown = [key for key in row if key not in self.types]
            if unknown:
                raise HardnegError(f"{self.path}: row {self.count}: fields {unknown} have no Parquet column")
            return out
        json_set = set(self.json_columns)
        for name in self.json_columns:
            out[name] = json.dumps(row[name], ensure_ascii=False) if name in row else None
        late = {k: v for k, v in row.items() if k not in self.types and k not in json_set}
        out[EXTRA_JSON] = json.dumps(late, ensure_ascii=False) if late else None
        return out

    def _flush(self) -> None:
        import pyarrow as pa

        if self.writer is None:
            self._open()
        if not self.buffer:
            return
        try:
            table = pa.Table.from_pylist([self._encode(row) for row in self.buffer], schema=self.schema)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise HardnegError(f"{self.path}: rows do not fit the Parquet schema: {exc}") from None
        self.writer.write_table(table)
        self.buffer.clear()
        self.buffered_bytes = 0

    def close(self) -> None:
        self._flush()
        self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()


class _HfSink(RowSink):
    """Writes Parquet into the temp folder, then turns it into a `save_to_disk` folder on close."""

    def __init__(self, folder: Path, *, types: dict[str, Any] | None) -> None:
        self.count = 0
        self.folder = folder
        self.work = folder / ".hardneg-work"
        self.work.mkdir()
        self.parquet = _ParquetSink(self.work / "rows.parquet", types=types)

    def write(self, row: dict[str, Any]) -> None:
        self.parquet.write(row)
        self.count += 1

    def close(self) -> None:
        import shutil

        self.parquet.close()
        try:
            save_parquet_as_hf(
                self.work / "rows.parquet",
                self.folder,
                json_columns=self.parquet.json_columns,
                cache_dir=self.work / "cache",
            )
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def abort(self) -> None:
        self.parquet.abort()


@contextlib.contextmanager
def open_writer(
    path: str | Path,
    *,
    types: dict[str, Any] | None = None,
    fmt: Format | None = None,
    overwrite: bool = False,
    param: str = "output",
) -> Iterator[RowSink]:
    """Open an atomic streaming writer for `path` (format from `output_kind`: the path's name).

    `types` (Parquet and HF only): column name -> pyarrow type (or `PASSAGES`); given, it is the exact
    set of columns. Left out, rows are Tevatron rows and unknown fields become JSON columns.
    `fmt` overrides the format the path's name says. Nothing appears under `path` unless the block finishes
    without an exception. An existing file is replaced; an existing datasets folder only with `overwrite` and only
    if hardneg wrote it (`hardneg.data.atomic`); errors name `param`.
    """
    fmt = fmt or output_kind(path, param=param)
    target = Path(path)
    wrapper = atomic_dir(target, overwrite=overwrite, param=param) if fmt == "hf" else atomic_path(target, param=param)
    with wrapper as tmp:
        sink: RowSink
        if fmt == "hf":
            sink = _HfSink(tmp, types=types)
        elif fmt == "parquet":
            sink = _ParquetSink(tmp, types=types)
        else:
            sink = _JsonlSink(tmp, gz=fmt == "jsonl.gz")
        try:
            yield sink
        except BaseException:
            sink.abort()
            raise
        sink.close()


def write_rows(
    path: str | Path,
    rows: Iterable[dict[str, Any]],
    *,
    types: dict[str, Any] | None = None,
    progress: CountProgress | None = None,
    overwrite: bool = False,
) -> int:
    """Write plain dict rows atomically, in the format the path names (`open_writer`). Returns the row count."""
    with open_writer(path, types=types, overwrite=overwrite) as sink:
        for row in rows:
            sink.write(row)
            if progress is not None:
                progress(sink.count)
        return sink.count


def write_instances(
    path: str | Path, instances: Iterable[Instance], *, progress: CountProgress | None = None, overwrite: bool = False
) -> int:
    """Write Tevatron rows atomically (`open_writer`: an existing datasets folder only with `overwrite`). Returns the
    number written."""
    return write_rows(path, (inst.to_row() for inst in instances), progress=progress, overwrite=overwrite)
