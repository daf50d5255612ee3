"""The judgment store: one SQLite row per (query_id, stage, config_hash), written as each result arrives.

SQLite in WAL mode gives what a long, paid judging run needs: every `put` is one committed transaction, so
`kill -9` at any moment loses at most the calls in flight and never leaves half a record; re-running skips
what is already judged with the same configuration (resume); readers (reports, `relabel`) can read while one
writer process judges. A failed or unparsable call is recorded with its reason and retried by the next run,
up to `max_attempts`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.judge.base import FinalVerdict, JudgeOutput, Status, config_hash

SCHEMA_VERSION = 1
DEFAULT_MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgments (
    query_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
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
    PRIMARY KEY (query_id, stage, config_hash)
);
CREATE INDEX IF NOT EXISTS judgments_stage ON judgments (stage, config_hash, status);
"""

_COLUMNS = (
    "query_id, stage, config_hash, judge_name, backend, model, params, template_hash, docids, raw_response, "
    "finish_reason, tokens_in, tokens_out, latency_s, status, reason, better, worse, scores, extra, attempts, "
    "created_at, updated_at"
)


@dataclass(slots=True)
class Judgment:
    """One stored judgment (the latest attempt for its query, stage and configuration)."""

    query_id: str
    stage: int
    config_hash: str
    judge_name: str
    backend: str
    model: str
    params: dict[str, Any]
    template_hash: str | None
    docids: list[str]
    raw_response: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    latency_s: float
    status: Status
    reason: str
    better: list[str] | None
    worse: list[str] | None
    scores: dict[str, float] | None
    extra: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def flagged(self) -> list[str]:
        """Negatives listed in either list (better first)."""
        better = self.better or []
        return better + [d for d in self.worse or [] if d not in better]

    def to_output(self) -> JudgeOutput:
        return JudgeOutput(
            docids=list(self.docids),
            status=self.status,
            reason=self.reason,
            better=self.better,
            worse=self.worse,
            scores=self.scores,
            raw_response=self.raw_response,
            finish_reason=self.finish_reason,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            latency_s=self.latency_s,
            template_hash=self.template_hash,
            extra=dict(self.extra),
        )


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
    )


class JudgmentStore:
    """SQLite (WAL) store of judgments; safe for one writer process at a time plus any number of readers."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: each statement block below opens and commits its own transaction
            self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        if not readonly:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process in WAL mode (only a power cut may lose the last commits)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    # -- context manager -------------------------------------------------------------------------------------
    def __enter__(self) -> JudgmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # -- writing ---------------------------------------------------------------------------------------------
    def put(
        self,
        query_id: str,
        stage: int,
        judge_name: str,
        config: dict[str, Any],
        output: JudgeOutput,
        *,
        count_attempt: bool = True,
    ) -> None:
        """Insert or update the record of (query_id, stage, config_hash(config)) in one transaction.

        Each call counts one attempt (`count_attempt=False` for imports, which made no call). A record that is
        already ok is never replaced by a failure.
        """
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
            1,
            now,
            now,
        )
        increment = "judgments.attempts + 1" if count_attempt else "judgments.attempts"
        self._conn.execute(
            f"""INSERT INTO judgments ({_COLUMNS}) VALUES ({", ".join("?" * 23)})
            ON CONFLICT (query_id, stage, config_hash) DO UPDATE SET
                judge_name=excluded.judge_name, backend=excluded.backend, model=excluded.model,
                params=excluded.params, template_hash=excluded.template_hash, docids=excluded.docids,
                raw_response=excluded.raw_response, finish_reason=excluded.finish_reason,
                tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, latency_s=excluded.latency_s,
                status=excluded.status, reason=excluded.reason, better=excluded.better, worse=excluded.worse,
                scores=excluded.scores, extra=excluded.extra, attempts={increment},
                updated_at=excluded.updated_at
            WHERE judgments.status != 'ok' OR excluded.status = 'ok'""",
            values,
        )

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, query_id: str, stage: int, config_hash: str) -> Judgment | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM judgments WHERE query_id=? AND stage=? AND config_hash=?",
            (str(query_id), int(stage), config_hash),
        ).fetchone()
        return None if row is None else _row_to_judgment(row)

    def done_ids(self, stage: int, config_hash: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> set[str]:
        """query_ids that need no more calls: judged ok, or failed `max_attempts` times."""
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

    def final_verdicts(self, stages: Mapping[int, str] | None = None) -> dict[str, FinalVerdict]:
        """Per query_id the verdict of the highest stage that judged it.

        `stages` ({stage: config_hash}) restricts to those configurations (what a cascade run produced);
        without it every stored record counts and, within a stage, the most recently updated one wins.
        A last stage that failed (or could not be parsed) gives a FinalVerdict with that status, so relabelling
        never treats the instance as clean.
        """
        sql = "SELECT query_id, stage, config_hash, status, reason, better, worse, updated_at FROM judgments"
        args: list[Any] = []
        if stages:
            sql += " WHERE " + " OR ".join("(stage=? AND config_hash=?)" for _ in stages)
            for stage, chash in stages.items():
                args.extend([int(stage), chash])
        sql += " ORDER BY stage, updated_at"
        verdicts: dict[str, FinalVerdict] = {}
        for row in self._conn.execute(sql, args):
            # rows come in ascending (stage, time): a later row replaces an earlier one
            status = row["status"]
            verdicts[row["query_id"]] = FinalVerdict(
                query_id=row["query_id"],
                stage=row["stage"],
                better=_load(row["better"]) or [] if status == "ok" else [],
                worse=_load(row["worse"]) or [] if status == "ok" else [],
                status=status,
                reason=row["reason"],
            )
        return verdicts

    def stage_summary(self) -> list[dict[str, Any]]:
        """Counts per (stage, judge, config): records, ok / parse_error / failed, flagged, tokens, latency."""
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
