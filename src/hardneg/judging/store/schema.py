"""The store's SQLite file: its tables, how values are kept in them, and the checks made when it is opened.

A file that is not SQLite, a SQLite database that is not a hardneg store (it is never modified) or a store of
another schema is an `InputError` (or, for the schema, a `ConfigError`) naming the file and what was found; a
store that must be written on a read-only file system is named read-only. Lists and mappings are kept as JSON
text (`dump_json`, `load_json`), and a row comes back as its typed record (`decode_row`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from hardneg.errors import ConfigError, InputError

# 2: judgments keyed by call identity (+ docset), derived verdicts in their own table.
SCHEMA_VERSION = 2
SQLITE_MAGIC = b"SQLite format 3\x00"
READ_ONLY_FS = "on a read-only file system"
READ_ONLY = "read-only"
_SQLITE_READONLY = 8

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgments (
    query_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    docset TEXT NOT NULL DEFAULT '',
    judge_name TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    params TEXT NOT NULL,
    template_hash TEXT,
    docids TEXT NOT NULL,
    raw_response TEXT,
    finish_reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    latency_s REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('ok', 'parse_error', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    better TEXT,
    worse TEXT,
    scores TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (query_id, stage, config_hash, docset)
);
CREATE INDEX IF NOT EXISTS judgments_stage ON judgments (stage, config_hash, status);
CREATE TABLE IF NOT EXISTS verdicts (
    query_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    view_hash TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    judge_name TEXT NOT NULL,
    docids TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    better TEXT NOT NULL,
    worse TEXT NOT NULL,
    scores TEXT,
    raw_scores TEXT,
    routed TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (query_id, stage, view_hash)
);
CREATE INDEX IF NOT EXISTS verdicts_view ON verdicts (stage, view_hash);
CREATE INDEX IF NOT EXISTS verdicts_call ON verdicts (stage, config_hash, updated_at);
CREATE TABLE IF NOT EXISTS claims (
    query_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    docset TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (query_id, stage, config_hash, docset)
);
CREATE INDEX IF NOT EXISTS claims_owner ON claims (owner);
"""

Record = TypeVar("Record")


def dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=False)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def decode_row(cls: Callable[..., Record], row: sqlite3.Row, json_columns: Mapping[str, type | None]) -> Record:
    """The typed record of a row whose columns are the record's fields: the JSON columns decoded; a NULL (or empty)
    one as an empty value of its type where it names one (`{"extra": dict}`), else as stored (None, [], {})."""
    values = {}
    for name in row.keys():  # noqa: SIM118 (a sqlite3.Row is not iterable by its keys)
        value = row[name]
        if name in json_columns:
            empty = json_columns[name]
            value = load_json(value)
            if empty is not None and not value:
                value = empty()
        values[name] = value
    return cls(**values)


def check_file(path: Path, *, readonly: bool) -> None:
    """A store file must be SQLite (an empty or missing file is a new store, unless read only)."""
    if not path.exists():
        if readonly:
            raise InputError(path, None, "-", "no such judgment store")
        return
    if path.is_dir():
        raise InputError(path, None, "-", "a folder, not a judgment store file")
    if readonly and path.stat().st_size == 0:
        raise InputError(path, None, "-", "empty store (0 bytes): nothing has been judged into it")
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise InputError(path, None, "-", f"not a SQLite file (it starts with {head[:8]!r}); it was not modified")


def read_only_fs(path: Path) -> bool:
    """The folder of `path` is on a file system mounted read-only (False when that cannot be told)."""
    try:
        return bool(os.statvfs(path.absolute().parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def refused_write(exc: sqlite3.Error) -> bool:
    """SQLite could not write the store or beside it (SQLITE_READONLY: the file or its folder is not writable)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the message otherwise
    return (code is not None and code & 0xFF == _SQLITE_READONLY) or "readonly database" in str(exc)


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a store of another schema, or a database that is not a store, before writing anything to it."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version = None
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = None if row is None else str(row[0])
    if version is None and "judgments" in tables:
        version = "1"  # the first format wrote its version too; a bare judgments table is older still
    # the Batch API judge may create its tables in the store's file first (`BatchState`)
    if version is None and tables - {"batches", "batch_requests", "claims"}:
        found = ", ".join(sorted(tables)[:8])
        raise InputError(
            path, None, "-",
            f"a SQLite database that is not a hardneg judgment store (tables: {found}); it was not modified: "
            "name another --store file",
        )  # fmt: skip
    if version is not None and version != str(SCHEMA_VERSION):
        raise ConfigError(
            f"{path}: judgment store schema {version}, but this hardneg reads schema {SCHEMA_VERSION} "
            "(judge calls are now keyed by the judge's identity only, not by thresholds or routing). "
            "Judge into a new --store file; the old one cannot be migrated because its score records "
            "were stored after thresholds and fusion were applied"
        )


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL mode. Runners opening one new store at once race for it, and SQLite may answer "locked"
    without waiting (its busy timeout does not cover this switch): try again, as the timeout would."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def create_tables(conn: sqlite3.Connection) -> None:
    """The tables a writer needs (those missing: a store of the previous release has no claims table).

    One transaction: a runner opening the same new store meanwhile sees no table or all of them with the version
    row, never a `judgments` table without it (which reads as the old schema 1).
    """
    conn.executescript(
        f"BEGIN IMMEDIATE;{TABLES}"
        f"INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');COMMIT;"
    )


def connect(path: Path, *, readonly: bool, in_memory: bool) -> sqlite3.Connection:
    """The checked connection to a store file (see the module docstring); a writer's in WAL mode with every table.

    A writer's connection is in autocommit mode: each write opens and commits its own transaction.
    """
    if not in_memory:
        check_file(path, readonly=readonly)
        if not readonly and read_only_fs(path):
            raise InputError(path, None, "-", f"{READ_ONLY_FS}: a store written to needs a writable folder")
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    else:
        if not in_memory:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        try:
            check_schema(conn, path)
        except sqlite3.DatabaseError as exc:
            if not in_memory and read_only_fs(path):  # SQLite could not make its -shm file there
                raise InputError(
                    path, None, "-", f"{READ_ONLY_FS}: SQLite needs to write beside a store (WAL) even to "
                    f"read it ({exc}); copy the store to a writable folder",
                ) from None  # fmt: skip
            if refused_write(exc):  # the same, for a folder this user may not write
                raise InputError(
                    path, None, "-", f"{READ_ONLY}: SQLite needs to write beside a store (WAL) even to read it "
                    f"({exc}); check the permissions of its folder, or copy the store to a writable folder",
                ) from None  # fmt: skip
            raise InputError(path, None, "-", f"not a readable SQLite database ({exc})") from None
        if not readonly:
            try:
                enable_wal(conn)
                # NORMAL is durable against a killed process in WAL mode (only a power cut may lose the last commits)
                conn.execute("PRAGMA synchronous=NORMAL")
                create_tables(conn)
            except sqlite3.OperationalError as exc:
                if not refused_write(exc):
                    raise
                raise InputError(
                    path, None, "-", f"{READ_ONLY}: this user may not write the store ({exc}); check the "
                    "permissions of the file and its folder, or open it read only",
                ) from None  # fmt: skip
    except BaseException:
        conn.close()
        raise
    return conn
