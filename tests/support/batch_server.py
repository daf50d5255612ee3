"""A local stand-in for OpenAI's Batch API: the files and batches endpoints, executing against a real server.

Endpoints (OpenAI's shapes, as the `openai` SDK sends and reads them):
- `POST /v1/files` (multipart: `file`, `purpose`), `GET /v1/files/{id}`, `GET /v1/files/{id}/content`
- `POST /v1/batches` (`input_file_id`, `endpoint`, `completion_window`, `metadata`), `GET /v1/batches/{id}`,
  `GET /v1/batches` (newest first)

A batch goes validating -> in_progress -> finalizing -> completed (or failed when its input file is invalid:
bad JSON, a missing field, a duplicate custom_id, another endpoint). Each request line is sent to the upstream
chat server (the real llama.cpp server, or the fault proxy in front of it); answers with HTTP 200 go to the
output file, the rest to the error file, as OpenAI writes them (`{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}`). `lose` drops a seeded fraction of requests from both files (`lose_once`: the
given custom_ids, the first time only), as a real batch may leave requests unaccounted for.

Not covered (a real deployment differs here): authentication and organisations, file and batch expiry
(`expires_at`, the 24 h window, status "expired"), cancellation (`/cancel`, "cancelling"/"cancelled"), real quotas
and enqueued-token limits, file size limits, pagination (`after`/`limit`), the `/v1/responses` and
`/v1/embeddings` endpoints, usage totals on the batch object, and rate limiting between requests.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from support.http import LocalServer, Request, Response, httpx_module

TERMINAL = {"completed", "failed", "expired", "cancelled"}


@dataclass(slots=True)
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass(slots=True)
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: int
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    history: list[str] = field(default_factory=lambda: ["validating"])

    def set(self, status: str) -> None:
        self.status = status
        self.history.append(status)
        self.times[f"{status}_at"] = int(time.time())

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times.get("in_progress_at"),
            "expires_at": self.created_at + 24 * 3600,
            "finalizing_at": self.times.get("finalizing_at"),
            "completed_at": self.times.get("completed_at"),
            "failed_at": self.times.get("failed_at"),
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": dict(self.counts),
            "metadata": self.metadata,
        }


class BatchStandIn(LocalServer):
    """Batch API stand-in; chat requests go to `upstream` (a base URL ending in /v1)."""

    def __init__(
        self,
        upstream: str,
        *,
        port: int = 0,
        concurrency: int = 2,
        step_s: float = 0.1,
        lose: float = 0.0,
        lose_once: set[str] | None = None,
        seed: int = 0,
        upstream_timeout: float = 600.0,
        upstream_key: str | None = None,
    ) -> None:
        super().__init__(self.handle, port)
        self.upstream = upstream.rstrip("/")
        self.concurrency = concurrency
        self.step_s = step_s  # how long each state lasts at least (so pollers see the transitions)
        self.lose = lose
        self.lose_once = set(lose_once or ())  # custom_ids left out of the first batch that holds them
        self.seed = seed
        self.upstream_timeout = upstream_timeout
        self.upstream_key = upstream_key  # the key the stand-in itself uses on the upstream server
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self.executed: list[str] = []  # custom_ids sent upstream, in order
        self._ids = itertools.count(1)
        self._client: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def on_start(self) -> None:
        self._client = httpx_module().AsyncClient(timeout=self.upstream_timeout)

    async def on_stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    # ------------------------------------------------------------------------------------------ routes

    async def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/v1/files" and method == "POST":
            return self._upload(request)
        match = re.fullmatch(r"/v1/files/([^/]+)(/content)?", path)
        if match and method == "GET":
            stored = self.files.get(match.group(1))
            if stored is None:
                return Response.error(404, f"No such File object: {match.group(1)}")
            if match.group(2):
                return Response(200, stored.data, {"content-type": "application/octet-stream"})
            return Response.json(stored.obj())
        if path == "/v1/batches" and method == "POST":
            return self._create_batch(request)
        if path == "/v1/batches" and method == "GET":
            data = [b.obj() for b in sorted(self.batches.values(), key=lambda b: b.id, reverse=True)]
            return Response.json({"object": "list", "data": data, "has_more": False})
        match = re.fullmatch(r"/v1/batches/([^/]+)", path)
        if match and method == "GET":
            batch = self.batches.get(match.group(1))
            if batch is None:
                return Response.error(404, f"No such Batch object: {match.group(1)}")
            return Response.json(batch.obj())
        return Response.error(404, f"stand-in has no route {method} {path}")

    def _upload(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        if "multipart/form-data" not in ctype:
            return Response.error(400, "expected multipart/form-data")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + request.body
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "file" not in fields or "purpose" not in fields:
            return Response.error(400, "multipart needs 'file' and 'purpose'")
        purpose = fields["purpose"][1].decode()
        if purpose != "batch":
            return Response.error(400, f"stand-in only takes purpose 'batch', got {purpose!r}")
        stored = _File(
            self._new_id("file"), fields["file"][0] or "upload.jsonl", purpose, fields["file"][1], int(time.time())
        )
        self.files[stored.id] = stored
        return Response.json(stored.obj())

    def _create_batch(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response.error(400, "body is not JSON")
        input_id = body.get("input_file_id")
        if input_id not in self.files:
            return Response.error(400, f"input_file_id {input_id!r} not found")
        if body.get("endpoint") != "/v1/chat/completions":
            return Response.error(
                400, f"stand-in supports endpoint /v1/chat/completions only, got {body.get('endpoint')!r}"
            )
        if body.get("completion_window") != "24h":
            return Response.error(400, "completion_window must be '24h'")
        batch = _Batch(self._new_id("batch"), input_id, body["endpoint"], "24h", body.get("metadata"), int(time.time()))
        self.batches[batch.id] = batch
        task = asyncio.ensure_future(self._execute(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Response.json(batch.obj())

    # ------------------------------------------------------------------------------------------ execution

    def _validate(self, data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        lines, errors, seen = [], [], set()
        for number, raw in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                errors.append({"code": "invalid_json_line", "message": "not JSON", "line": number})
                continue
            missing = [k for k in ("custom_id", "method", "url", "body") if k not in line]
            if missing:
                errors.append({"code": "missing_required_parameter", "message": f"missing {missing}", "line": number})
            elif line["url"] != "/v1/chat/completions" or line["method"] != "POST":
                errors.append({"code": "invalid_url", "message": "url must match the batch endpoint", "line": number})
            elif line["custom_id"] in seen:
                errors.append({"code": "duplicate_custom_id", "message": line["custom_id"], "line": number})
            else:
                seen.add(line["custom_id"])
                lines.append(line)
        return lines, errors

    async def _run_one(self, line: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """('ok' | 'error' | 'lost', output line)."""
        custom_id = line["custom_id"]
        rng = random.Random(f"{self.seed}:{custom_id}")
        if custom_id in self.lose_once:
            self.lose_once.discard(custom_id)
            return "lost", None
        if rng.random() < self.lose:
            return "lost", None
        self.executed.append(custom_id)
        request_id = self._new_id("req")
        record: dict[str, Any] = {"id": self._new_id("batch_req"), "custom_id": custom_id}
        try:
            headers = {"authorization": f"Bearer {self.upstream_key}"} if self.upstream_key else {}
            reply = await self._client.post(f"{self.upstream}/chat/completions", json=line["body"], headers=headers)
        except Exception as exc:  # the upstream failed: a request-level error, as OpenAI reports server faults
            record.update(response=None, error={"code": "server_error", "message": f"{type(exc).__name__}"})
            return "error", record
        try:
            body = reply.json()
        except ValueError:
            body = {"error": {"message": reply.text[:200], "type": "server_error"}}
        record.update(response={"status_code": reply.status_code, "request_id": request_id, "body": body}, error=None)
        return ("ok" if reply.status_code == 200 else "error"), record

    async def _execute(self, batch: _Batch) -> None:
        await asyncio.sleep(self.step_s)
        lines, errors = self._validate(self.files[batch.input_file_id].data)
        if errors or not lines:
            batch.errors = errors or [{"code": "empty_file", "message": "no requests", "line": None}]
            batch.set("failed")
            return
        batch.counts["total"] = len(lines)
        batch.set("in_progress")
        gate = asyncio.Semaphore(self.concurrency)

        async def run(line: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
            async with gate:
                return await self._run_one(line)

        results = await asyncio.gather(*(run(line) for line in lines))
        batch.set("finalizing")
        await asyncio.sleep(self.step_s)
        out = [json.dumps(rec) for kind, rec in results if kind == "ok"]
        err = [json.dumps(rec) for kind, rec in results if kind == "error"]
        batch.counts["completed"] = len(out)
        batch.counts["failed"] = len(err)
        now = int(time.time())
        if out:
            stored = _File(
                self._new_id("file"), f"{batch.id}_output.jsonl", "batch_output", ("\n".join(out) + "\n").encode(), now
            )
            self.files[stored.id] = stored
            batch.output_file_id = stored.id
        if err:
            stored = _File(
                self._new_id("file"), f"{batch.id}_error.jsonl", "batch_output", ("\n".join(err) + "\n").encode(), now
            )
            self.files[stored.id] = stored
            batch.error_file_id = stored.id
        batch.set("completed")
