"""A fault-injecting HTTP proxy in front of a real OpenAI-compatible server (127.0.0.1 only).

Every request is forwarded to the upstream server, except that a chosen fraction of chat-completion calls
is answered with a fault instead: HTTP 500, HTTP 429 with Retry-After, a hang (the client's timeout fires),
a dropped connection, a 200 whose body is not JSON, a completion cut short (finish_reason "length") or a
completion whose text is replaced by garbage. Which fault a call gets is decided by a seeded hash of the
request body and how many times that body was seen, so a run is reproducible whatever order concurrent
calls arrive in, and a retried call can succeed.

The proxy counts what it saw: faults by kind, and completions delivered per request body (so a test can
prove a finished call was never repeated).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from support.http import DROP, LocalServer, Request, Response, httpx_module

FAULTS = ("error_500", "rate_429", "timeout", "drop", "bad_body", "truncate", "garbage")
# hop-by-hop or length headers that the proxy recomputes
_SKIP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive"}


@dataclass(slots=True)
class FaultPlan:
    """Probability of each fault per chat call (the rest pass through unchanged)."""

    error_500: float = 0.0
    rate_429: float = 0.0
    timeout: float = 0.0
    drop: float = 0.0
    bad_body: float = 0.0
    truncate: float = 0.0
    garbage: float = 0.0
    seed: int = 0
    retry_after_s: float = 0.2  # what a 429 asks for
    hang_s: float = 30.0  # how long a "timeout" fault holds the request before dropping it
    only_first_attempt: bool = False  # fault a body only the first time it is seen (every call then succeeds)
    permanent: set[str] = field(default_factory=set)  # body hashes that always get error_500 (never succeed)

    def total(self) -> float:
        return sum(getattr(self, name) for name in FAULTS)


def prompt_key(prompt: str) -> str:
    """The `body_key` of a one-user-message chat call with this prompt."""
    messages = [{"role": "user", "content": prompt}]
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def body_key(body: bytes) -> str:
    """Identity of a chat call: the hash of the prompt messages (not of sampling options)."""
    try:
        messages = json.loads(body).get("messages")
        text = json.dumps(messages, sort_keys=True)
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class FaultProxy(LocalServer):
    """Forward to `upstream` (base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:PORT)."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None, *, port: int = 0, timeout: float = 600) -> None:
        super().__init__(self.handle, port)
        self.upstream = upstream.rstrip("/")
        self.plan = plan or FaultPlan()
        self.upstream_timeout = timeout
        self.faults: Counter[str] = Counter()  # fault kind -> times injected
        self.requests: Counter[str] = Counter()  # path -> requests received
        self.seen: Counter[str] = Counter()  # body key -> chat calls received
        self.delivered: Counter[str] = Counter()  # body key -> completions passed back intact
        self.auth_headers: set[str] = set()  # what clients sent as Authorization (tests check the key went out)
        self._client: Any = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL clients should use."""
        return f"{self.url}/v1"

    async def on_start(self) -> None:
        self._client = httpx_module().AsyncClient(timeout=self.upstream_timeout)

    async def on_stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _choose(self, key: str, nth: int) -> str | None:
        if key in self.plan.permanent:
            return "error_500"
        if self.plan.only_first_attempt and nth > 1:
            return None
        rng = random.Random(f"{self.plan.seed}:{key}:{nth}")
        roll = rng.random()
        for name in FAULTS:
            share = getattr(self.plan, name)
            if roll < share:
                return name
            roll -= share
        return None

    async def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k not in _SKIP_HEADERS}
        query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
        url = self.upstream + request.path + (f"?{query}" if query else "")
        reply = await self._client.request(request.method, url, headers=headers, content=request.body)
        out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in _SKIP_HEADERS}
        out_headers.pop("content-encoding", None)
        return Response(reply.status_code, reply.content, out_headers)

    async def handle(self, request: Request) -> Response | object:
        self.requests[request.path] += 1
        if "authorization" in request.headers:
            self.auth_headers.add(request.headers["authorization"])
        if not (request.method == "POST" and request.path.endswith("/chat/completions")):
            return await self._forward(request)
        key = body_key(request.body)
        self.seen[key] += 1
        fault = self._choose(key, self.seen[key])
        if fault is not None:
            self.faults[fault] += 1
        if fault == "error_500":
            return Response.error(500, "injected server error", "server_error")
        if fault == "rate_429":
            response = Response.error(429, "injected rate limit", "rate_limit_exceeded")
            response.headers["retry-after"] = f"{self.plan.retry_after_s:g}"
            return response
        if fault == "timeout":
            await asyncio.sleep(self.plan.hang_s)
            return DROP
        if fault == "drop":
            return DROP
        if fault == "bad_body":
            return Response(200, b"<html>upstream overloaded</html>", {"content-type": "application/json"})
        response = await self._forward(request)
        if response.status != 200:
            return response
        if fault in ("truncate", "garbage"):
            data = json.loads(response.body)
            message = data["choices"][0]["message"]
            text = message.get("content") or ""
            if fault == "truncate":
                message["content"] = text[: max(1, len(text) // 3)]
                data["choices"][0]["finish_reason"] = "length"
            else:
                rng = random.Random(f"{self.plan.seed}:garbage:{key}")
                words = ["lorem", "verdict", "Doc", "ipsum", "<better", "]]", "none", "42"]
                message["content"] = " ".join(rng.choice(words) for _ in range(30))
            return Response.json(data)
        self.delivered[key] += 1
        return response
