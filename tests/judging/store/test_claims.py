"""Claims: a call is claimed before it is sent; a live owner's claim is refused to others, an expired lease or a
dead local owner's claim is taken over, and `ClaimKeeper` renews its leases and releases them on close."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from hardneg.judging.base import config_hash
from hardneg.judging.store import JudgmentStore
from hardneg.judging.store.claims import ClaimKeeper, new_owner, owner_alive
from support.store_outputs import CFG

KEY = ("q1", 1, config_hash(CFG), "")


def dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_and_release(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        me = new_owner()
        assert store.claim(KEY, me)
        assert store.claim(KEY, me)  # the owner may claim its own call again (a retry)
        (held,) = store.claims()
        assert (held["query_id"], held["stage"], held["owner"]) == ("q1", 1, me)
        assert held["lease_until"] > time.time()
        store.release(KEY, me)
        assert store.claims() == []


def test_a_live_owners_claim_is_refused_to_another_owner(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        first, second = new_owner(), new_owner()  # both this (live) process: two runners
        assert owner_alive(first)
        assert store.claim(KEY, first)
        assert not store.claim(KEY, second)
        store.release(KEY, second)  # releasing someone else's claim does nothing
        assert [c["owner"] for c in store.claims()] == [first]
        other_call = ("q2", 1, config_hash(CFG), "")
        assert store.claim(other_call, second)  # other calls are free
        store.release(KEY, first)
        assert store.claim(KEY, second)


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    remote = "another-host.example:4242:0123abcd"  # another machine's runner: alive until its lease runs out
    assert owner_alive(remote)
    with JudgmentStore(tmp_path / "j.db") as store:
        assert store.claim(KEY, remote, lease_s=60)
        assert not store.claim(KEY, new_owner())
        # the remote runner stopped renewing: its lease runs out
        store._conn.execute("UPDATE claims SET lease_until=?", (time.time() - 1,))
        taker = new_owner()
        assert store.claim(KEY, taker)
        assert [c["owner"] for c in store.claims()] == [taker]


def test_a_dead_local_owners_claim_is_taken_over_at_once(tmp_path: Path) -> None:
    gone = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    assert not owner_alive(gone)
    with JudgmentStore(tmp_path / "j.db") as store:
        assert store.claim(KEY, gone, lease_s=3600)  # a long lease: only the dead process frees it
        taker = new_owner()
        assert store.claim(KEY, taker)
        assert [c["owner"] for c in store.claims()] == [taker]


def test_claim_keeper_renews_its_leases_and_releases_them_on_close(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        keeper = ClaimKeeper(store, lease_s=0.3)
        try:
            keys = [KEY, ("q2", 1, config_hash(CFG), "")]
            assert all(keeper.acquire(k) for k in keys)
            first = {c["query_id"]: c["lease_until"] for c in store.claims()}
            deadline = time.monotonic() + 30
            renewed = first
            while time.monotonic() < deadline and not all(renewed[q] > first[q] for q in first):
                time.sleep(0.05)
                renewed = {c["query_id"]: c["lease_until"] for c in store.claims()}
            assert all(renewed[q] > first[q] for q in first), "the keeper never renewed its leases"
            assert {c["owner"] for c in store.claims()} == {keeper.owner}
            # a renewed claim stays refused to others, though the first lease would have run out by now
            assert not store.claim(KEY, new_owner())
            keeper.release(KEY)
            assert [c["query_id"] for c in store.claims()] == ["q2"]
        finally:
            keeper.close()
        assert store.claims() == []
