"""Atomic file writes: a temp file in the target folder, renamed into place at the end.

An interrupted run (exception, Ctrl-C, kill -9) never leaves a partial output under the target name. The temp
file sits beside the target under one recognisable name, `.<target>.hardneg-tmp-<host>-<pid>`, one level only;
a later write to the same target removes the temp files of writers on this host whose process is gone (what a
kill -9 leaves behind).

Never destroy what hardneg did not write: a folder written by `atomic_dir` holds a marker file (`.hardneg`) listing
the files written into it. An existing, non-empty target folder is refused (`ConfigError`) unless `overwrite=True`,
and even then only a folder with that marker, holding no file but those it lists, is replaced, once the new content
is complete (the old folder is renamed aside, the new one renamed in, then the old one removed). `check_target` runs
the same checks before any work. File writers (`atomic_path`) replace an existing file, as before, never a folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from hardneg.errors import ConfigError

TEMP_MARK = ".hardneg-tmp-"
# A file inside every folder `atomic_dir` writes: only such a folder may be replaced (with overwrite=True).
MARKER = ".hardneg"
# Suffix of the temp name an old folder is moved to while `atomic_dir(overwrite=True)` swaps in the new one.
_OLD = "-old"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())


def temp_path(target: Path) -> Path:
    """This process's temp path for `target`."""
    return target.with_name(f".{target.name}{TEMP_MARK}{_host()}-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove the temp files (or folders) of earlier writers of `target` on this host whose process is gone."""
    prefix = f".{target.name}{TEMP_MARK}{_host()}-"
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for path in target.parent.iterdir():
        if not path.name.startswith(prefix):
            continue
        pid = path.name[len(prefix) :].removesuffix(_OLD)
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir() or p.is_symlink())


def mark_folder(path: str | Path) -> None:
    """Put the `.hardneg` marker into `path`: hardneg wrote this folder, and these are the files it wrote."""
    path = Path(path)
    files = [name for name in _files(path) if name != MARKER]
    (path / MARKER).write_text(json.dumps({"written_by": "hardneg", "files": files}) + "\n", encoding="utf-8")


def foreign_files(path: str | Path) -> list[str] | None:
    """Files in folder `path` that hardneg did not write: None when the folder has no (readable) marker at all,
    else the files not listed in its marker (empty for a folder exactly as hardneg wrote it)."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return None
    try:
        listed = json.loads((path / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(listed, list):
        return None
    known = {MARKER, *map(str, listed)}
    return [name for name in _files(path) if name not in known]


def is_hardneg_folder(path: str | Path) -> bool:
    """A folder `atomic_dir` wrote and nobody added a file to since."""
    return foreign_files(path) == []


def _error(message: str, param: str | None) -> ConfigError:
    return ConfigError(message, param=param)


def _check_parent(target: Path, param: str | None) -> None:
    """The folder `target` goes into exists (or can be made there) and can be written in."""
    parent = target.absolute().parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise _error(f"{target}: cannot be written, {parent} is not a folder", param)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _error(f"{target}: cannot be written, no permission to write in {parent}", param)


def check_target(target: str | Path, *, folder: bool, overwrite: bool = False, param: str | None = None) -> None:
    """Raise `ConfigError` (naming `param`) if a writer may not write `target`; call it before any work.

    A folder writer (`folder=True`) writes where nothing is, or onto an empty folder; it replaces an existing folder
    only with `overwrite`, and only a folder hardneg wrote (its `.hardneg` marker lists every file in it); never a
    file or a link. A file writer replaces a file, never a folder. Either way the folder the target goes into
    must exist and be writable, or be creatable in a writable folder.
    """
    target = Path(target)
    _check_parent(target, param)
    if not folder:
        if target.is_dir():
            raise _error(f"{target} is a folder: name a file to write (a folder is never replaced by a file)", param)
        return
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise _error(f"{target} exists and is not a folder: it is never replaced; choose another path", param)
    if not target.is_dir() or not any(target.iterdir()):
        return  # nothing there, or an empty folder: nothing to lose
    foreign = foreign_files(target)
    if foreign is None:
        raise _error(
            f"{target} is an existing folder hardneg did not write (no {MARKER} file in it): it is never replaced, "
            "even with overwrite=True (--overwrite); choose another path, or remove it yourself",
            param,
        )
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise _error(
            f"{target} holds files hardneg did not write ({target / foreign[0]}{more}): it is never replaced, "
            "even with overwrite=True (--overwrite); choose another path, or move those files away",
            param,
        )
    if not overwrite:
        raise _error(
            f"{target} already exists: choose another path, or pass overwrite=True (--overwrite on the command "
            "line) to replace it",
            param,
        )


@contextlib.contextmanager
def atomic_path(target: str | Path, *, param: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` if the block succeeds.

    An existing file is replaced; an existing folder is refused (`ConfigError` naming `param`) before the block.
    """
    target = Path(target)
    check_target(target, folder=False, param=param)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = temp_path(target)
    _remove(tmp)  # left by an earlier writer of this process id
    tmp.touch(mode=0o600)
    try:
        yield tmp
        # give the output the mode an ordinary open() would have
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, overwrite: bool = False, param: str | None = None) -> Iterator[Path]:
    """Like `atomic_path` for a folder (an HF `save_to_disk` output, a model folder, a testbed).

    `check_target` runs before the block and again before the rename (the target may have appeared meanwhile):
    an existing non-empty folder is replaced only with `overwrite` and only if hardneg wrote it (its `.hardneg`
    marker lists every file in it), after the block has finished; errors name `param`. The new folder gets the
    marker, listing the files the block wrote.
    """
    target = Path(target)
    check_target(target, folder=True, overwrite=overwrite, param=param)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = temp_path(target)
    _remove(tmp)
    tmp.mkdir(mode=0o700)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_current_umask())
        mark_folder(tmp)
        check_target(target, folder=True, overwrite=overwrite, param=param)
        if target.is_dir() and any(target.iterdir()):
            # a folder hardneg wrote, and overwrite: swap, then remove the old one (a kill between the renames
            # leaves it under a temp name, which the next writer of `target` removes)
            old = tmp.with_name(tmp.name + _OLD)
            _remove(old)
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)  # onto nothing, or onto an empty folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
