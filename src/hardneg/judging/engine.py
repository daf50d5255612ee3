"""Where a cascade stage's calls run: in this process (`LocalEngine`) or in a Ray actor pool (`RayEngine`).

The cascade runner claims each call in the store, hands the engine the claimed (instance, docids) pairs, and
stores every (instance, output) the engine yields as it arrives; resume, claims and the report stay the runner's.
An engine only decides where `hardneg.judging.batch.judge_items` runs:

- `LocalEngine`: here, ``judge_items(judge, items, mode=...)`` (what the runner always did).
- `RayEngine`: the claimed instances travel as Arrow blocks of `batch_size` instances (pickled `Instance`s and
  the docids to judge) through a Ray Data pipeline (`hardneg.cluster.actor_map`): each stage runs in a pool of
  `workers` actors, each reserving `num_cpus` / `num_gpus`, that build the judge once with
  ``build_judge(backend, **params)`` and call `judge_items` on each block. Results stream back to the driver,
  which stores them with the same keys as the local engine. A worker that dies is restarted by Ray and its
  block judged again; the driver keeps the first answer of any instance it sees twice. Only calls in flight on
  a dying worker are repeated (as for a killed local run); a call in the store is never sent again, because the
  runner leaves stored calls out before they are dispatched.

Claimed calls go to Ray in windows of `window` instances: each window is one Ray Data run, so the driver never
holds more than one window's claims, and each worker loads its judge once per window.

Stages that stay on the driver under the Ray engine: judges handed in ready (``judges=`` of `run_cascade`: they
are objects of this process) and the Batch API (`openai-batch`, already a remote queue). A judge backend
registered with `register_backend` in this process is sent to the workers with the stage; a dotted
``package.module:Class`` backend must be importable on every node. An API stage's key (the variable its
`api_key_env` names) is passed from the driver's environment to its workers.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hardneg.cluster import EngineSpec, MapStats, PoolSize, RaySession, actor_map, node_id
from hardneg.data.records import Instance
from hardneg.judging.base import Judge, JudgeStopped
from hardneg.judging.batch import StageMode, judge_items
from hardneg.judging.registry import BACKENDS, build_judge, register_backend, resolve_backend
from hardneg.judging.verdicts import JudgeOutput

# Instances per block when the stage does not say (`batch_size`): small enough that a dead worker repeats few
# calls and results reach the store steadily, large enough to amortise Ray's per-block cost (docs/benchmarks.md).
DEFAULT_BATCH_SIZE = 16
# Instances per Ray Data run (see the module docstring).
DEFAULT_WINDOW = 20_000
# Backends that run on the driver whatever the engine.
DRIVER_BACKENDS = frozenset({"openai-batch"})


@dataclass(slots=True)
class StageTask:
    """What an engine needs to know about a stage: its judge (backend and params), how it reads answers, and
    its pool (Ray only; never part of a call's identity)."""

    name: str
    backend: str
    params: dict[str, Any] = field(default_factory=dict)
    mode: StageMode = "score"
    pool: PoolSize = field(default_factory=PoolSize)
    batch_size: int | None = None


class LocalEngine:
    """Every call in this process (the judge's own concurrency, if it has any)."""

    kind = "local"

    def judge_items(
        self, task: StageTask, judge: Judge, items: Iterable[tuple[Instance, Sequence[str]]]
    ) -> Iterator[tuple[Instance, JudgeOutput]]:
        return judge_items(judge, items, mode=task.mode)

    def close(self) -> None:
        return None


def _takes(backend: str, name: str) -> bool:
    try:
        return name in inspect.signature(resolve_backend(backend)).parameters
    except (TypeError, ValueError):
        return False


class StageWorker:
    """A Ray Data callable class: builds the stage's judge once, then judges one block of instances per call.

    Input columns: ``instance`` (a pickled `Instance`) and ``docids``. Output columns: ``query_id``, ``output``
    (a pickled `JudgeOutput`), ``instance`` (passed back, so the driver holds no window of instances), and the
    worker's ``pid``, ``node``, ``busy_s``, ``init_s`` (building its judge, on its first block only; 0 after),
    ``stats`` (its judge's counters, JSON) and ``stopped`` (why the judge stopped the run, e.g. credentials
    refused; "" otherwise).
    """

    def __init__(
        self,
        backend: str,
        params: dict[str, Any],
        mode: StageMode,
        factory: Any = None,
        threads: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        os.environ.update(env or {})  # the API key the stage names (`api_key_env`), read from the driver's environment
        if factory is not None:
            register_backend(backend, factory)  # a backend registered in the driver process
        params = dict(params)
        if threads and "n_threads" not in params and _takes(backend, "n_threads"):
            params["n_threads"] = threads  # the CPUs Ray reserved for this actor, not every CPU of the node
        started = time.perf_counter()
        self.judge = build_judge(backend, **params)
        self.mode = mode
        self.pid = os.getpid()
        self.node = node_id()
        self.init_s = time.perf_counter() - started  # building the judge (a model loads on its first call)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        started = time.perf_counter()
        blobs = batch.column("instance").to_pylist()
        docids = batch.column("docids").to_pylist()
        items = [(pickle.loads(blob), list(ids)) for blob, ids in zip(blobs, docids, strict=True)]
        sent = {instance.query_id: blob for (instance, _), blob in zip(items, blobs, strict=True)}
        answered: list[tuple[str, bytes]] = []
        stopped = ""
        try:
            for instance, out in judge_items(self.judge, items, mode=self.mode):
                answered.append((instance.query_id, pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)))
        except JudgeStopped as exc:
            stopped = str(exc) or "the judge stopped the run"
        stats = getattr(self.judge, "stats", None)
        counters = {k: v for k, v in stats.items() if isinstance(v, int | float)} if isinstance(stats, dict) else {}
        if not answered:
            answered.append(("", b""))  # one row, so the stop and the counters reach the driver
        n = len(answered)
        init_s, self.init_s = self.init_s, 0.0
        return pa.table(
            {
                "query_id": [qid for qid, _ in answered],
                "output": pa.array([out for _, out in answered], type=pa.binary()),
                "instance": pa.array([sent.get(qid, b"") for qid, _ in answered], type=pa.binary()),
                "pid": [self.pid] * n,
                "node": [self.node] * n,
                "busy_s": [time.perf_counter() - started] * n,
                "init_s": [init_s] * n,
                "stats": [json.dumps(counters)] + [""] * (n - 1),
                "stopped": [stopped] * n,
            }
        )


class RayEngine:
    """Each stage in a Ray actor pool (see the module docstring); `stats` holds what each stage's pool did, and
    `actors` each stage's actors seen (pid: seconds it took to build its judge), `blocks` each stage's blocks
    as they came back (the pid that judged it, its seconds there: a lazy judge's model load is in its first)."""

    kind = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        ready: Iterable[str] = (),
        window: int = DEFAULT_WINDOW,
        session: RaySession | None = None,
    ) -> None:
        self.session = session or RaySession(address)
        self.ready = set(ready)
        self.window = max(1, int(window))
        self.stats: dict[str, MapStats] = {}
        self.actors: dict[str, dict[int, float]] = {}
        self.blocks: dict[str, list[tuple[int, float]]] = {}

    def on_driver(self, task: StageTask) -> bool:
        return task.name in self.ready or task.backend in DRIVER_BACKENDS

    def judge_items(
        self, task: StageTask, judge: Judge, items: Iterable[tuple[Instance, Sequence[str]]]
    ) -> Iterator[tuple[Instance, JudgeOutput]]:
        if self.on_driver(task):
            yield from judge_items(judge, items, mode=task.mode)
            return
        source = iter(items)
        batch = task.batch_size or DEFAULT_BATCH_SIZE
        target = BACKENDS.get(task.backend)
        kwargs = {
            "backend": task.backend,
            "params": dict(task.params),
            "mode": task.mode,
            "factory": target if callable(target) else None,
            "threads": max(1, int(task.pool.num_cpus or 1)),
            "env": _forwarded_env(task),
        }
        stats = self.stats.setdefault(task.name, MapStats())
        actors = self.actors.setdefault(task.name, {})
        blocks = self.blocks.setdefault(task.name, [])
        seen: set[str] = set()
        while True:
            taken = [0]
            results = actor_map(self.session, self._blocks(source, batch, taken), StageWorker, kwargs, task.pool,
                                stats=stats)  # fmt: skip
            try:
                for table in results:
                    _merge_stats(judge, table)
                    if table.num_rows:
                        pid = int(table["pid"][0].as_py())
                        actors[pid] = actors.get(pid, 0.0) + float(table["init_s"][0].as_py() or 0.0)
                        blocks.append((pid, float(table["busy_s"][0].as_py() or 0.0)))
                    stopped = table["stopped"][0].as_py() if table.num_rows else ""
                    for qid, out, blob in zip(
                        table["query_id"].to_pylist(), table["output"].to_pylist(), table["instance"].to_pylist(),
                        strict=True,
                    ):  # fmt: skip
                        if not qid or qid in seen:
                            continue  # a stop marker, or a block run twice after its worker died: first answer wins
                        seen.add(qid)
                        yield pickle.loads(blob), pickle.loads(out)
                    if stopped:
                        raise JudgeStopped(stopped)
            finally:
                results.close()  # type: ignore[attr-defined]  # a generator (ray Dataset.iter_rows)
            if taken[0] < self.window:
                return

    def _blocks(self, source: Iterator[tuple[Instance, Sequence[str]]], batch: int, taken: list[int]) -> Iterator[Any]:
        """Blocks of `batch` claimed instances, up to one window (`taken[0]` counts them)."""
        import pyarrow as pa

        rows: list[tuple[bytes, list[str]]] = []

        def block() -> Any:
            table = pa.table(
                {
                    "instance": pa.array([blob for blob, _ in rows], type=pa.binary()),
                    "docids": pa.array([ids for _, ids in rows], type=pa.list_(pa.string())),
                }
            )
            rows.clear()
            return table

        for instance, docids in source:  # drawing an item claims its call (the runner's generator)
            rows.append((pickle.dumps(instance, protocol=pickle.HIGHEST_PROTOCOL), list(docids)))
            taken[0] += 1
            if len(rows) >= batch:
                yield block()
            if taken[0] >= self.window:
                break
        if rows:
            yield block()

    def close(self) -> None:
        self.session.close()


def _forwarded_env(task: StageTask) -> dict[str, str]:
    """The environment variable an API stage reads its key from (`api_key_env`, default OPENAI_API_KEY), when the
    driver has it: workers on other machines do not share the driver's environment. It travels with the stage's
    actor arguments inside the Ray cluster, never to the store, a report or a log."""
    if not _takes(task.backend, "api_key_env"):
        return {}
    name = str(task.params.get("api_key_env", "OPENAI_API_KEY"))
    value = os.environ.get(name)
    return {name: value} if value else {}


def _merge_stats(judge: Judge, table: Any) -> None:
    """The workers' judge counters (requests, retries, possibly billed...) added to the driver's judge, which the
    runner reads for its report."""
    stats = getattr(judge, "stats", None)
    if not isinstance(stats, dict) or not table.num_rows:
        return
    text = table["stats"][0].as_py()
    if not text:
        return
    for key, value in json.loads(text).items():
        current = stats.get(key, 0)
        if isinstance(current, int | float):
            stats[key] = current + value


StageEngine = LocalEngine | RayEngine


def make_engine(spec: EngineSpec, *, ready: Iterable[str] = ()) -> StageEngine:
    """The engine of a resolved `EngineSpec` (`hardneg.cluster.resolve_engine`); `ready` names the stages whose
    judges were handed in built (they run on the driver)."""
    if spec.kind == "ray":
        return RayEngine(spec.ray_address, ready=ready)
    return LocalEngine()
