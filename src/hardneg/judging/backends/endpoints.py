"""A pool of OpenAI-compatible endpoints behind one API judge: `base_urls: [...]` on an `openai`,
`openai-pointwise` or `openai-answer` stage (several vLLM or llama.cpp servers serving the same model).

Each request goes to the endpoint with the fewest requests in flight among those that are up (ties: the one with
the fewest failures since its last success, then round robin), with at most
`concurrency` in flight per endpoint. An endpoint whose request fails with a connection error (refused, dropped,
timed out) or a 5xx is taken out for `cooldown_s` seconds (doubling while it keeps failing, up to 16 x), and the
retry goes at once to another endpoint; when every endpoint is out, requests wait for the first to come back. A
pool of one endpoint is never taken out: its retries back off as a single server's do.

Endpoints are not part of a judge's identity: the same model behind other servers gives judgments that are
reused (`OpenAIJudge.config`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_COOLDOWN_S = 30.0
MAX_COOLDOWN_FACTOR = 16


@dataclass(slots=True, eq=False)
class Endpoint:
    """One server of the pool and what the pool knows about it."""

    url: str | None
    client: Any
    in_flight: int = 0
    requests: int = 0  # requests sent
    failures: int = 0  # requests that took it out (connection errors, 5xx)
    streak: int = 0  # failures since its last success
    down_until: float = 0.0  # time.monotonic() until which it receives nothing
    times_out: int = 0  # how often it was taken out


@dataclass(slots=True)
class EndpointPool:
    """Endpoints with a per-endpoint concurrency cap; `acquire` / `release` around each request."""

    endpoints: list[Endpoint]
    concurrency: int
    cooldown_s: float = DEFAULT_COOLDOWN_S
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    _turn: int = 0  # round robin among equally loaded endpoints

    @property
    def slots(self) -> int:
        return self.concurrency * len(self.endpoints)

    def _up(self, endpoint: Endpoint, now: float) -> bool:
        return len(self.endpoints) == 1 or endpoint.down_until <= now

    def _pick(self, now: float) -> Endpoint | None:
        free = [e for e in self.endpoints if e.in_flight < self.concurrency and self._up(e, now)]
        if not free:
            return None
        # the least loaded; among those, the one with the fewest failures since its last success
        least = min((e.in_flight, e.streak) for e in free)
        tied = [e for e in free if (e.in_flight, e.streak) == least]
        self._turn += 1
        return tied[self._turn % len(tied)]

    def others_up(self, endpoint: Endpoint) -> bool:
        now = time.monotonic()
        return any(e is not endpoint and self._up(e, now) for e in self.endpoints)

    async def acquire(self) -> Endpoint:
        async with self._cond:
            while True:
                now = time.monotonic()
                chosen = self._pick(now)
                if chosen is not None:
                    chosen.in_flight += 1
                    chosen.requests += 1
                    return chosen
                back = [e.down_until - now for e in self.endpoints if e.down_until > now]
                wait = min(back) if back and not any(self._up(e, now) for e in self.endpoints) else None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), timeout=wait)

    async def release(self, endpoint: Endpoint) -> None:
        async with self._cond:
            endpoint.in_flight -= 1
            self._cond.notify_all()

    def failed(self, endpoint: Endpoint) -> None:
        """A connection error or 5xx: out for a while (never the only endpoint)."""
        endpoint.failures += 1
        endpoint.streak += 1
        if len(self.endpoints) > 1:
            factor = min(MAX_COOLDOWN_FACTOR, 2 ** (endpoint.streak - 1))
            endpoint.down_until = time.monotonic() + self.cooldown_s * factor
            endpoint.times_out += 1

    def succeeded(self, endpoint: Endpoint) -> None:
        endpoint.streak = 0

    def report(self) -> list[dict[str, Any]]:
        return [
            {"url": e.url, "requests": e.requests, "failures": e.failures, "taken_out": e.times_out}
            for e in self.endpoints
        ]

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.close()
