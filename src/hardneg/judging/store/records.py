"""Judgment records: one row per judge call identity, with the call's raw output.

A row is keyed by (query_id, stage, config_hash, docset). `config_hash` is the hash of what the call depends on
only (the judge's `config()`: backend, model, template sha256, generation parameters, prompt format; and the stage
number), never of thresholds, fusion or routing. A row keeps the raw output: scores, the judge's own better/worse
lists, the docids judged, the response, tokens. `docset` is '' for score (pointwise) judges, whose scores are per
docid (a record grows when routing later asks for more negatives: `hardneg.judging.store.scores`). For verdict
(listwise) judges a verdict depends on the whole list shown, so `docset` is the hash of that list (`docids_key`)
and another list is another call.

A failed or unparsable call is recorded with its reason and retried by the next run, up to `max_attempts` (a call
the server refused for its credentials, 401/403, is stored but not counted: the run after the key is fixed
retries it). A call that timed out may have been billed: its record counts those timeouts (`extra["timeouts"]`),
and the cascade re-sends it only while they stay under its `max_timeouts` (then only with `retry_failed`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

from hardneg.judging.base import config_hash
from hardneg.judging.store.connection import StoreConnection, where
from hardneg.judging.store.schema import decode_row, dump_json
from hardneg.judging.verdicts import JudgeOutput, Judgment

DEFAULT_MAX_ATTEMPTS = 3
# Possibly billed timeouts of one call (over runs) before the cascade re-sends it only on request (`retry_failed`).
DEFAULT_MAX_TIMEOUTS = 2

COLUMNS = (
    "query_id, stage, config_hash, judge_name, backend, model, params, template_hash, docids, raw_response, "
    "finish_reason, tokens_in, tokens_out, latency_s, status, reason, better, worse, scores, extra, attempts, "
    "created_at, updated_at, docset"
)
# JSON columns, and the type an empty one reads as (None: it stays None)
JSON_COLUMNS = {"params": dict, "docids": list, "better": None, "worse": None, "scores": None, "extra": dict}


def docids_key(docids: Sequence[str]) -> str:
    """The `docset` of a verdict record: a hash of the docid list shown, in order."""
    return hashlib.sha256("\x1f".join(docids).encode("utf-8")).hexdigest()[:16]


def row_to_judgment(row: sqlite3.Row) -> Judgment:
    return decode_row(Judgment, row, JSON_COLUMNS)


class Records(StoreConnection):
    """The store's judgments table (see the module docstring)."""

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
            dump_json(list(output.docids)),
            output.raw_response,
            output.finish_reason if isinstance(output.finish_reason, str | None) else json.dumps(output.finish_reason),
            int(output.tokens_in),
            int(output.tokens_out),
            float(output.latency_s),
            output.status,
            output.reason or "",
            dump_json(output.better),
            dump_json(output.worse),
            dump_json(output.scores),
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
        self._write(
            f"""INSERT INTO judgments ({COLUMNS}) VALUES ({", ".join("?" * 24)})
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
        sql = f"SELECT {COLUMNS} FROM judgments WHERE query_id=? AND stage=? AND config_hash=?"
        args: list[Any] = [str(query_id), int(stage), config_hash]
        if docset is not None:
            sql += " AND docset=?"
            args.append(docset)
        sql += " ORDER BY docset != '', updated_at DESC LIMIT 1"
        row = self._conn.execute(sql, args).fetchone()
        return None if row is None else row_to_judgment(row)

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
        filters, args = where({"stage": stage, "judge_name": judge_name, "status": status, "config_hash": config_hash})
        sql = f"SELECT {COLUMNS} FROM judgments WHERE 1=1{filters} ORDER BY stage, query_id, updated_at"
        return self._pages(sql, args, row_to_judgment)

    def count(self, stage: int | None = None, config_hash: str | None = None) -> int:
        filters, args = where({"stage": stage, "config_hash": config_hash})
        return int(self._conn.execute(f"SELECT COUNT(*) FROM judgments WHERE 1=1{filters}", args).fetchone()[0])

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
