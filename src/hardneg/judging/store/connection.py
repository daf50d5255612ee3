"""An open store: its SQLite connection, how it is written and how it is read.

Every write is one transaction (`_transaction`, or one autocommit statement `_write`); writes made inside an
open transaction join it, so that several can be committed together (`transaction`). A write refused for a full
disk is a `StoreFull` naming the store; a transaction SQLite has already rolled back (as it does on a full disk)
is not rolled back again. Reads come in pages (`_pages`), so that a long read never blocks a writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from hardneg.judging.store.schema import connect
from hardneg.judging.store.space import RESERVE_BYTES, Reserve, full_disk_said

Row = TypeVar("Row")


def where(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """`` AND column=?`` for each filter that is not None, and its arguments."""
    given = {column: value for column, value in filters.items() if value is not None}
    return "".join(f" AND {column}=?" for column in given), list(given.values())


class StoreConnection:
    """A store file opened (and checked: `hardneg.judging.store.schema`) for reading, or for writing in WAL mode.

    `reserve`: bytes held back beside the file of a store opened for writing, freed when its disk fills
    (`hardneg.judging.store.space`); 0 keeps none.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, reserve: int = RESERVE_BYTES) -> None:
        self.path = Path(path)
        self.in_memory = str(path) == ":memory:"
        with full_disk_said(self.path):  # a new store on a full disk: its tables cannot be written
            self._conn = connect(self.path, readonly=readonly, in_memory=self.in_memory)
        self.reserve: Reserve | None = None
        if not readonly and not self.in_memory:
            self.reserve = Reserve(self.path, reserve)
            self.reserve.fill()
        self._depth = 0  # transactions open (joined ones included)

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Several writes committed together (or none of them): writes made inside join this transaction."""
        with self._transaction():
            yield

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), or the one already open."""
        with full_disk_said(self.path):
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # a full disk (or an I/O error) has already ended the transaction: the first error says what
                # went wrong, never a "cannot rollback" of the rollback
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def _write(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        """One write statement: its own transaction, or part of the one open."""
        with full_disk_said(self.path):
            return self._conn.execute(sql, args)

    def _pages(self, sql: str, args: Any, decode: Callable[[sqlite3.Row], Row]) -> Iterator[Row]:
        """The rows of a query, decoded, fetched a thousand at a time: a writer is not blocked by a long-lived
        read cursor on a huge store."""
        cursor = self._conn.execute(sql, args)
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield decode(row)

    def free_reserve(self) -> int:
        """Free the reserve after a write failed for a full disk, so that what is held in memory can still be
        written; returns the bytes freed. Checkpoints stop for the rest of this connection (see
        `hardneg.judging.store.space`)."""
        if self.reserve is None:
            return 0
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
        return self.reserve.free()
