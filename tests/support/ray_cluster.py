"""Real Ray clusters on this machine for the engine tests (`--engine ray`), and judges that say where they ran.

- `local_ray(num_cpus)`: ``ray.init`` in the test process (a local cluster, its workers importing `support`
  through PYTHONPATH), shut down after.
- `TwoNodeCluster`: ``ray start --head --block`` on 127.0.0.1 and a second ``ray start --address ... --block``,
  each a child process of the test stopped by its own PID (never ``ray stop``, which stops every Ray on the
  machine), so that a driver given ``RAY_ADDRESS`` schedules actors on two raylets. The cluster uses Ray's token
  authentication with a token of its own (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH`` in its temp folder):
  a process that joins it by address needs `TwoNodeCluster.env`, as a driver joining a real cluster needs the
  cluster's token.
- `NodeLoggingJudge`: `support.call_log_judges.CountingJudge` that also writes the Ray node and pid of each call,
  so a test sees which raylet judged what.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardneg.cluster import node_id
from hardneg.data.records import Instance
from hardneg.judging.verdicts import JudgeOutput
from support.call_log_judges import CountingJudge
from support.llama_server import free_port

TESTS = str(Path(__file__).resolve().parents[1])


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Ray processes and `hardneg` subprocesses: `support` importable, quiet, offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS, env.get("PYTHONPATH", "")) if p)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.update(extra or {})
    return env


@contextlib.contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'hardneg[ray]')")
    saved = dict(os.environ)
    os.environ.update(worker_env())  # the raylet and its workers inherit it
    try:
        ray.init(
            address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="warning"
        )
    finally:
        auth = os.environ.get("RAY_AUTH_MODE")  # set by ray.init when the cluster uses token authentication
        os.environ.clear()
        os.environ.update(saved)
        if auth:
            os.environ["RAY_AUTH_MODE"] = auth  # so drivers in subprocesses present the token too
    try:
        yield ray
    finally:
        ray.shutdown()


def ray_binary() -> str:
    return str(Path(sys.executable).with_name("ray"))


class TwoNodeCluster:
    """A head and a second node on 127.0.0.1, `cpus` CPUs each: ``with TwoNodeCluster() as c: c.address``."""

    def __init__(self, cpus: int = 1, startup_timeout: float = 120.0) -> None:
        self.cpus = cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.timeout = startup_timeout
        self.temp = Path(tempfile.mkdtemp(prefix="hardneg-ray-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        token = self.temp / "auth_token"
        token.write_text(secrets.token_hex(32), encoding="utf-8")
        token.chmod(0o600)
        # every process of the cluster, and every client of it, presents this token (never ~/.ray/auth_token)
        self.env = worker_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})

    def _start(self, *args: str, log: str) -> None:
        handle = open(self.temp / log, "wb")  # noqa: SIM115 - closed with the process
        common = ["--block", f"--num-cpus={self.cpus}", "--num-gpus=0", "--disable-usage-stats"]
        process = subprocess.Popen(
            [ray_binary(), "start", *args, *common], stdout=handle, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)

    def _nodes(self) -> int:
        probe = (
            f"import ray; ray.init(address={self.address!r}, logging_level='error'); "
            "print(sum(1 for n in ray.nodes() if n['Alive'])); ray.shutdown()"
        )
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=self.env, timeout=120)
        try:
            return int(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def __enter__(self) -> TwoNodeCluster:
        self._start(
            "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}", "--include-dashboard=false",
            f"--temp-dir={self.temp}", log="head.log",
        )  # fmt: skip
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self._nodes() < 1:
            time.sleep(1)
        self._start(f"--address={self.address}", "--node-ip-address=127.0.0.1", log="node2.log")
        while time.monotonic() < deadline and self._nodes() < 2:
            time.sleep(1)
        if self._nodes() < 2:
            self._stop()
            raise RuntimeError(f"the two-node Ray cluster did not start (logs in {self.temp})")
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop()
        if exc_type is None:
            shutil.rmtree(self.temp, ignore_errors=True)  # kept after a failure: its logs say why

    def _stop(self) -> None:
        # each `ray start --block` stops the processes it started when it is terminated; the node first
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def read_node_log(path: str | os.PathLike[str]) -> list[tuple[str, int, str]]:
    """(query_id, pid, node id) of each call a `NodeLoggingJudge` logged."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    except FileNotFoundError:
        return []
    return [(qid, int(pid), node) for qid, pid, node in rows]


class NodeLoggingJudge(CountingJudge):
    """`CountingJudge` whose call log lines also name the Ray node (``query_id<TAB>pid<TAB>node``)."""

    kind = "node-logging"

    def judge(self, instance: Instance, docids: list[str]) -> JudgeOutput:  # type: ignore[override]
        log, self.log = self.log, None
        try:
            if log:
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, f"{instance.query_id}\t{os.getpid()}\t{node_id()}\n".encode())
                finally:
                    os.close(fd)
            return super().judge(instance, docids)
        finally:
            self.log = log
