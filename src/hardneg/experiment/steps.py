"""A small step graph with a content-keyed cache, so an experiment resumes where it stopped.

Each step writes into its own folder `steps/<kind>/<label>-<key>/`, where `key` hashes the step's config,
the content hashes of the external files it reads and the output hashes of the steps it depends on.
A folder counts as done when its `manifest.json` (written last, and the folder renamed into place
atomically) has that key and every declared output is still there. So:
- a crash leaves no half-written step: the next run redoes only what is missing;
- deleting one output (say one variant's model) redoes that step, and its dependents only if the new output
  differs (they are keyed by the output's content hash);
- changing a step's config gives it a new key (a new folder): old results are kept, never mixed in.
Every run appends one line per step to `steps.log.jsonl` (status `cached`, `ran` or `failed`).
A run holds a lock on the folder (a second concurrent run fails at once) and first removes the temp folders
that a killed run left behind.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.data.atomic import MARKER, TEMP_MARK, atomic_dir, atomic_path, mark_folder
from hardneg.errors import HardnegError

# What the experiment's steps exchange: a data step's training rows, a training step's model folder.
TRAIN_FILE = "train.jsonl.gz"
MODEL_DIR = "model"
MANIFEST = "manifest.json"
STEP_LOG = "steps.log.jsonl"
LOCK = ".lock"

Progress = Callable[[str], None]


def _say_step(say: Callable[[str], Any], step_id: str, message: str) -> None:
    say(f"{step_id}: {message}")


def tenths(say: Callable[[str], None]) -> Callable[[str, int, int], None]:
    """A `progress(stage, done, total)` that tells `say` ``"STAGE done/total"`` once per tenth of each stage."""
    last: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        tenth = (10 * done) // max(1, total)
        if tenth != last.get(stage):
            last[stage] = tenth
            say(f"{stage} {done}/{total}")

    return progress


def hash_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def hash_path(path: Path, *, skip: tuple[str, ...] = (MANIFEST,)) -> str:
    """Content hash of a file, or of a folder (relative names and contents, sorted)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.name not in skip)
    for file in files:
        rel = "." if file == path else file.relative_to(path).as_posix()
        digest.update(rel.encode("utf-8") + b"\0")
        with open(file, "rb") as handle:
            for block in iter(functools.partial(handle.read, 1 << 22), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class ExternalHashes:
    """Content hashes of input files/folders, remembered by (size, mtime) so large corpora are read once."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = cache_file
        self.cache: dict[str, Any] = {}
        if cache_file.is_file():
            try:
                self.cache = json.loads(cache_file.read_text())
            except (OSError, json.JSONDecodeError):
                self.cache = {}

    def _stamp(self, path: Path) -> list[Any]:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]

    def get(self, path: Path) -> str:
        path = Path(path).resolve()
        stamp = self._stamp(path)
        entry = self.cache.get(str(path))
        if entry and entry.get("stamp") == stamp:
            return str(entry["hash"])
        value = hash_path(path, skip=())
        self.cache[str(path)] = {"stamp": stamp, "hash": value}
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.cache_file) as tmp:
            tmp.write_text(json.dumps(self.cache))
        return value


@dataclass
class StepContext:
    """What a step's function gets: its (temporary) output folder and its inputs' folders."""

    out: Path
    inputs: dict[str, Path]  # role -> folder of the upstream step
    input_summaries: dict[str, dict[str, Any]]  # role -> that step's summary
    external: dict[str, Path]
    experiment_dir: Path
    progress: Progress


@dataclass
class Step:
    id: str  # unique, readable: "train/rlhn-cascade/seed0"
    kind: str  # mine, judge, relabel, train, evaluate, ...
    config: dict[str, Any]
    run: Callable[[StepContext], dict[str, Any]]  # writes into ctx.out; returns a JSON-able summary
    outputs: tuple[str, ...] = ()  # names that must exist in the folder for it to count as done
    inputs: dict[str, str] = field(default_factory=dict)  # role -> upstream step id
    external: dict[str, Path] = field(default_factory=dict)  # role -> input file/folder (content-hashed)


@dataclass
class StepRecord:
    id: str
    kind: str
    status: str  # cached / ran / pending (dry run: would run) / failed
    key: str | None
    folder: Path | None
    summary: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    reason: str = ""


def _label(step_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", step_id.split("/", 1)[-1])[:80] or "step"


class StepGraph:
    """Steps in dependency order, run or planned against one experiment folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.steps: dict[str, Step] = {}
        self.external_hashes = ExternalHashes(self.folder / "cache" / "external-hashes.json")

    def add(self, step: Step) -> Step:
        if step.id in self.steps:
            raise HardnegError(f"step {step.id!r} defined twice")
        for role, upstream in step.inputs.items():
            if upstream not in self.steps:
                raise HardnegError(f"step {step.id!r}: input {role} names unknown step {upstream!r}")
        self.steps[step.id] = step
        return step

    def _key(self, step: Step, output_hashes: dict[str, str]) -> str | None:
        """The step's cache key, or None while an input has not been produced yet."""
        upstream: dict[str, str] = {}
        for role, step_id in step.inputs.items():
            if step_id not in output_hashes:
                return None
            upstream[role] = output_hashes[step_id]
        external = {role: self.external_hashes.get(path) for role, path in step.external.items()}
        return hash_json({"kind": step.kind, "config": step.config, "inputs": upstream, "external": external})

    def folder_of(self, step: Step, key: str) -> Path:
        return self.folder / "steps" / step.kind / f"{_label(step.id)}-{key}"

    def _done(self, step: Step, folder: Path, key: str) -> dict[str, Any] | None:
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if manifest.get("key") != key:
            return None
        if any(not (folder / name).exists() for name in step.outputs):
            return None
        return manifest

    def _log(self, record: StepRecord, run_id: str) -> None:
        line = {
            "run": run_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "step": record.id,
            "kind": record.kind,
            "key": record.key,
            "status": record.status,
            "wall_s": round(record.wall_s, 3),
        }
        if record.reason:
            line["reason"] = record.reason
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / STEP_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One run per experiment folder at a time; then the temp folders a killed run left can be removed."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HardnegError(f"{self.folder}: another run of this experiment is in progress") from None
            for stale in (self.folder / "steps").glob(f"*/.*{TEMP_MARK}*"):
                shutil.rmtree(stale, ignore_errors=True)
            yield

    def execute(
        self,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        on_record: Callable[[StepRecord], None] | None = None,
    ) -> list[StepRecord]:
        """Run every step that is not cached (or, with dry_run, say what would run). Records in order."""
        if dry_run:
            return self._execute(dry_run=True, progress=progress, on_record=on_record)
        with self._lock():
            return self._execute(dry_run=False, progress=progress, on_record=on_record)

    def _execute(
        self,
        *,
        dry_run: bool,
        progress: Progress | None,
        on_record: Callable[[StepRecord], None] | None,
    ) -> list[StepRecord]:
        say = progress or (lambda _msg: None)
        run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        output_hashes: dict[str, str] = {}
        folders: dict[str, Path] = {}
        summaries: dict[str, dict[str, Any]] = {}
        records: list[StepRecord] = []
        for step in self.steps.values():
            key = self._key(step, output_hashes)
            if key is None:
                # Only in a dry run: an input will be produced first, so this step's key is not known yet.
                record = StepRecord(step.id, step.kind, "pending", None, None, reason="after its inputs run")
                records.append(record)
                if on_record:
                    on_record(record)
                continue
            folder = self.folder_of(step, key)
            manifest = self._done(step, folder, key)
            if manifest is not None:
                output_hashes[step.id] = manifest["output_hash"]
                folders[step.id] = folder
                summaries[step.id] = manifest.get("summary", {})
                record = StepRecord(step.id, step.kind, "cached", key, folder, summaries[step.id])
                if not dry_run:
                    self._log(record, run_id)
                records.append(record)
                if on_record:
                    on_record(record)
                continue
            if dry_run:
                missing = [name for name in step.outputs if folder.is_dir() and not (folder / name).exists()]
                reason = f"missing {', '.join(missing)}" if missing else "not run yet"
                record = StepRecord(step.id, step.kind, "pending", key, folder, reason=reason)
                records.append(record)
                if on_record:
                    on_record(record)
                continue
            say(f"{step.id}: running")
            start = time.perf_counter()
            try:
                if (folder / MANIFEST).is_file() and not (folder / MARKER).exists():
                    mark_folder(folder)  # a step folder written before hardneg marked its folders: ours to replace
                # a step folder is hardneg's: replaced when stale, never if it holds files a step did not write
                with atomic_dir(folder, overwrite=True) as tmp:
                    ctx = StepContext(
                        out=tmp,
                        inputs={role: folders[sid] for role, sid in step.inputs.items()},
                        input_summaries={role: summaries[sid] for role, sid in step.inputs.items()},
                        external=dict(step.external),
                        experiment_dir=self.folder,
                        progress=functools.partial(_say_step, say, step.id),
                    )
                    summary = step.run(ctx) or {}
                    missing = [name for name in step.outputs if not (tmp / name).exists()]
                    if missing:
                        raise HardnegError(f"step {step.id} did not write {', '.join(missing)}")
                    wall = time.perf_counter() - start
                    manifest = {
                        "id": step.id,
                        "kind": step.kind,
                        "key": key,
                        "config": step.config,
                        "inputs": {role: output_hashes[sid] for role, sid in step.inputs.items()},
                        "external": {role: str(path) for role, path in step.external.items()},
                        "output_hash": hash_path(tmp),
                        "summary": summary,
                        "wall_s": round(wall, 3),
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    }
                    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
            except BaseException as exc:
                record = StepRecord(
                    step.id, step.kind, "failed", key, folder, wall_s=time.perf_counter() - start, reason=str(exc)
                )
                self._log(record, run_id)
                raise
            output_hashes[step.id] = manifest["output_hash"]
            folders[step.id] = folder
            summaries[step.id] = summary
            record = StepRecord(step.id, step.kind, "ran", key, folder, summary, wall_s=wall)
            self._log(record, run_id)
            records.append(record)
            if on_record:
                on_record(record)
        return records
