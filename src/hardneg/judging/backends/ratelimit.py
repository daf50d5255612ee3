"""Client-side rate limits for API judges: requests per minute and tokens per minute (asyncio).

Each limit is a token bucket that holds one minute's allowance and refills continuously, which is how
OpenAI-style limits behave: a burst up to the minute's allowance, then a steady rate. A request charges
its upper-bound tokens (prompt + max_tokens), as the provider does when it admits a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class _Bucket:
    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0  # units per second
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` is available (0 when it is now)."""
        self._refill()
        # A single request larger than a minute's allowance waits for a full bucket instead of forever.
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)


class RateLimiter:
    """Waits (asyncio) until a request fits both the requests-per-minute and tokens-per-minute limits.

    `None` disables a limit. One limiter is shared by all concurrent calls of a judge.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = _Bucket(rpm, clock) if rpm else None
        self.tokens = _Bucket(tpm, clock) if tpm else None
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time spent waiting, reported by the judge

    async def acquire(self, tokens: int = 0) -> None:
        # The lock makes waiters queue in order, so a large request is not starved by small ones.
        async with self._lock:
            while True:
                wait = 0.0
                if self.requests is not None:
                    wait = max(wait, self.requests.wait_time(1))
                if self.tokens is not None:
                    wait = max(wait, self.tokens.wait_time(tokens))
                if wait <= 0:
                    break
                self.waited_s += wait
                await asyncio.sleep(wait)
            if self.requests is not None:
                self.requests.take(1)
            if self.tokens is not None:
                self.tokens.take(tokens)
