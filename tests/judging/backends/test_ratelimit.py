"""The client-side rate limiter: requests and tokens per minute, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from hardneg.judging.backends.ratelimit import RateLimiter


def test_rate_limiter_waits_for_tokens_and_requests() -> None:
    now = [0.0]
    limiter = RateLimiter(rpm=2, tpm=600, clock=lambda: now[0])
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def run() -> None:
        original = asyncio.sleep
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            await limiter.acquire(100)
            await limiter.acquire(100)  # burst: both fit in the first minute
            assert slept == []
            await limiter.acquire(100)  # a third request waits for one request's refill (30 s at 2 rpm)
            assert sum(slept) == pytest.approx(30.0)
            await limiter.acquire(590)  # tokens: 600 - 300 + 30 s * 10/s = 600 left... 590 fits
            await limiter.acquire(500)  # now short of tokens and requests
            assert sum(slept) > 30.0
        finally:
            asyncio.sleep = original  # type: ignore[assignment]

    asyncio.run(run())
