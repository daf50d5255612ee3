"""A loopback chat server slower than any client timeout: every request it gets is one the client gives up on
(possibly billed). Used by the timeout tests and the soak bench's slow-server phase."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from support.http import LocalServer, Response
from support.proxy import body_key


class SlowServer:
    """Answers nothing before `delay_s` (then a 500); counts the requests it receives per prompt (`body_key`)."""

    def __init__(self, delay_s: float = 60.0) -> None:
        self.delay_s = delay_s
        self.received: Counter[str] = Counter()
        self.server = LocalServer(self._handle)

    @property
    def total(self) -> int:
        """Requests received, all prompts together."""
        return sum(self.received.values())

    async def _handle(self, request: Any) -> Any:
        self.received[body_key(request.body)] += 1
        await asyncio.sleep(self.delay_s)  # cancelled when the server stops
        return Response.error(500, "too late")

    def __enter__(self) -> SlowServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
