"""The judgment store: paid judge calls and the verdicts derived from them, in one SQLite file.

Two tables, so that a judgment bought once is never bought again:

- `judgments`: one row per judge call identity, (query_id, stage, config_hash, docset). `config_hash` is the
  hash of what the call depends on only (the judge's `config()`: backend, model, template sha256, generation
  parameters, prompt format; and the stage number), never of thresholds, fusion or routing. A row keeps the raw
  output: scores, the judge's own better/worse lists, the docids judged, the response, tokens. `docset` is '' for
  score (pointwise) judges, whose scores are per docid: a record grows when routing later asks for more
  negatives (`merge_scores`). For verdict (listwise) judges a verdict depends on the whole list shown, so
  `docset` is the hash of that list (`docids_key`) and another list is another call.
- `verdicts`: what a cascade derived from those records under its thresholds, fusion and routing, one row per
  (query_id, stage, view_hash), where `view_hash` covers the call hash, the stage's post-processing settings
  and the view of the stage above. Deriving costs nothing, so changing a threshold only rewrites this table.
  A runner first writes a `pending` row for every instance a stage must still call the judge for, replaced by
  the derived verdict as the answer arrives: a run killed (or stopped by a budget) at any stage leaves those
  rows, so its final verdicts are refused (`PartialCascade`) instead of being read from an earlier stage.

- `claims`: the calls being made now, one row per call identity with its owner (host, pid, run) and a lease
  expiry. A runner claims a call before sending it, so several runners on one store (processes, machines, a Ray
  driver) split the work and never pay for a call twice; a runner that dies frees its claims when its lease runs
  out (at once, when it ran on this host and its process is gone). The claims live in their own table rather
  than as a `running` status of `judgments`, so stores written before claims existed open unchanged.

SQLite in WAL mode gives what a long, paid judging run needs: every `put` is one committed transaction, so
`kill -9` at any moment loses at most the calls in flight and never leaves half a record; re-running skips
what is already judged (resume); readers (reports, `relabel`) can read while writers judge. A failed
or unparsable call is recorded with its reason and retried by the next run, up to `max_attempts` (a call the
server refused for its credentials, 401/403, is stored but not counted: the run after the key is fixed retries
it). A call that timed out may have been billed: its record counts those timeouts (`extra["timeouts"]`), and the
cascade re-sends it only while they stay under its `max_timeouts` (then only with `retry_failed`).

A store is checked when it is opened: a file that is not SQLite, a SQLite database that is not a hardneg store
(it is never modified) or a store of another schema is an `InputError` naming the file and what was found.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError, HardnegError, InputError
from hardneg.judging.base import config_hash
from hardneg.judging.verdicts import FinalVerdict, JudgeOutput, Judgment, StageVerdict

# 2: judgments keyed by call identity (+ docset), derived verdicts in their own table.
SCHEMA_VERSION = 2
DEFAULT_MAX_ATTEMPTS = 3
# Possibly billed timeouts of one call (over runs) before the cascade re-sends it only on request (`retry_failed`).
DEFAULT_MAX_TIMEOUTS = 2
# The status of a verdict row a runner writes before calling the judge: the stage has not judged the instance yet.
PENDING = "pending"

_SCHEMA = """
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
SQLITE_MAGIC = b"SQLite format 3\x00"
# How long a claim holds without its owner renewing it (a runner renews its claims every third of this).
DEFAULT_LEASE_S = 120.0

_COLUMNS = (
    "query_id, stage, config_hash, judge_name, backend, model, params, template_hash, docids, raw_response, "
    "finish_reason, tokens_in, tokens_out, latency_s, status, reason, better, worse, scores, extra, attempts, "
    "created_at, updated_at, docset"
)
_VERDICT_COLUMNS = (
    "query_id, stage, view_hash, config_hash, judge_name, docids, status, reason, better, worse, scores, "
    "raw_scores, routed, updated_at"
)
_CURRENT_RUN = "current_run"


def docids_key(docids: Sequence[str]) -> str:
    """The `docset` of a verdict record: a hash of the docid list shown, in order."""
    return hashlib.sha256("\x1f".join(docids).encode("utf-8")).hexdigest()[:16]


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row_to_judgment(row: sqlite3.Row) -> Judgment:
    return Judgment(
        query_id=row["query_id"],
        stage=row["stage"],
        config_hash=row["config_hash"],
        judge_name=row["judge_name"],
        backend=row["backend"],
        model=row["model"],
        params=_load(row["params"]) or {},
        template_hash=row["template_hash"],
        docids=_load(row["docids"]) or [],
        raw_response=row["raw_response"],
        finish_reason=row["finish_reason"],
        tokens_in=row["tokens_in"],
        tokens_out=row["tokens_out"],
        latency_s=row["latency_s"],
        status=row["status"],
        reason=row["reason"],
        better=_load(row["better"]),
        worse=_load(row["worse"]),
        scores=_load(row["scores"]),
        extra=_load(row["extra"]) or {},
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        docset=row["docset"],
    )


def _row_to_verdict(row: sqlite3.Row) -> StageVerdict:
    return StageVerdict(
        query_id=row["query_id"],
        stage=row["stage"],
        view_hash=row["view_hash"],
        config_hash=row["config_hash"],
        judge_name=row["judge_name"],
        docids=_load(row["docids"]) or [],
        status=row["status"],
        reason=row["reason"],
        better=_load(row["better"]) or [],
        worse=_load(row["worse"]) or [],
        scores=_load(row["scores"]),
        raw_scores=_load(row["raw_scores"]),
        routed=_load(row["routed"]),
        updated_at=row["updated_at"],
    )


def _final_verdict(
    query_id: str, stage: int, status: str, reason: str | None, better: list[str] | None, worse: list[str] | None
) -> FinalVerdict:
    """A failed or unparsed verdict lists no documents: its status alone keeps relabelling off the instance."""
    ok = status == "ok"
    return FinalVerdict(query_id, stage, (better or []) if ok else [], (worse or []) if ok else [], status, reason)


class PartialCascade(HardnegError):
    """Final verdicts asked of a cascade run that has not judged everything it must (killed, or stopped by a
    budget, at any stage): `pending` maps each such query_id to the stage that has not judged it yet, `final`
    counts the instances that do have a final verdict (None: not counted)."""

    def __init__(self, path: Path | str, pending: Mapping[str, int], *, final: int | None = None) -> None:
        self.pending = dict(pending)
        self.final = final
        counts = Counter(self.pending.values())
        self.stage = min(counts)
        parts = ", ".join(f"{n} instance(s) routed to stage {k}" for k, n in sorted(counts.items()))
        summary = f"{parts} {'is' if len(self.pending) == 1 else 'are'} not judged yet"
        if final is not None:
            summary = f"unfinished cascade run: {final} instance(s) have a final verdict; {summary}"
        self.summary = summary
        super().__init__(f"{path}: {self.summary}: resume the judge run, or allow partial verdicts (allow_partial)")


class FinalVerdicts(dict[str, FinalVerdict]):
    """Final verdicts by query_id; `pending` (query_id -> stage) lists the instances left out because a stage
    has not judged them yet (only ever non-empty when partial verdicts were allowed)."""

    def __init__(self, verdicts: Mapping[str, FinalVerdict] = (), pending: Mapping[str, int] | None = None) -> None:
        super().__init__(verdicts)
        self.pending: dict[str, int] = dict(pending or {})


CallKey = tuple[str, int, str, str]  # (query_id, stage, config_hash, docset): one judge call


def _check_file(path: Path, *, readonly: bool) -> None:
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


READ_ONLY_FS = "on a read-only file system"


def _read_only_fs(path: Path) -> bool:
    """The folder of `path` is on a file system mounted read-only (False when that cannot be told)."""
    try:
        return bool(os.statvfs(path.absolute().parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def new_owner() -> str:
    """A runner's identity in claims: host, process id and a random run id."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its process is gone; other hosts' owners count as alive
    until their lease runs out."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ClaimKeeper:
    """A runner's claims on one store: acquire before a call, release after it is stored, renew while running.

    A background thread renews the runner's leases every third of `lease_s` through its own connection, so a long
    call keeps its claim; `close()` releases whatever is left. Claims in a ``:memory:`` store are kept as well
    (one process), without the thread.
    """

    def __init__(self, store: JudgmentStore, *, lease_s: float = DEFAULT_LEASE_S, owner: str | None = None) -> None:
        self.store = store
        self.owner = owner or new_owner()
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not store.in_memory:
            self._thread = threading.Thread(target=self._renew_loop, name="hardneg-claims", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        conn = sqlite3.connect(self.store.path, timeout=30.0, isolation_level=None)
        try:
            while not self._stop.wait(self.lease_s / 3):
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(
                        "UPDATE claims SET lease_until=? WHERE owner=?", (time.time() + self.lease_s, self.owner)
                    )
        finally:
            conn.close()

    def acquire(self, key: CallKey) -> bool:
        return self.store.claim(key, self.owner, lease_s=self.lease_s)

    def release(self, key: CallKey) -> None:
        self.store.release(key, self.owner)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(sqlite3.Error):
            self.store.release_all(self.owner)


@contextlib.contextmanager
def open_store(store: JudgmentStore | str | Path, *, readonly: bool = False) -> Iterator[JudgmentStore]:
    """A store given as an open `JudgmentStore` (left open) or a path (opened here, closed after)."""
    if isinstance(store, JudgmentStore):
        yield store
        return
    with JudgmentStore(store, readonly=readonly) as opened:
        yield opened


class JudgmentStore:
    """SQLite (WAL) store of judgments; safe for one writer process at a time plus any number of readers."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.in_memory = str(path) == ":memory:"
        if not self.in_memory:
            _check_file(self.path, readonly=readonly)
            if not readonly and _read_only_fs(self.path):
                raise InputError(self.path, None, "-", f"{READ_ONLY_FS}: a store written to needs a writable folder")
        if readonly:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        else:
            if not self.in_memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: each statement block below opens and commits its own transaction
            self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        try:
            try:
                self._check_schema()
            except sqlite3.DatabaseError as exc:
                if not self.in_memory and _read_only_fs(self.path):  # SQLite could not make its -shm file there
                    raise InputError(
                        self.path, None, "-", f"{READ_ONLY_FS}: SQLite needs to write beside a store (WAL) even to "
                        f"read it ({exc}); copy the store to a writable folder",
                    ) from None  # fmt: skip
                raise InputError(self.path, None, "-", f"not a readable SQLite database ({exc})") from None
            if not readonly:
                self._wal()
                # NORMAL is durable against a killed process in WAL mode (only a power cut may lose the last commits)
                self._conn.execute("PRAGMA synchronous=NORMAL")
                # one transaction: a runner opening the same new store meanwhile sees no table or all of them with
                # the version row, never a `judgments` table without it (which reads as the old schema 1)
                self._conn.executescript(
                    f"BEGIN IMMEDIATE;{_SCHEMA}"
                    f"INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');COMMIT;"
                )
        except BaseException:
            self._conn.close()
            raise

    def _wal(self) -> None:
        """Switch to WAL mode. Runners opening one new store at once race for it, and SQLite may answer "locked"
        without waiting (its busy timeout does not cover this switch): try again, as the timeout would."""
        deadline = time.monotonic() + 30.0
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _check_schema(self) -> None:
        """Refuse a store of another schema, or a database that is not a store, before writing anything to it."""
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "meta" in tables:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = None if row is None else str(row[0])
        if version is None and "judgments" in tables:
            version = "1"  # the first format wrote its version too; a bare judgments table is older still
        # the Batch API judge may create its tables in the store's file first (`BatchState`)
        if version is None and tables - {"batches", "batch_requests", "claims"}:
            found = ", ".join(sorted(tables)[:8])
            raise InputError(
                self.path, None, "-",
                f"a SQLite database that is not a hardneg judgment store (tables: {found}); it was not modified: "
                "name another --store file",
            )  # fmt: skip
        if version is not None and version != str(SCHEMA_VERSION):
            raise ConfigError(
                f"{self.path}: judgment store schema {version}, but this hardneg reads schema {SCHEMA_VERSION} "
                "(judge calls are now keyed by the judge's identity only, not by thresholds or routing). "
                "Judge into a new --store file; the old one cannot be migrated because its score records "
                "were stored after thresholds and fusion were applied"
            )

    # -- claims: one runner per call ---------------------------------------------------------------------------
    def claim(self, key: CallKey, owner: str, *, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """Claim the call `key` for `owner` (one transaction): True when it is now ours, False when another live
        runner holds it. A claim whose lease ran out, or whose owner ran on this host and is gone, is taken over."""
        now = time.time()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute(
                "SELECT owner, lease_until FROM claims WHERE query_id=? AND stage=? AND config_hash=? AND docset=?",
                key,
            ).fetchone()
            if row is not None and row["owner"] != owner and row["lease_until"] > now and owner_alive(row["owner"]):
                self._conn.execute("COMMIT")
                return False
            self._conn.execute(
                "INSERT OR REPLACE INTO claims (query_id, stage, config_hash, docset, owner, lease_until, claimed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, owner, now + lease_s, now),
            )
            self._conn.execute("COMMIT")
            return True
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def release(self, key: CallKey, owner: str) -> None:
        self._conn.execute(
            "DELETE FROM claims WHERE query_id=? AND stage=? AND config_hash=? AND docset=? AND owner=?",
            (*key, owner),
        )

    def release_all(self, owner: str) -> None:
        self._conn.execute("DELETE FROM claims WHERE owner=?", (owner,))

    def renew(self, owner: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self._conn.execute("UPDATE claims SET lease_until=? WHERE owner=?", (time.time() + lease_s, owner))

    def claims(self) -> list[dict[str, Any]]:
        """The claims held now (owner, lease expiry), for reports and tests."""
        return [dict(r) for r in self._conn.execute("SELECT * FROM claims ORDER BY claimed_at")]

    # -- context manager -------------------------------------------------------------------------------------
    def __enter__(self) -> JudgmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # -- writing judgments -----------------------------------------------------------------------------------
    def put(
        self,
        query_id: str,
        stage: int,
        judge_name: str,
        config: dict[str, Any],
        output: JudgeOutput,
        *,
        count_attempt: bool = True,
        docset: str = "",
        free: bool = False,
    ) -> None:
        """Insert or update the record of (query_id, stage, config_hash(config), docset) in one transaction.

        Each call counts one attempt (`count_attempt=False` for imports, which made no call). `free`: a call that
        does not count against `max_attempts` at all (the server refused the credentials): a new record starts at
        0 attempts. A record that is already ok is never replaced by a failure.
        """
        self._upsert(
            query_id, stage, judge_name, config, output, docset, count_attempt and not free, attempts=0 if free else 1
        )

    def _upsert(
        self,
        query_id: str,
        stage: int,
        judge_name: str,
        config: dict[str, Any],
        output: JudgeOutput,
        docset: str,
        count_attempt: bool,
        *,
        attempts: int = 1,
        force: bool = False,
    ) -> None:
        chash = config_hash(config)
        now = time.time()
        backend = str(config.get("backend") or config.get("kind") or "")
        model = str(config.get("model") or backend)
        values = (
            str(query_id),
            int(stage),
            chash,
            judge_name,
            backend,
            model,
            json.dumps(config, sort_keys=True, default=str),
            output.template_hash,
            _dump(list(output.docids)),
            output.raw_response,
            output.finish_reason if isinstance(output.finish_reason, str | None) else json.dumps(output.finish_reason),
            int(output.tokens_in),
            int(output.tokens_out),
            float(output.latency_s),
            output.status,
            output.reason or "",
            _dump(output.better),
            _dump(output.worse),
            _dump(output.scores),
            json.dumps(output.extra, default=str),
            attempts,
            now,
            now,
            docset,
        )
        if force:
            increment = "excluded.attempts"
        else:
            increment = "judgments.attempts + 1" if count_attempt else "judgments.attempts"
        guard = "" if force else "WHERE judgments.status != 'ok' OR excluded.status = 'ok'"
        self._conn.execute(
            f"""INSERT INTO judgments ({_COLUMNS}) VALUES ({", ".join("?" * 24)})
            ON CONFLICT (query_id, stage, config_hash, docset) DO UPDATE SET
                judge_name=excluded.judge_name, backend=excluded.backend, model=excluded.model,
                params=excluded.params, template_hash=excluded.template_hash, docids=excluded.docids,
                raw_response=excluded.raw_response, finish_reason=excluded.finish_reason,
                tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, latency_s=excluded.latency_s,
                status=excluded.status, reason=excluded.reason, better=excluded.better, worse=excluded.worse,
                scores=excluded.scores, extra=excluded.extra, attempts={increment},
                updated_at=excluded.updated_at
            {guard}""",
            values,
        )

    def merge_scores(
        self,
        query_id: str,
        stage: int,
        judge_name: str,
        config: dict[str, Any],
        output: JudgeOutput,
        *,
        order: Sequence[str] | None = None,
    ) -> Judgment:
        """Add a score judge's answer for more negatives to its record of (query_id, stage, config).

        Scores are per docid, so an ok answer extends the record's docids and scores (in `order`, the instance's
        negatives, where given) and adds its tokens. A failed answer leaves the scores as they were and counts the
        failure in `extra["extend_failed"]` (attempts, reason), so the cascade can bound its retries. Without an
        ok record this is `put`. One transaction; returns the record as stored.
        """
        chash = config_hash(config)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            old = self.get(query_id, stage, chash, docset="")
            if old is None or old.status != "ok":
                self._upsert(query_id, stage, judge_name, config, output, "", True)
            else:
                merged = old.to_output()
                extra = dict(old.extra)
                if output.status == "ok":
                    scores = {**(old.scores or {}), **(output.scores or {})}
                    new_ids = [d for d in output.docids if d not in set(old.docids)]
                    docids = [*old.docids, *new_ids]
                    if order is not None:
                        rank = {d: i for i, d in enumerate(order)}
                        docids.sort(key=lambda d: rank.get(d, len(rank)))
                    merged.docids, merged.scores = docids, scores
                    merged.better = merged.worse = None  # flags are derived again by the cascade
                    merged.tokens_in += output.tokens_in
                    merged.tokens_out += output.tokens_out
                    merged.latency_s += output.latency_s
                    if output.raw_response:
                        merged.raw_response = "\n".join(t for t in (old.raw_response, output.raw_response) if t)
                    extra.pop("extend_failed", None)
                    extra["calls"] = int(extra.get("calls", 1)) + 1
                else:
                    failed = dict(extra.get("extend_failed") or {})
                    extra["extend_failed"] = {
                        "attempts": int(failed.get("attempts", 0)) + 1,
                        "reason": output.reason or output.status,
                        "docids": list(output.docids),
                    }
                merged.extra = extra
                self._upsert(
                    query_id, stage, judge_name, config, merged, "", True, attempts=old.attempts + 1, force=True
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        found = self.get(query_id, stage, chash, docset="")
        assert found is not None
        return found

    # -- reading judgments -----------------------------------------------------------------------------------
    def get(
        self,
        query_id: str,
        stage: int,
        config_hash: str,
        *,
        docids: Sequence[str] | None = None,
        docset: str | None = None,
    ) -> Judgment | None:
        """The record of a call: that of exactly `docids` (a verdict judge's list) or `docset` when given, else the
        score record ('' docset) or, failing that, the most recently updated one."""
        if docids is not None:
            docset = docids_key(docids)
        sql = f"SELECT {_COLUMNS} FROM judgments WHERE query_id=? AND stage=? AND config_hash=?"
        args: list[Any] = [str(query_id), int(stage), config_hash]
        if docset is not None:
            sql += " AND docset=?"
            args.append(docset)
        sql += " ORDER BY docset != '', updated_at DESC LIMIT 1"
        row = self._conn.execute(sql, args).fetchone()
        return None if row is None else _row_to_judgment(row)

    def done_ids(self, stage: int, config_hash: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> set[str]:
        """query_ids with a record that needs no more calls: judged ok, or failed `max_attempts` times."""
        rows = self._conn.execute(
            "SELECT query_id FROM judgments WHERE stage=? AND config_hash=? AND (status='ok' OR attempts>=?)",
            (int(stage), config_hash, int(max_attempts)),
        )
        return {r[0] for r in rows}

    def iter_judgments(
        self,
        stage: int | None = None,
        judge_name: str | None = None,
        status: str | None = None,
        *,
        config_hash: str | None = None,
    ) -> Iterator[Judgment]:
        where, args = [], []
        for column, value in (
            ("stage", stage),
            ("judge_name", judge_name),
            ("status", status),
            ("config_hash", config_hash),
        ):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM judgments"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY stage, query_id, updated_at"
        # fetch in pages so a writer is not blocked by a long-lived read cursor on huge stores
        cursor = self._conn.execute(sql, args)
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield _row_to_judgment(row)

    def count(self, stage: int | None = None, config_hash: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM judgments WHERE 1=1", []
        if stage is not None:
            sql, args = sql + " AND stage=?", [*args, stage]
        if config_hash is not None:
            sql, args = sql + " AND config_hash=?", [*args, config_hash]
        return int(self._conn.execute(sql, args).fetchone()[0])

    # -- derived verdicts ------------------------------------------------------------------------------------
    def put_verdicts(self, verdicts: Iterable[StageVerdict], *, delete: Iterable[tuple[str, int, str]] = ()) -> None:
        """Write derived verdicts (and drop stale ones: (query_id, stage, view_hash)) in one transaction.

        The flags of a verdict derived from a score record are also written to that record's better/worse, so
        that readers of raw records see the latest flags (a verdict judge's own lists are never touched).
        """
        now = time.time()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for qid, stage, view in delete:
                self._conn.execute(
                    "DELETE FROM verdicts WHERE query_id=? AND stage=? AND view_hash=?", (qid, int(stage), view)
                )
            for v in verdicts:
                v.updated_at = now
                self._conn.execute(
                    f"INSERT OR REPLACE INTO verdicts ({_VERDICT_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                    (
                        v.query_id,
                        int(v.stage),
                        v.view_hash,
                        v.config_hash,
                        v.judge_name,
                        _dump(v.docids),
                        v.status,
                        v.reason,
                        _dump(v.better),
                        _dump(v.worse),
                        _dump(v.scores),
                        _dump(v.raw_scores),
                        _dump(v.routed),
                        now,
                    ),
                )
                if v.status == "ok" and v.raw_scores is not None:
                    self._conn.execute(
                        "UPDATE judgments SET better=?, worse=? WHERE query_id=? AND stage=? AND config_hash=? "
                        "AND docset='' AND status='ok'",
                        (_dump(v.better), _dump(v.worse), v.query_id, int(v.stage), v.config_hash),
                    )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def get_verdict(self, query_id: str, stage: int, view_hash: str) -> StageVerdict | None:
        """The stage's derived verdict of the instance under the view; None when there is none (or the stage has
        not judged it yet: a `pending` row)."""
        row = self._conn.execute(
            f"SELECT {_VERDICT_COLUMNS} FROM verdicts WHERE query_id=? AND stage=? AND view_hash=? AND status!=?",
            (str(query_id), int(stage), view_hash, PENDING),
        ).fetchone()
        return None if row is None else _row_to_verdict(row)

    def iter_verdicts(
        self, stage: int | None = None, view_hash: str | None = None, *, include_pending: bool = False
    ) -> Iterator[StageVerdict]:
        """Derived verdicts (`pending` rows, which carry none, only with `include_pending`)."""
        sql, args = f"SELECT {_VERDICT_COLUMNS} FROM verdicts WHERE 1=1", []
        if not include_pending:
            sql, args = sql + " AND status!=?", [*args, PENDING]
        if stage is not None:
            sql, args = sql + " AND stage=?", [*args, int(stage)]
        if view_hash is not None:
            sql, args = sql + " AND view_hash=?", [*args, view_hash]
        cursor = self._conn.execute(sql + " ORDER BY stage, query_id", args)
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield _row_to_verdict(row)

    def set_current_run(self, run: Mapping[str, Any]) -> None:
        """Record the cascade run whose verdicts `final_verdicts()` returns by default.

        `run`: {"name": ..., "views": {stage: view_hash}, "calls": {stage: config_hash}}.
        """
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (_CURRENT_RUN, json.dumps({**run, "at": time.time()}, default=str)),
        )

    def current_run(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (_CURRENT_RUN,)).fetchone()
        if row is None:
            return None
        run = json.loads(row[0])
        for key in ("views", "calls"):
            run[key] = {int(k): v for k, v in (run.get(key) or {}).items()}
        run.setdefault("stages", max(run["views"], default=0))
        return run

    def pending(self, stages: Mapping[int, str] | None = None) -> dict[str, int]:
        """query_id -> the first stage that has not judged it yet although it must (a run killed, or stopped by a
        budget, at any stage): a stage's `pending` rows (instances it had still to call the judge for), and the
        instances a stage routed on that the next stage has not judged.

        `stages` as in `final_verdicts`; without it, the current run's stages (all of its cascade, also those it
        has not started; likewise when `stages` are exactly the current run's views, as a judge report's
        `stage_hashes` are). Stores of imported verdicts (no cascade run) have nothing pending.
        """
        run = self.current_run()
        if stages:
            views = {int(k): self._resolve_view(int(k), h) for k, h in stages.items()}
            total = max(views, default=0)
            if run is not None and views == {k: run["views"].get(k) for k in views} and set(views) == set(run["views"]):
                total = max(total, int(run["stages"]))
        else:
            if run is None:
                return {}
            views = dict(run["views"])
            total = int(run["stages"])
        out: dict[str, int] = {}
        for k in sorted(views):
            if views[k] is None:
                continue
            rows = self._conn.execute(
                "SELECT query_id FROM verdicts WHERE stage=? AND view_hash=? AND status=?", (k, views[k], PENDING)
            )
            for (query_id,) in rows:
                out.setdefault(query_id, k)
            if k >= total:
                continue
            routed = {
                v.query_id for v in self.iter_verdicts(stage=k, view_hash=views[k]) if v.status == "ok" and v.routed
            }
            below = views.get(k + 1)
            judged = (
                {v.query_id for v in self.iter_verdicts(stage=k + 1, view_hash=below, include_pending=True)}
                if below
                else set()
            )
            for query_id in routed - judged:
                out.setdefault(query_id, k + 1)
        return out

    def _resolve_view(self, stage: int, chash: str) -> str | None:
        """The view to read for {stage: hash}: the hash itself when it names a view, else (a call hash) the
        current run's view of that call, else its most recently derived view; None when never derived."""
        found = self._conn.execute(
            "SELECT 1 FROM verdicts WHERE stage=? AND view_hash=? LIMIT 1", (int(stage), chash)
        ).fetchone()
        if found is not None:
            return chash
        run = self.current_run()
        if run and run["calls"].get(stage) == chash and run["views"].get(stage):
            return str(run["views"][stage])
        row = self._conn.execute(
            "SELECT view_hash FROM verdicts WHERE stage=? AND config_hash=? ORDER BY updated_at DESC LIMIT 1",
            (int(stage), chash),
        ).fetchone()
        return None if row is None else str(row[0])

    def final_verdicts(self, stages: Mapping[int, str] | None = None, *, allow_partial: bool = False) -> FinalVerdicts:
        """Per query_id the verdict of the highest stage that judged it.

        `stages` ({stage: hash}) restricts to those stages: a view hash (`CascadeReport.stage_hashes`) reads the
        verdicts that cascade derived; a call hash (`stage_summary()["config_hash"]`) reads the current run's (or
        else the latest) derivation from those records, or the records' own verdicts when no cascade derived any
        (imports). Without `stages`: the verdicts of the latest completed cascade run, plus records no cascade
        derived (imports, direct `put`s); within a stage the most recently updated wins. Score records no cascade
        derived carry no verdict and are left out.
        A last stage that failed (or could not be parsed) gives a FinalVerdict with that status, so relabelling
        never treats the instance as clean.

        An instance a stage of the run has not judged yet although it must (`pending`: the run was killed or
        stopped by a budget, at any stage) has no final verdict: by default this raises `PartialCascade` with the
        counts; with `allow_partial` those instances are left out (relabelling then passes them unchanged and
        counts them), never given an earlier stage's verdict. The result's `pending` lists them.
        """
        pending = self.pending(stages)
        rows: list[tuple[int, float, FinalVerdict]] = []
        raw_where: list[str] = []
        raw_args: list[Any] = []
        if stages:
            for stage, chash in stages.items():
                view = self._resolve_view(int(stage), chash)
                if view is not None:
                    rows.extend(self._view_rows(int(stage), view))
                else:
                    raw_where.append("(stage=? AND config_hash=?)")
                    raw_args.extend([int(stage), chash])
        else:
            run = self.current_run()
            for stage, view in (run["views"] if run else {}).items():
                rows.extend(self._view_rows(stage, view))
            # the current run's own calls are read through its views only (never raw: a record whose verdict the
            # run has not derived yet is not final)
            own = "".join(" AND NOT (stage=? AND config_hash=?)" for _ in (run["calls"] if run else {}))
            raw_args.extend(v for k, h in (run["calls"] if run else {}).items() for v in (int(k), h))
            raw_where.append(
                "(NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.stage=judgments.stage "
                f"AND v.config_hash=judgments.config_hash){own})"
            )
        if raw_where:
            sql = (
                "SELECT query_id, stage, status, reason, better, worse, updated_at FROM judgments WHERE ("
                + " OR ".join(raw_where)
                + ") AND NOT (status='ok' AND better IS NULL AND worse IS NULL)"
            )
            for row in self._conn.execute(sql, raw_args):
                verdict = _final_verdict(
                    row["query_id"], row["stage"], row["status"], row["reason"],
                    _load(row["better"]), _load(row["worse"]),
                )  # fmt: skip
                rows.append((row["stage"], row["updated_at"], verdict))
        verdicts = FinalVerdicts(pending=pending)
        # ascending (stage, time): a later row replaces an earlier one
        for _, _, verdict in sorted(rows, key=lambda r: (r[0], r[1])):
            if verdict.query_id not in pending:
                verdicts[verdict.query_id] = verdict
        if pending and not allow_partial:
            raise PartialCascade(self.path, pending, final=len(verdicts))
        return verdicts

    def _view_rows(self, stage: int, view: str) -> Iterator[tuple[int, float, FinalVerdict]]:
        for v in self.iter_verdicts(stage=stage, view_hash=view):
            yield v.stage, v.updated_at, _final_verdict(v.query_id, v.stage, v.status, v.reason, v.better, v.worse)

    def stage_summary(self) -> list[dict[str, Any]]:
        """Counts per (stage, judge, call config): records, ok / parse_error / failed, flagged, tokens, latency.

        Each paid call is counted once, whatever thresholds or routing later read it. `flagged` counts a score
        judge's records by the flags its latest derivation wrote.
        """
        rows = self._conn.execute(
            """SELECT stage, judge_name, backend, model, config_hash, COUNT(*) AS records,
                SUM(status='ok') AS ok, SUM(status='parse_error') AS parse_error, SUM(status='failed') AS failed,
                SUM(status='ok' AND (COALESCE(json_array_length(better), 0)
                    + COALESCE(json_array_length(worse), 0)) > 0) AS flagged,
                SUM(COALESCE(json_array_length(better), 0)) AS better_docs,
                SUM(COALESCE(json_array_length(worse), 0)) AS worse_docs,
                SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out, SUM(latency_s) AS latency_s,
                SUM(attempts) AS attempts
            FROM judgments GROUP BY stage, judge_name, backend, model, config_hash ORDER BY stage, judge_name"""
        )
        return [dict(r) for r in rows]
