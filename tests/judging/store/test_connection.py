"""Writing and reading an open store: WAL readers beside a writer, writes joined in one transaction, and a write
refused for a full disk said as `StoreFull` (SQLite's own size cap, `max_page_count`, refuses it for real)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hardneg.judging.base import config_hash
from hardneg.judging.store import JudgmentStore, StageVerdict, StoreFull
from hardneg.judging.store.claims import new_owner
from support.store_outputs import CFG, ok


def capped(store: JudgmentStore, pages: int) -> None:
    """Let the store's database grow by `pages` pages at most (its writes then fail as on a full disk)."""
    (count,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count={count + pages}")


def bulky(n: int) -> list[StageVerdict]:
    """`n` verdict rows of about 6 KB each."""
    docids = [f"doc-{j}-" * 40 for j in range(20)]
    return [StageVerdict(f"q{i}", 1, "v", "c", "j", docids, "ok", "", [], []) for i in range(n)]


def test_wal_reader_sees_committed_rows_while_writer_open(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    writer = JudgmentStore(path)
    writer.put("q1", 1, "s", CFG, ok([], []))
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with JudgmentStore(path, readonly=True) as reader:
        assert reader.count() == 1
        writer.put("q2", 1, "s", CFG, ok([], []))  # the writer is not blocked by an open reader
        assert reader.count() == 2
    writer.close()
    with JudgmentStore(path) as again:  # reopening keeps everything
        assert again.done_ids(1, config_hash(CFG)) == {"q1", "q2"}


def test_writes_joined_in_one_transaction_commit_together_or_not_at_all(tmp_path: Path) -> None:
    key = ("q1", 1, config_hash(CFG), "")
    with JudgmentStore(tmp_path / "j.db") as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.put("q1", 1, "s", CFG, ok([], []))
            assert store.claim(key, new_owner())  # a transaction of its own otherwise: joins this one
            assert store.count() == 1  # the transaction reads its own writes
            raise RuntimeError("stopped before the commit")
        assert store.count() == 0 and store.claims() == []
        with store.transaction():
            store.put("q1", 1, "s", CFG, ok([], []))
            store.put("q2", 1, "s", CFG, ok([], []))
        assert store.count() == 2


def test_a_full_disk_is_said_as_store_full_naming_the_store(tmp_path: Path) -> None:
    """SQLite rolls back a transaction a full disk ends: rolling it back again said "cannot rollback - no
    transaction is active", which hid the cause."""
    path = tmp_path / "j.db"
    with JudgmentStore(path) as store:
        store.put_verdicts(bulky(1))
        capped(store, 2)
        in_transaction = lambda: store.put_verdicts(bulky(50))  # noqa: E731
        one_statement = lambda: store.put("q", 1, "s", CFG, ok(["x" * 20_000], []))  # noqa: E731
        for write in (in_transaction, one_statement):
            with pytest.raises(StoreFull) as err:
                write()
            message = str(err.value)
            assert message.startswith(f"{path}: no space left on the disk of the judgment store (database or disk is")
            assert "free some space there and run again" in message and "cannot rollback" not in message
            assert isinstance(err.value.__cause__, sqlite3.OperationalError)
            assert err.value.saved is None and err.value.path == path
        # nothing half written, and the store still works
        assert [v.query_id for v in store.iter_verdicts()] == ["q0"] and store.count() == 0
        store.put("q", 1, "s", CFG, ok([], []))
        assert store.count() == 1
