"""Where a stage's work runs: in this process (``local``) or on a Ray cluster (``ray``), resolved in this one place.

`resolve_engine(engine, ray_address)` checks the choice and says where Ray is: ``ray_address``, else the
``RAY_ADDRESS`` environment variable (a cluster started with ``ray start --head``), else a Ray started on this
machine for the run (and shut down after it). Ray is imported only when a ``ray`` run starts, so ``import
hardneg`` and ``hardneg --help`` never load it; without the ``ray`` extra, ``engine="ray"`` stops with a
`ConfigError` naming the extra.

`RaySession` connects (or starts Ray) on first use. `actor_map` is the Ray Data pipeline every distributed stage
uses: blocks of rows (Arrow tables) put into the object store, a callable class run in an actor pool of a fixed
size (so a model loads once per actor), results streamed back to the driver as each block finishes. Ray Data
restarts an actor that dies and runs its block again (its defaults: unlimited actor restarts and task retries).
Stage modules (`hardneg.judging.engine`, `hardneg.retrieval.sharded`) give the callable class and the rows.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any, Literal

from hardneg.errors import ConfigError

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
RAY_EXTRA = "pip install 'hardneg[ray]'"


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """A resolved engine: ``local``, or ``ray`` with the cluster to join (None: RAY_ADDRESS, else start one)."""

    kind: Engine = "local"
    ray_address: str | None = None

    @property
    def distributed(self) -> bool:
        return self.kind == "ray"


def ray_installed() -> bool:
    return find_spec("ray") is not None


def resolve_engine(
    engine: str | EngineSpec | None = "local", ray_address: str | None = None, *, probe: bool = False
) -> EngineSpec:
    """The engine to run on, checked: ``local`` or ``ray`` (`ConfigError` naming `engine` otherwise).

    ``ray`` needs the ``ray`` extra. Its cluster is `ray_address`, else ``$RAY_ADDRESS``, else a local Ray started
    for the run. A `ray_address` with the local engine is an error (`ray_address`), not silently ignored.
    `probe`: also check now that the cluster's address answers (`check_ray_address`), as a run about to start
    does; reading a config does not.
    """
    if isinstance(engine, EngineSpec):
        if ray_address is not None and engine.ray_address is None and engine.kind == "ray":
            engine = EngineSpec("ray", ray_address)
        if probe and engine.ray_address:
            check_ray_address(engine.ray_address)
        return engine
    kind = engine or "local"
    if kind not in ENGINES:
        raise ConfigError(f"expected one of {', '.join(ENGINES)}; got {kind!r}", param="engine")
    if kind == "local":
        if ray_address:
            raise ConfigError("a Ray cluster address needs engine 'ray'", param="ray_address")
        return EngineSpec("local")
    if not ray_installed():
        raise ConfigError(f"engine 'ray' needs Ray, which is not installed: {RAY_EXTRA}", param="engine")
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if probe and address:
        check_ray_address(address)
    return EngineSpec("ray", address)


# --- Ray ------------------------------------------------------------------------------------------------------
# Seconds to wait for a Ray cluster's address to answer before `ray.init` (which would retry for minutes).
RAY_PROBE_TIMEOUT_S = 5.0


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address (``HOST:PORT`` or ``ray://HOST:PORT``); None for ``auto``, ``local`` and
    anything else without a port, which `ray.init` resolves itself."""
    rest = address.strip()
    for scheme in ("ray://", "http://", "https://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            break
    rest = rest.split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _gcs_problem(address: str, timeout: float) -> str | None:
    """What Ray's own GCS client says when asked for the cluster at `address` (None: a Ray cluster answered, or
    this Ray has no such client to ask). Asked in a thread given `timeout` seconds."""
    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]  # compiled: no stub names it
    except Exception:  # a Ray without it: `ray.init` will tell
        return None
    answer: list[str | None] = []

    def ask() -> None:
        try:
            GcsClient(address=address)  # fetches the cluster's id: raises when no Ray GCS answers
            answer.append(None)
        except Exception as exc:
            answer.append(str(exc) or type(exc).__name__)

    thread = threading.Thread(target=ask, name="hardneg-ray-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"no answer from a Ray cluster within {timeout:g} s"
    return answer[0] if answer else None


def check_ray_address(address: str, *, timeout: float = RAY_PROBE_TIMEOUT_S) -> None:
    """Stop at once (`ConfigError` naming `ray_address`) when no Ray cluster answers at `address`.

    ``HOST:PORT``: a TCP connection is tried for at most `timeout` seconds, then Ray's GCS client asks for the
    cluster (at most `timeout` seconds more), since `ray.init` would retry either for minutes. ``ray://`` (Ray
    Client) addresses get the TCP check only; ``auto``, ``local`` and addresses without a port are left to
    `ray.init`.
    """
    import socket

    target = _host_port(address)
    if target is None:
        return
    host, port = target
    reason = None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except OSError as exc:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    if reason is None and "://" not in address:
        reason = _gcs_problem(address.strip(), timeout)
    if reason is None:
        return
    source = " (from $RAY_ADDRESS)" if os.environ.get("RAY_ADDRESS", "").strip() == address.strip() else ""
    raise ConfigError(
        f"no Ray cluster answers at {address}{source}: {reason}. Check the address (the head node's HOST:PORT, "
        "port 6379 by default) and that `ray start --head` runs there",
        param="ray_address",
    )


def _quiet_ray_data() -> None:
    """Ray Data's own progress bars and INFO lines would interleave with hardneg's progress on stderr."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    for name in ("print_on_execution_start", "enable_auto_log_stats"):
        if hasattr(ctx, name):
            setattr(ctx, name, False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


class RaySession:
    """A connection to Ray, made on first use: the cluster at `address`, or a local Ray started here.

    A Ray this process already joined (``ray.init`` by the caller, as the tests do) is used as it is and left
    running; a Ray this session started is shut down by `close()`.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self.started = False
        self._connected = False

    def connect(self) -> Any:
        import ray
        import ray.data  # what `actor_map` runs on

        if not self._connected:
            if not ray.is_initialized():
                if self.address:
                    check_ray_address(self.address)  # ray.init would wait minutes for a cluster that is not there
                try:
                    # "local": a new Ray on this machine, never a stray cluster an earlier `ray start` left running
                    ray.init(
                        address=self.address or "local",
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                    )
                except (ConnectionError, RuntimeError) as exc:
                    if not self.address:
                        raise
                    raise ConfigError(
                        f"cannot join the Ray cluster at {self.address}: {exc}", param="ray_address"
                    ) from exc
                self.started = True
            _quiet_ray_data()
            self._connected = True
        return ray

    def close(self) -> None:
        if self.started:
            import ray

            ray.shutdown()
        self.started = self._connected = False

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def node_id() -> str:
    """The Ray node this process runs on ("" outside Ray)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""
    except Exception:
        return ""


@dataclass(slots=True)
class PoolSize:
    """An actor pool: `workers` actors, each reserving `num_cpus` CPUs and `num_gpus` GPUs (None: Ray's default,
    one CPU and no GPU)."""

    workers: int = 1
    num_cpus: float | None = None
    num_gpus: float | None = None


@dataclass(slots=True)
class MapStats:
    """What `actor_map` calls did (summed over calls): blocks sent, seconds from the first block put to the last
    result, seconds the workers spent working, and blocks by the node that ran them."""

    blocks: int = 0
    rows: int = 0
    put_s: float = 0.0  # putting the blocks into the object store (on the driver, before the pool starts)
    wall_s: float = 0.0
    busy_s: float = 0.0  # the workers' own seconds in their callable (a ``busy_s`` column of the results)
    nodes: dict[str, int] = field(default_factory=dict)


def actor_map(
    session: RaySession,
    blocks: Iterable[Any],
    worker: type,
    kwargs: dict[str, Any],
    pool: PoolSize,
    *,
    stats: MapStats | None = None,
    in_flight_per_actor: int = 2,
) -> Iterator[Any]:
    """Run `worker(**kwargs)` (a callable class) over `blocks` (Arrow tables) in an actor pool; yield each result
    table on the driver as it arrives (any order).

    Each block is one batch: it is put into the object store as it is produced (the driver keeps only its
    reference), runs on one actor, and comes back once. A result block may carry a ``node`` column (see
    `node_id`) and a ``busy_s`` column (the worker's seconds on the block), read from its first row into `stats`.
    """
    ray = session.connect()

    stats = stats if stats is not None else MapStats()
    started = time.perf_counter()
    refs = []
    for block in blocks:
        refs.append(ray.put(block))
        stats.rows += block.num_rows
    stats.blocks += len(refs)
    stats.put_s += time.perf_counter() - started
    if not refs:
        return
    options: dict[str, Any] = {}
    if pool.num_cpus is not None:
        options["num_cpus"] = pool.num_cpus
    if pool.num_gpus is not None:
        options["num_gpus"] = pool.num_gpus
    dataset = ray.data.from_arrow_refs(refs)
    del refs  # the dataset holds them now
    mapped = dataset.map_batches(
        worker,
        fn_constructor_kwargs=kwargs,
        batch_size=None,  # one input block, one call
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(
            size=max(1, int(pool.workers)), max_tasks_in_flight_per_actor=in_flight_per_actor
        ),
        **options,
    )
    try:
        for result in mapped.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
            if "node" in result.column_names and result.num_rows:
                node = str(result["node"][0].as_py())
                stats.nodes[node] = stats.nodes.get(node, 0) + 1
            if "busy_s" in result.column_names and result.num_rows:
                stats.busy_s += float(result["busy_s"][0].as_py() or 0.0)
            yield result
    finally:
        stats.wall_s += time.perf_counter() - started
