"""A small HTTP/1.1 server on asyncio streams, run in a background thread (127.0.0.1 only).

Hand-written rather than an ASGI app because the fault proxy must do what frameworks refuse to: close a
connection without any response, or hang mid-request. It handles what the OpenAI SDK sends: keep-alive
connections and Content-Length (or chunked) request bodies.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
MAX_BODY = 512 * 1024 * 1024


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(obj).encode("utf-8"), {"content-type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, status: int, message: str, kind: str = "invalid_request_error") -> Response:
        return cls.json({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)


def httpx_module() -> Any:
    """The HTTP client package the installed `openai` uses: httpx2 (openai >= 3) or httpx."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


DROP = object()  # a handler returns DROP to close the connection without answering
Handler = Callable[[Request], Awaitable["Response | object"]]


class LocalServer:
    """Serve `handler` on 127.0.0.1 in a daemon thread with its own event loop; `with` starts and stops it."""

    def __init__(self, handler: Handler, port: int = 0) -> None:
        self.handler = handler
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("local server did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"local server failed to start: {self._error}")
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self._server = self.loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", self.port, limit=1 << 20)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self.loop.run_until_complete(self.on_start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.on_stop())
            self.loop.close()

    async def on_start(self) -> None:
        """Hook: create loop-bound resources (HTTP clients) here."""

    async def on_stop(self) -> None:
        """Hook: close them here."""

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Awaitable[Any], timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop from another thread (tests read state this way)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------------------ protocol

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        try:
            method, target, _ = line.decode("latin-1").split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        else:
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                return None
            body = await reader.readexactly(length) if length else b""
        split = urlsplit(target)
        return Request(method.upper(), split.path, parse_qs(split.query), headers, body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    request = await self._read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    return
                if request is None:
                    return
                try:
                    result = await self.handler(request)
                except Exception as exc:  # a bug in a handler answers 500 instead of hanging the client
                    result = Response.error(500, f"stand-in handler error: {type(exc).__name__}: {exc}", "server_error")
                if result is DROP or not isinstance(result, Response):
                    writer.transport.abort()
                    return
                head = [f"HTTP/1.1 {result.status} {REASONS.get(result.status, 'Status')}"]
                headers = {"content-length": str(len(result.body)), "connection": "keep-alive", **result.headers}
                head += [f"{k}: {v}" for k, v in headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + result.body)
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            if not writer.is_closing():
                writer.close()
