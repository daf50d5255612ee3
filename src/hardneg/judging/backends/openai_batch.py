"""Judging through OpenAI's Batch API (half price, results within 24 h): submit, come back, collect.

`BatchJudge` writes one chat-completions request per prompt (instances with more negatives than
`max_negatives_per_call` take several) into JSONL files of at most `max_requests_per_batch` lines /
`max_bytes_per_batch` bytes, uploads each (`files.create`, purpose "batch"), creates a batch on
`/v1/chat/completions` with a 24 h window, polls, downloads the output and error files, and joins the answers
back by `custom_id`.

State lives in SQLite (`state_db`, normally the judgment store's own file; tables `batches` and
`batch_requests`), so a later run picks up where an earlier one stopped:
- a request in a batch that is still running is never submitted again;
- answers already downloaded are returned at once, without a call;
- a request that failed, or that a finished batch left out of both its output and error files, is recorded
  failed (the instance is yielded with status "failed") and submitted again when the instance is asked for again.

It plugs into the cascade as any judge: `judge_many(items)` submits what is not yet in flight, then (with
`wait=True`) polls every `poll_interval` seconds until the batches end or `max_wait` passes, yielding each
instance as soon as all of its requests are answered. With `wait=False` it submits and yields only what is
already answered; running the same `hardneg judge` command again later collects the rest.

custom_id = "{config hash}:{query id or its hash}:{chunk}", only [A-Za-z0-9_.:-], at most 64 characters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.data.records import Instance
from hardneg.errors import ConfigError, HardnegError
from hardneg.judging.backends.endpoint_settings import CONNECTION_OPTIONS, EndpointSettings, flat_options
from hardneg.judging.backends.openai_chat import OpenAIJudge
from hardneg.judging.base import Judge, config_hash
from hardneg.judging.prompts.templates import chunk_docids
from hardneg.judging.verdicts import JudgeOutput, merge_outputs

log = logging.getLogger("hardneg.judging.backends.openai_batch")

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_MAX_REQUESTS = 50_000  # OpenAI's per-batch limit
DEFAULT_MAX_BYTES = 190 * 1024 * 1024  # under OpenAI's 200 MB input-file limit
_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    input_file_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint_url TEXT,
    status TEXT NOT NULL,
    n_requests INTEGER NOT NULL,
    output_file_id TEXT,
    error_file_id TEXT,
    collected INTEGER NOT NULL DEFAULT 0,
    info TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    custom_id TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    query_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL,
    docids TEXT NOT NULL,
    batch_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('submitted', 'answered', 'failed')),
    result TEXT,
    reason TEXT NOT NULL DEFAULT '',
    submissions INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_requests_query ON batch_requests (config_hash, query_id);
CREATE INDEX IF NOT EXISTS batch_requests_batch ON batch_requests (batch_id, state);
"""


class BatchError(HardnegError):
    """The Batch API refused a file or a batch."""


def custom_id(cfg_hash: str, query_id: str, chunk: int) -> str:
    """A stable request id: readable query ids are kept, others (odd characters, too long) hashed."""
    qid = query_id if _SAFE_ID.fullmatch(query_id) else "h" + hashlib.sha256(query_id.encode()).hexdigest()[:24]
    return f"{cfg_hash[:12]}:{qid}:{chunk}"


def _output_to_json(out: JudgeOutput) -> str:
    return json.dumps(
        {
            "docids": out.docids,
            "status": out.status,
            "reason": out.reason,
            "better": out.better,
            "worse": out.worse,
            "raw_response": out.raw_response,
            "finish_reason": out.finish_reason,
            "tokens_in": out.tokens_in,
            "tokens_out": out.tokens_out,
            "template_hash": out.template_hash,
            "extra": out.extra,
        }
    )


def _output_from_json(text: str) -> JudgeOutput:
    return JudgeOutput(**json.loads(text))


@dataclass(slots=True)
class BatchStatus:
    batch_id: str
    status: str
    n_requests: int
    completed: int
    failed: int
    collected: bool
    created_at: float


class BatchState:
    """The `batches` / `batch_requests` tables in a SQLite file (the judgment store's file, normally)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def requests_for(self, cfg_hash: str, query_id: str) -> dict[str, sqlite3.Row]:
        rows = self.conn.execute(
            "SELECT * FROM batch_requests WHERE config_hash=? AND query_id=?", (cfg_hash, query_id)
        ).fetchall()
        return {r["custom_id"]: r for r in rows}

    def batch_status(self, batch_id: str) -> str | None:
        row = self.conn.execute("SELECT status FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        return None if row is None else str(row[0])

    def active_batches(self, cfg_hash: str | None = None) -> list[sqlite3.Row]:
        """Batches not yet collected (running, or ended but not downloaded)."""
        sql = "SELECT * FROM batches WHERE collected=0"
        args: tuple[Any, ...] = ()
        if cfg_hash is not None:
            sql += " AND config_hash=?"
            args = (cfg_hash,)
        return self.conn.execute(sql + " ORDER BY created_at", args).fetchall()

    def statuses(self) -> list[BatchStatus]:
        out = []
        for row in self.conn.execute("SELECT * FROM batches ORDER BY created_at"):
            counts = json.loads(row["info"]).get("request_counts") or {}
            out.append(
                BatchStatus(
                    row["batch_id"],
                    row["status"],
                    row["n_requests"],
                    int(counts.get("completed") or 0),
                    int(counts.get("failed") or 0),
                    bool(row["collected"]),
                    row["created_at"],
                )
            )
        return out


class BatchJudge(Judge):
    """A listwise judge through the OpenAI Batch API (kind "openai-batch").

    Takes the connection keys of `EndpointSettings` (model, base_url, api_key_env, azure, api_version, timeout,
    max_retries), OpenAIJudge's template and sampling options (the request bodies are the same) and the batch
    settings. `state_db`: where batch ids and downloaded answers are kept (use the judgment store's path so
    that a later run resumes; None keeps them in memory, for one blocking run).
    """

    kind = "openai-batch"

    @flat_options(CONNECTION_OPTIONS, timeout=600.0)
    def __init__(
        self,
        settings: EndpointSettings,
        *,
        template: str = "stage1",
        temperature: float = 0.1,
        max_tokens: int = 2048,
        json_schema: bool | str = False,
        max_negatives_per_call: int = 25,
        state_db: str | Path | None = None,
        wait: bool = True,
        poll_interval: float = 60.0,
        max_wait: float = 26 * 3600.0,
        max_requests_per_batch: int = DEFAULT_MAX_REQUESTS,
        max_bytes_per_batch: int = DEFAULT_MAX_BYTES,
        metadata: dict[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if max_requests_per_batch < 1 or max_bytes_per_batch < 1024:
            raise ConfigError("max_requests_per_batch must be >= 1 and max_bytes_per_batch >= 1024")
        # The online judge builds the same request bodies and reads the same completions.
        self.online = OpenAIJudge(
            settings,
            template=template,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            max_negatives_per_call=max_negatives_per_call,
        )
        self.settings = settings  # `max_retries`: of each files / batches API call (the SDK retries them)
        self.model = settings.model
        self.state = BatchState(state_db if state_db is not None else ":memory:")
        self.wait = wait
        self.poll_interval = float(poll_interval)
        self.max_wait = float(max_wait)
        self.max_requests = int(max_requests_per_batch)
        self.max_bytes = int(max_bytes_per_batch)
        self.metadata = metadata or {}
        self.progress = progress
        self._client: Any = None
        self._cfg_hash: str | None = None
        self.stats: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ config

    def config(self) -> dict[str, Any]:
        cfg = self.online.config()
        cfg["kind"] = self.kind
        return cfg

    @property
    def cfg_hash(self) -> str:
        if self._cfg_hash is None:
            self._cfg_hash = config_hash(self.config())
        return self._cfg_hash

    def client(self) -> Any:
        """A synchronous OpenAI (or Azure) client; the key comes from the environment, as for OpenAIJudge."""
        if self._client is None:
            self._client = self.online.make_client(asynchronous=False, max_retries=self.settings.max_retries)
        return self._client

    def _say(self, message: str) -> None:
        log.info("%s", message)
        if self.progress is not None:
            self.progress(message)

    # ------------------------------------------------------------------------------------------ submit

    def _line(self, cid: str, prompt: str) -> bytes:
        body = self.online.request_body(prompt)
        line = {"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}
        return (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")

    def _needs_submit(self, row: sqlite3.Row | None, chunk: list[str]) -> bool:
        if row is None:
            return True
        if row["state"] == "failed" or json.loads(row["docids"]) != chunk:
            # failed, or asked now about other negatives than those submitted: a new request
            return True
        if row["state"] == "answered":
            # a delivered non-ok answer is asked for again because the caller wants a new try
            return bool(row["delivered"]) and json.loads(row["result"])["status"] != "ok"
        status = self.state.batch_status(row["batch_id"]) if row["batch_id"] else None
        return status is None or (status in TERMINAL and self._collected(row["batch_id"]))

    def _collected(self, batch_id: str) -> bool:
        row = self.state.conn.execute("SELECT collected FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        return bool(row and row[0])

    def submit(self, items: Iterable[tuple[Instance, Sequence[str]]]) -> list[str]:
        """Submit every request of `items` that is not answered or in flight; returns the new batch ids."""
        new_ids: list[str] = []
        pending: list[tuple[str, str, int, int, list[str], bytes]] = []
        size = 0
        for instance, docids in items:
            for cid, qid, k, n, chunk, prompt in self._requests(instance, docids):
                row = self.state.conn.execute("SELECT * FROM batch_requests WHERE custom_id=?", (cid,)).fetchone()
                if not self._needs_submit(row, chunk):
                    continue
                line = self._line(cid, prompt)
                if pending and (len(pending) >= self.max_requests or size + len(line) > self.max_bytes):
                    new_ids.append(self._submit_file(pending))
                    pending, size = [], 0
                pending.append((cid, qid, k, n, chunk, line))
                size += len(line)
        if pending:
            new_ids.append(self._submit_file(pending))
        return new_ids

    def _requests(
        self, instance: Instance, docids: Sequence[str]
    ) -> Iterator[tuple[str, str, int, int, list[str], str]]:
        chunks = chunk_docids(list(docids), self.online.max_negatives_per_call) if docids else []
        for k, chunk in enumerate(chunks):
            cid = custom_id(self.cfg_hash, instance.query_id, k)
            yield cid, instance.query_id, k, len(chunks), chunk, self.online.render(instance, chunk)

    def _submit_file(self, pending: list[tuple[str, str, int, int, list[str], bytes]]) -> str:
        client = self.client()
        data = b"".join(p[5] for p in pending)
        name = f"hardneg-{self.cfg_hash[:12]}-{int(time.time())}.jsonl"
        uploaded = client.files.create(file=(name, data, "application/jsonl"), purpose="batch")
        meta = {"hardneg_config": self.cfg_hash[:16], **self.metadata}
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", metadata=meta
        )
        now = time.time()
        with self.state.conn:  # one transaction: the batch and its requests are recorded together
            self.state.conn.execute("BEGIN")
            self.state.conn.execute(
                "INSERT INTO batches (batch_id, input_file_id, config_hash, model, endpoint_url, status, n_requests,"
                " info, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (batch.id, uploaded.id, self.cfg_hash, self.model, self.settings.url, batch.status, len(pending),
                 "{}", now, now),
            )  # fmt: skip
            for cid, qid, k, n, chunk, _ in pending:
                self.state.conn.execute(
                    "INSERT INTO batch_requests (custom_id, config_hash, query_id, chunk, n_chunks, docids, batch_id,"
                    " state, result, reason, submissions, delivered, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,'submitted',NULL,'',1,0,?)"
                    " ON CONFLICT (custom_id) DO UPDATE SET batch_id=excluded.batch_id, state='submitted',"
                    " docids=excluded.docids, n_chunks=excluded.n_chunks, result=NULL, reason='',"
                    " submissions=batch_requests.submissions+1, delivered=0, updated_at=excluded.updated_at",
                    (cid, self.cfg_hash, qid, k, n, json.dumps(chunk), batch.id, now),
                )
        self.stats["batches_submitted"] = self.stats.get("batches_submitted", 0) + 1
        self.stats["requests_submitted"] = self.stats.get("requests_submitted", 0) + len(pending)
        self._say(f"submitted batch {batch.id}: {len(pending)} request(s), {len(data)} bytes")
        return str(batch.id)

    # ------------------------------------------------------------------------------------------ poll

    def poll(self) -> list[BatchStatus]:
        """Refresh the status of every batch of this judge's config that is not collected yet."""
        client = self.client()
        for row in self.state.active_batches(self.cfg_hash):
            batch = client.batches.retrieve(row["batch_id"])
            info = {
                "request_counts": batch.request_counts.model_dump() if batch.request_counts else None,
                "errors": batch.errors.model_dump() if batch.errors else None,
            }
            self.state.conn.execute(
                "UPDATE batches SET status=?, output_file_id=?, error_file_id=?, info=?, updated_at=? WHERE batch_id=?",
                (batch.status, batch.output_file_id, batch.error_file_id, json.dumps(info), time.time(), batch.id),
            )
        return [s for s in self.state.statuses() if not s.collected]

    # ------------------------------------------------------------------------------------------ collect

    def _download(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self.client().files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def collect(self) -> int:
        """Download the answers of every ended, uncollected batch into the state; returns requests answered."""
        answered = 0
        for row in self.state.active_batches(self.cfg_hash):
            if row["status"] not in TERMINAL:
                continue
            batch_id = row["batch_id"]
            requests = {
                r["custom_id"]: r
                for r in self.state.conn.execute(
                    "SELECT * FROM batch_requests WHERE batch_id=? AND state='submitted'", (batch_id,)
                )
            }
            updates: list[tuple[str, str | None, str, Any]] = []  # (state, result, reason, custom_id)
            for line in self._download(row["output_file_id"]) + self._download(row["error_file_id"]):
                cid = line.get("custom_id")
                request = requests.pop(cid, None)
                if request is None:
                    continue  # not ours any more (resubmitted elsewhere) or a duplicate line
                docids = json.loads(request["docids"])
                response = line.get("response") or {}
                if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                    out = self.online.output_from_completion(response["body"], docids)
                    updates.append(("answered", _output_to_json(out), out.reason, cid))
                    answered += 1
                else:
                    body: dict[str, Any] = response["body"] if isinstance(response.get("body"), dict) else {}
                    error = line.get("error") or body.get("error") or {}
                    if not isinstance(error, dict):
                        error = {"message": str(error)}
                    status = response.get("status_code")
                    reason = f"batch request failed (HTTP {status}): " if status else "batch request failed: "
                    reason += str(error.get("message") or error.get("code") or body.get("detail") or "no detail")[:300]
                    updates.append(("failed", None, self.online._scrub(reason), cid))
            why = f"missing from the output of batch {batch_id} (status {row['status']})"
            updates += [("failed", None, why, cid) for cid in requests]
            now = time.time()
            with self.state.conn:
                self.state.conn.execute("BEGIN")
                for state, result, reason, cid in updates:
                    self.state.conn.execute(
                        "UPDATE batch_requests SET state=?, result=?, reason=?, updated_at=? WHERE custom_id=?",
                        (state, result, reason, now, cid),
                    )
                self.state.conn.execute(
                    "UPDATE batches SET collected=1, updated_at=? WHERE batch_id=?", (now, batch_id)
                )
            missing = len(requests)
            self._say(f"collected batch {batch_id}: {len(updates) - missing} answered or failed, {missing} missing")
        return answered

    # ------------------------------------------------------------------------------------------ results

    def result(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput | None:
        """The instance's output if every one of its requests has ended (answered or failed), else None."""
        return self._result_by_id(instance.query_id, list(docids))

    def _mark_delivered(self, query_id: str) -> None:
        self.state.conn.execute(
            "UPDATE batch_requests SET delivered=1 WHERE config_hash=? AND query_id=? AND state != 'submitted'",
            (self.cfg_hash, query_id),
        )

    def judge_many(self, items: Iterable[tuple[Instance, Sequence[str]]]) -> Iterator[tuple[Instance, JudgeOutput]]:
        """Yield already-answered instances, submit the rest, then (wait=True) poll and yield as batches end.

        Holds each waiting instance's query, id and docids (not its passages) until its answer arrives.
        """
        waiting: dict[str, tuple[Instance, list[str]]] = {}
        to_submit: list[tuple[Instance, list[str]]] = []
        for instance, docids in items:
            docids = list(docids)
            ready = self.result(instance, docids)
            row_states = self.state.requests_for(self.cfg_hash, instance.query_id)
            stale = ready is not None and ready.status != "ok" and any(r["delivered"] for r in row_states.values())
            if ready is not None and not stale:
                self._mark_delivered(instance.query_id)
                yield instance, ready
                continue
            light = Instance(instance.query_id, instance.query, [], [], instance.subset)
            to_submit.append((instance, docids))
            waiting[instance.query_id] = (light, docids)
            if len(to_submit) >= 1000:
                self.submit(to_submit)
                to_submit = []
        if to_submit:
            self.submit(to_submit)
        if not waiting:
            return
        if not self.wait:
            self._say(f"{len(waiting)} instance(s) in flight; run again later to collect them")
            return
        deadline = time.monotonic() + self.max_wait
        while waiting:
            statuses = self.poll()
            self.collect()
            for qid in list(waiting):
                light, docids = waiting[qid]
                out = self._result_by_id(qid, docids)
                if out is not None:
                    del waiting[qid]
                    self._mark_delivered(qid)
                    yield light, out
            if not waiting:
                break
            if time.monotonic() >= deadline:
                self._say(f"max_wait reached: {len(waiting)} instance(s) still in flight; run again to collect")
                return
            running = [s for s in statuses if s.status not in TERMINAL]
            self._say(f"waiting for {len(running)} batch(es), {len(waiting)} instance(s)")
            time.sleep(self.poll_interval)

    def _result_by_id(self, query_id: str, docids: list[str]) -> JudgeOutput | None:
        if not docids:
            return JudgeOutput(docids=[], better=[], worse=[], template_hash=self.online.sha)
        rows = self.state.requests_for(self.cfg_hash, query_id)
        chunks = chunk_docids(docids, self.online.max_negatives_per_call)
        outputs = []
        for k, chunk in enumerate(chunks):
            row = rows.get(custom_id(self.cfg_hash, query_id, k))
            if row is None or row["state"] == "submitted" or json.loads(row["docids"]) != chunk:
                return None
            if row["state"] == "failed":
                outputs.append(
                    JudgeOutput(docids=chunk, status="failed", reason=row["reason"], template_hash=self.online.sha)
                )
            else:
                outputs.append(_output_from_json(row["result"]))
        return merge_outputs(outputs)

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        for _, out in self.judge_many([(instance, docids)]):
            return out
        raise BatchError(f"{instance.query_id}: still in flight (wait=False or max_wait reached)")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.state.close()
