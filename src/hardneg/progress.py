"""Progress reporting shared by the stages and the CLI.

Stages take a callback (`StageProgress`, `CountProgress`) and call it as work gets done; the CLI turns the calls
into live bars on a terminal and into plain lines (`LineProgress`) when stderr is a file, a pipe or a scheduler's
log. The silences before counted work (loading a model, tokenising) are announced with `announce(phase)`: the CLI
prints each phase on stderr; a Python caller sees it as an INFO record of the ``hardneg`` logger, or routes it
anywhere with `set_phase_hook`.

`set_quiet(True)` (the CLI's ``--quiet``) turns the announcements off and silences the libraries' logging and
progress bars too (transformers, datasets, sentence-transformers, huggingface_hub, tqdm, Python warnings);
library code asks `is_quiet()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# (stage or step name, done, total): mining steps, cascade stages, evaluation phases.
StageProgress = Callable[[str, int, int], None]
# (items done so far): streaming readers and writers, relabelling, imports.
CountProgress = Callable[[int], None]
# (what is being done now): "loading model all-MiniLM-L6-v2", "tokenising 5,183 passages".
PhaseHook = Callable[[str], None]

# Seconds between two plain progress lines of a running task (stderr not a terminal). HARDNEG_PROGRESS_INTERVAL
# overrides it; 0 writes a line at every update (tests).
DEFAULT_INTERVAL_S = 5.0
INTERVAL_ENV = "HARDNEG_PROGRESS_INTERVAL"
# A running task whose count has not moved still gets a line this often (it is alive, and how long it has run).
HEARTBEAT_S = 60.0

logger = logging.getLogger("hardneg")

_state: dict[str, Any] = {"quiet": False, "hook": None, "saved": None, "bars_saved": None}

# Read by the libraries when they are imported (and inherited by child processes such as the ONNX export).
_QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "PYTHONWARNINGS": "ignore",
}
_QUIET_LOGGERS = (
    "hardneg",
    "transformers",
    "datasets",
    "sentence_transformers",
    "huggingface_hub",
    "accelerate",
    "peft",
    "torch",
    "onnxruntime",
    "faiss",
    "bm25s",
    "httpx",
    "openai",
    "filelock",
    "urllib3",
)


def interval_s() -> float:
    """Seconds between plain progress lines: $HARDNEG_PROGRESS_INTERVAL, else `DEFAULT_INTERVAL_S`."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: must be a number of seconds (0 or more)") from None
    if value < 0 or value != value:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: must be a number of seconds (0 or more)")
    return value


def is_quiet() -> bool:
    """True after `set_quiet(True)` (the CLI's --quiet): write no progress, no log line."""
    return bool(_state["quiet"])


def set_quiet(quiet: bool) -> None:
    """Turn progress and log output off (or back on), ours and the libraries'.

    Quiet sets the libraries' environment switches (read when they are imported, and by child processes),
    sets their loggers to ERROR, turns their progress bars off where they are already imported, and ignores
    Python warnings. `set_quiet(False)` restores what an earlier `set_quiet(True)` changed (a library imported
    in between keeps the environment switches it read at import).
    """
    if quiet and _state["saved"] is None:
        saved: dict[str, Any] = {
            "env": {name: os.environ.get(name) for name in _QUIET_ENV},
            "levels": {name: logging.getLogger(name).level for name in _QUIET_LOGGERS},
            "warnings": list(warnings.filters),
        }
        os.environ.update(_QUIET_ENV)
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
        _quiet_loaded_libraries(True)
        _state["saved"] = saved
    elif not quiet and _state["saved"] is not None:
        saved = _state["saved"]
        for name, value in saved["env"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, level in saved["levels"].items():
            logging.getLogger(name).setLevel(level)
        warnings.filters[:] = saved["warnings"]  # type: ignore[index]  # a list at run time
        mutated = getattr(warnings, "_filters_mutated", None)  # as warnings.catch_warnings does on exit
        if mutated is not None:
            mutated()
        with warnings.catch_warnings():  # a library imported while quiet keeps the switch it read then, and says so
            warnings.simplefilter("ignore")
            _quiet_loaded_libraries(False)
        _state["saved"] = None
    _state["quiet"] = bool(quiet)


_BAR_ENV = {name: _QUIET_ENV[name] for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS",
                                                 "HF_DATASETS_DISABLE_PROGRESS_BARS")}  # fmt: skip


def set_library_bars(enabled: bool) -> None:
    """Turn the libraries' own progress bars (tqdm: transformers' "Loading weights", datasets, the hub) off, or
    back on; their log lines and warnings stay. The CLI turns them off where stderr is not a terminal: there a
    tqdm bar is a run of carriage returns in a log, and hardneg's own lines say the same."""
    if not enabled and _state["bars_saved"] is None:
        _state["bars_saved"] = {name: os.environ.get(name) for name in _BAR_ENV}
        os.environ.update(_BAR_ENV)
        _library_bars(False)
    elif enabled and _state["bars_saved"] is not None:
        for name, value in _state["bars_saved"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _state["bars_saved"] = None
        if not _state["quiet"]:  # quiet keeps them off until set_quiet(False)
            _library_bars(True)


def _library_bars(enabled: bool) -> None:
    """The progress-bar switches of the libraries already imported (the environment covers the others)."""
    # an old or partial install lacks some of them: the environment switches still apply
    if "transformers" in sys.modules:
        with contextlib.suppress(Exception):
            from transformers.utils import logging as hf_logging

            (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    if "datasets" in sys.modules:
        with contextlib.suppress(Exception):
            import datasets

            (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
    if "huggingface_hub" in sys.modules:
        with contextlib.suppress(Exception):
            from huggingface_hub import utils as hub_utils

            (hub_utils.enable_progress_bars if enabled else hub_utils.disable_progress_bars)()


def _quiet_loaded_libraries(quiet: bool) -> None:
    """The libraries' own switches, for those already imported (the environment covers the others)."""
    _library_bars(not quiet)
    if "transformers" in sys.modules:
        with contextlib.suppress(Exception):
            from transformers.utils import logging as hf_logging

            (hf_logging.set_verbosity_error if quiet else hf_logging.set_verbosity_warning)()
    if "datasets" in sys.modules:
        with contextlib.suppress(Exception):
            import datasets

            (datasets.logging.set_verbosity_error if quiet else datasets.logging.set_verbosity_warning)()


def set_phase_hook(hook: PhaseHook | None) -> PhaseHook | None:
    """Send `announce`d phases to `hook` (None: to the ``hardneg`` logger); returns the hook it replaces."""
    previous = _state["hook"]
    _state["hook"] = hook
    return previous


def announce(phase: str) -> None:
    """Say what the process does now, before work that reports no count (loading a model, tokenising).

    Nothing under `set_quiet(True)`. The CLI prints it on stderr (a spinner on a terminal inside a progress
    display, a line elsewhere).
    """
    if _state["quiet"]:
        return
    hook = _state["hook"]
    if hook is None:
        logger.info(phase)
    else:
        hook(phase)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2g}" if value < 1 else f"{value:.1f}"


@dataclass
class LineTask:
    """One task of a `LineProgress` (the fields rich's `Task` has that the verbs use)."""

    id: int
    description: str
    total: float | None
    completed: float = 0
    visible: bool = True
    started: bool = False
    finished: bool = False
    phase: bool = False
    start_time: float | None = None
    stop_time: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    # the count and time of the last line written for it
    shown: float = -1
    shown_at: float = 0.0

    @property
    def elapsed(self) -> float | None:
        if self.start_time is None:
            return None
        return (self.stop_time or time.monotonic()) - self.start_time

    @property
    def percentage(self) -> float:
        return 100.0 * self.completed / self.total if self.total else 0.0


def _set_given(
    task: LineTask, *, total: float | None, description: str | None, visible: bool | None, fields: dict[str, Any]
) -> None:
    """Set the task's attributes that were given (None: leave as is), as rich's update/reset do."""
    if total is not None:
        task.total = total
    if description is not None:
        task.description = description
    if visible is not None:
        task.visible = visible
    task.fields.update(fields)


class LineProgress:
    """Progress as plain lines on stderr, for logs: a drop-in for the parts of `rich.progress.Progress` the CLI uses.

    A line when a task starts, one every `interval` seconds while it runs (``description: done/total (pct),
    rate/s, elapsed, ETA``; ``done`` and elapsed when the total is unknown; a task whose count has not moved
    gets one every `HEARTBEAT_S`), and one when it finishes (its count reaches the total, or the display
    stops). With `interval` 0 a line is written at every update instead. `enabled=False` writes nothing.
    """

    def __init__(
        self,
        *,
        interval: float | None = None,
        write: Callable[[str], None] | None = None,
        enabled: bool = True,
    ) -> None:
        self.interval = interval_s() if interval is None else interval
        self.enabled = enabled
        self._write_line = write or _write_stderr
        self._tasks: dict[int, LineTask] = {}
        self._next_id = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- context ---------------------------------------------------------------------------------------------
    def __enter__(self) -> LineProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.enabled and self.interval > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick, name="hardneg-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5)
        with self._lock:
            for task in self._tasks.values():
                if task.started and not task.finished:
                    self._finish(task, stopped=task.total is not None and task.completed < task.total)

    # -- the rich.progress.Progress API ----------------------------------------------------------------------
    @property
    def tasks(self) -> list[LineTask]:
        with self._lock:
            return list(self._tasks.values())

    @property
    def task_ids(self) -> list[int]:
        with self._lock:
            return list(self._tasks)

    @property
    def finished(self) -> bool:
        with self._lock:
            return all(task.finished for task in self._tasks.values())

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: float = 0,
        visible: bool = True,
        **fields: Any,
    ) -> int:
        with self._lock:
            self._end_phases()
            task = LineTask(self._next_id, description, total, completed, visible, fields=dict(fields))
            self._tasks[task.id] = task
            self._next_id += 1
            if start:
                self._start(task)
            return task.id

    def start_task(self, task_id: int) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if not task.started:
                self._start(task)

    def stop_task(self, task_id: int) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if task.started and not task.finished:
                self._finish(task, stopped=task.total is not None and task.completed < task.total)

    def remove_task(self, task_id: int) -> None:
        with self._lock:
            task = self._tasks.pop(task_id, None)
            if task is not None and task.started and not task.finished:
                self._finish(task, stopped=task.total is not None and task.completed < task.total)

    def update(
        self,
        task_id: int,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        visible: bool | None = None,
        refresh: bool = False,
        **fields: Any,
    ) -> None:
        with self._lock:
            task = self._tasks[task_id]
            before = task.completed
            if advance is not None:
                task.completed += advance
            if completed is not None:
                task.completed = completed
            if task.completed != before and not task.phase:
                # a phase announced inside counted work (a lazy model load in the first call) is over when the
                # count moves again: no "loading ..." heartbeat beside a task that is plainly running
                self._end_phases()
            _set_given(task, total=total, description=description, visible=visible, fields=fields)
            self._after_update(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def reset(
        self,
        task_id: int,
        *,
        start: bool = True,
        total: float | None = None,
        completed: float = 0,
        visible: bool | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        with self._lock:
            task = self._tasks[task_id]
            task.completed = completed
            task.finished = False
            task.started = False
            task.start_time = task.stop_time = None
            task.shown = -1
            _set_given(task, total=total, description=description, visible=visible, fields=fields)
            if start:
                self._start(task)

    def refresh(self) -> None:
        """Nothing to redraw: lines are written as they come."""

    def print(self, *objects: Any, **_: Any) -> None:
        self._emit(" ".join(str(o) for o in objects))

    def log(self, *objects: Any, **_: Any) -> None:
        self.print(*objects)

    # -- phases ----------------------------------------------------------------------------------------------
    def phase(self, message: str) -> None:
        """A step without a count (loading a model): its line now, then a heartbeat until the next task starts or
        another task's count moves."""
        with self._lock:
            self._end_phases()
            task = LineTask(self._next_id, message, None, phase=True)
            self._tasks[task.id] = task
            self._next_id += 1
            self._start(task)

    def _end_phases(self) -> None:
        for task in list(self._tasks.values()):
            if task.phase:
                del self._tasks[task.id]

    # -- lines -----------------------------------------------------------------------------------------------
    def _emit(self, line: str) -> None:
        if self.enabled:
            self._write_line(line)

    def _start(self, task: LineTask) -> None:
        task.started = True
        task.start_time = time.monotonic()
        task.shown, task.shown_at = task.completed, task.start_time
        if task.visible:
            if task.phase:
                self._emit(task.description)
            else:
                total = f" ({_num(task.total)} to do)" if task.total is not None and task.total != 1 else ""
                self._emit(f"{task.description}: started{total}")
        self._after_update(task)

    def _after_update(self, task: LineTask) -> None:
        if not task.started or task.finished:
            return
        if task.total is not None and task.completed >= task.total:
            self._finish(task)
        elif self.interval <= 0 and task.completed != task.shown:
            self._show(task)

    def _finish(self, task: LineTask, stopped: bool = False) -> None:
        task.finished = True
        task.stop_time = time.monotonic()
        if not task.visible or task.phase:
            return
        elapsed = task.elapsed or 0.0
        count = _num(task.completed) if task.total is None else f"{_num(task.completed)}/{_num(task.total)}"
        single = task.total is not None and task.total <= 1  # one step (loading a model): its time says it all
        # under a second the rate is noise (809 queries searched in one batch read "17,074,355/s"): the time says it
        rate = f", {_rate(task.completed / elapsed)}/s" if elapsed >= 1 and task.completed and not single else ""
        word = "stopped at" if stopped else "done,"
        self._emit(f"{task.description}: {word} {count} in {_clock(elapsed)}{rate}")

    def _show(self, task: LineTask) -> None:
        now = time.monotonic()
        task.shown, task.shown_at = task.completed, now
        if not task.visible:
            return
        elapsed = task.elapsed or 0.0
        if task.phase:
            self._emit(f"{task.description}: {_clock(elapsed)} elapsed")
            return
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        if task.total is None:
            self._emit(f"{task.description}: {_num(task.completed)}, {_rate(rate)}/s, elapsed {_clock(elapsed)}")
            return
        eta = _clock((task.total - task.completed) / rate) if rate > 0 else "-"
        self._emit(
            f"{task.description}: {_num(task.completed)}/{_num(task.total)} ({task.percentage:.0f}%), "
            f"{_rate(rate)}/s, elapsed {_clock(elapsed)}, ETA {eta}"
        )

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                now = time.monotonic()
                for task in self._tasks.values():
                    if not task.started or task.finished:
                        continue
                    moved = task.completed != task.shown
                    if moved or now - task.shown_at >= max(HEARTBEAT_S, self.interval):
                        self._show(task)


def _write_stderr(line: str) -> None:
    stream = sys.stderr
    stream.write(line + "\n")
    stream.flush()
