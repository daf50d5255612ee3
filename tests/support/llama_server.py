"""Start llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1.

It needs the `api` extra's server packages (fastapi, uvicorn, sse-starlette, starlette-context,
pydantic-settings). The server answers one completion at a time (one llama context per model); concurrent
requests queue inside it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """A real llama.cpp chat server in a subprocess; `with LlamaServer(...) as server: server.base_url`."""

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        api_key: str | None = None,
        model_alias: str = "local-judge",
        seed: int = 0,
        log_path: str | Path | None = None,
        startup_timeout: float = 180.0,
        logits_all: bool = False,
    ) -> None:
        from hardneg.models import gguf_path

        self.model_path = gguf_path(model)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.api_key = api_key
        self.model_alias = model_alias
        self.seed = seed
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.logits_all = logits_all  # llama-cpp-python's server returns logprobs only with every position's logits
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> LlamaServer:
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_alias,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--seed", str(self.seed),
            "--verbose", "False",
            *(["--logits_all", "True"] if self.logits_all else []),
        ]  # fmt: skip
        env = dict(os.environ)
        if self.api_key:
            # passed by environment (pydantic-settings reads API_KEY), not argv, so `ps` does not show it
            env["API_KEY"] = self.api_key
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        from support.http import httpx_module

        http = httpx_module()
        deadline = time.monotonic() + self.startup_timeout
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp server exited with code {self.process.returncode} (log: {self.log_path})"
                )
            try:
                reply = http.get(f"{self.base_url}/models", headers=headers, timeout=2.0)
                if reply.status_code == 200:
                    return
            except http.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama.cpp server not ready after {self.startup_timeout:.0f} s (log: {self.log_path})")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
