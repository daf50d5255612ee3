"""A full disk under a store: `StoreFull`, and the reserve that lets the answers in hand still be written.

A runner whose store cannot be written any more stops sending calls, keeps the answers it has (and those of the
calls in flight) in memory, and writes them into the space a reserve frees: a plain file beside the store
(``<store>-reserve``, `RESERVE_BYTES` of incompressible bytes) written when a store is opened for writing, deleted
by the first write that fails for a full disk, and written again by the next writable open that has the room.

Why a file beside the store, measured on a small tmpfs in WAL mode: once the disk is full SQLite can neither
append to the ``-wal`` file nor grow the database file in a checkpoint, so space kept *inside* the database (a
ballast row) cannot be freed: its DELETE is refused too. After the reserve is freed, checkpoints are turned off for
the rest of the connection: a checkpoint grows the database file and, on a full disk, ate the freed space before
the next write (SQLite checkpoints again at the store's last close, when it can).

`max_page_count`, SQLite's own cap on a database's size, fails with the same "database or disk is full" and is
said the same way; the reserve does not lift it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import sqlite3
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from hardneg.errors import HardnegError

# Room for several hundred answers written in one transaction (a typical record takes 2 to 5 KB of WAL).
RESERVE_BYTES = 2 * 1024 * 1024
RESERVE_SUFFIX = "-reserve"
_SQLITE_FULL = 13


class StoreFull(HardnegError):
    """No space left to write a judgment store (SQLite: "database or disk is full").

    A run says how many of its answered (paid) calls are in the store (`saved`) and how many could not be written
    (`lost`: sent again by the next run); a single write that failed says neither (`saved` None).
    """

    def __init__(self, path: Path | str, *, saved: int | None = None, lost: int = 0) -> None:
        self.path = Path(path)
        self.saved = saved
        self.lost = lost
        if saved is None:
            counts = ""
        elif lost:
            counts = (
                f": {saved} of the {saved + lost} call(s) this run had answered are saved, {lost} could not be "
                "written (the next run sends them again)"
            )
        elif saved:
            counts = f": all {saved} call(s) this run had answered are saved"
        else:
            counts = ": this run had no answered call to save"
        super().__init__(
            f"{path}: no space left on the disk of the judgment store (database or disk is full){counts}; free some "
            "space there and run again: calls in the store are not sent again"
        )


def disk_full(exc: BaseException) -> bool:
    """The error of a write refused for lack of space (SQLite's SQLITE_FULL, or an OSError ENOSPC / EDQUOT)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the message otherwise
        return (code is not None and code & 0xFF == _SQLITE_FULL) or "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def full_disk_said(path: Path) -> Iterator[None]:
    """Raise a write's disk-full error as `StoreFull` naming the store."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        if not disk_full(exc):
            raise
        raise StoreFull(path) from exc


@cache
def _filler() -> bytes:
    # incompressible, so that a compressing file system (ZFS, btrfs) really sets the space aside; fixed, so that
    # two runs leave the same bytes
    return random.Random(0).randbytes(256 * 1024)


class Reserve:
    """The space a store holds back beside its file (see the module docstring)."""

    def __init__(self, store_path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = Path(f"{store_path}{RESERVE_SUFFIX}")
        self.size = max(0, int(size))

    def fill(self) -> int:
        """Write the reserve up to its size (another runner may share it); returns the bytes it holds. Best effort:
        a disk too full for it leaves what could be written."""
        if self.size == 0:
            return 0
        chunk = _filler()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError:
            return 0
        try:
            have = os.fstat(fd).st_size
            while have < self.size:  # the same bytes at the same offsets, whoever writes them
                start = have % len(chunk)
                have += os.pwrite(fd, chunk[start : start + self.size - have], have)
        except OSError:
            pass
        finally:
            os.close(fd)
        return self.held()

    def held(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def free(self) -> int:
        """Delete the reserve; returns the bytes freed (0: there was none)."""
        size = self.held()
        try:
            self.path.unlink()
        except OSError:
            return 0
        return size
