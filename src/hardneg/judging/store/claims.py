"""Claims: the calls being made now, so that several runners on one store never pay for a call twice.

One row per call identity with its owner (host, pid, run) and a lease expiry. A runner claims a call before
sending it, so several runners on one store (processes, machines, a Ray driver) split the work; a runner that dies
frees its claims when its lease runs out (at once, when it ran on this host and its process is gone). The claims
live in their own table rather than as a `running` status of `judgments`, so stores written before claims existed
open unchanged.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from typing import Any

from hardneg.judging.store.connection import StoreConnection
from hardneg.judging.store.space import StoreFull

# How long a claim holds without its owner renewing it (a runner renews its claims every third of this).
DEFAULT_LEASE_S = 120.0

CallKey = tuple[str, int, str, str]  # (query_id, stage, config_hash, docset): one judge call


def new_owner() -> str:
    """A runner's identity in claims: host, process id and a random run id."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its process is gone; other hosts' owners count as alive
    until their lease runs out."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims(StoreConnection):
    """The store's claims table (see the module docstring)."""

    def claim(self, key: CallKey, owner: str, *, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """Claim the call `key` for `owner` (one transaction): True when it is now ours, False when another live
        runner holds it. A claim whose lease ran out, or whose owner ran on this host and is gone, is taken over."""
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT owner, lease_until FROM claims WHERE query_id=? AND stage=? AND config_hash=? AND docset=?",
                key,
            ).fetchone()
            if row is not None and row["owner"] != owner and row["lease_until"] > now and owner_alive(row["owner"]):
                return False
            conn.execute(
                "INSERT OR REPLACE INTO claims (query_id, stage, config_hash, docset, owner, lease_until, claimed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, owner, now + lease_s, now),
            )
            return True

    def release(self, key: CallKey, owner: str) -> None:
        self._write(
            "DELETE FROM claims WHERE query_id=? AND stage=? AND config_hash=? AND docset=? AND owner=?",
            (*key, owner),
        )

    def release_all(self, owner: str) -> None:
        self._write("DELETE FROM claims WHERE owner=?", (owner,))

    def renew(self, owner: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self._write("UPDATE claims SET lease_until=? WHERE owner=?", (time.time() + lease_s, owner))

    def claims(self) -> list[dict[str, Any]]:
        """The claims held now (owner, lease expiry), for reports and tests."""
        return [dict(r) for r in self._conn.execute("SELECT * FROM claims ORDER BY claimed_at")]


class ClaimKeeper:
    """A runner's claims on one store: acquire before a call, release after it is stored, renew while running.

    A background thread renews the runner's leases every third of `lease_s` through its own connection, so a long
    call keeps its claim; `close()` releases whatever is left. Claims in a ``:memory:`` store are kept as well
    (one process), without the thread. A claim a full disk keeps from being released is left to its lease (or to
    the end of this process: see `owner_alive`).
    """

    def __init__(self, store: Claims, *, lease_s: float = DEFAULT_LEASE_S, owner: str | None = None) -> None:
        self.store = store
        self.owner = owner or new_owner()
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not store.in_memory:
            self._thread = threading.Thread(target=self._renew_loop, name="hardneg-claims", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        conn = sqlite3.connect(self.store.path, timeout=30.0, isolation_level=None)
        try:
            # the writer checkpoints: a checkpoint from here could take the space a full disk's reserve freed
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_autocheckpoint=0")
            while not self._stop.wait(self.lease_s / 3):
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(
                        "UPDATE claims SET lease_until=? WHERE owner=?", (time.time() + self.lease_s, self.owner)
                    )
        finally:
            conn.close()

    def acquire(self, key: CallKey) -> bool:
        return self.store.claim(key, self.owner, lease_s=self.lease_s)

    def release(self, key: CallKey) -> None:
        with contextlib.suppress(StoreFull):
            self.store.release(key, self.owner)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(sqlite3.Error, StoreFull):
            self.store.release_all(self.owner)
