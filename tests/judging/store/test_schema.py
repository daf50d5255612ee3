"""Opening a store: runners opening one new store at the same moment all succeed; random bytes, a foreign SQLite
database or a folder is an `InputError` naming the path and nothing is written to it; an old-format store gives its
schema message; a store of the previous release (no claims table) still opens; a store this user may not write
(the file, or its folder) is named read-only. (A read-only mount: tests/cli/test_exit_codes.py.)"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardneg.errors import ConfigError, InputError
from hardneg.judging.base import config_hash
from hardneg.judging.store import JudgmentStore
from hardneg.judging.store.claims import new_owner
from support.store_outputs import CFG, ok


def listing(folder: Path) -> dict[str, str]:
    """{name: sha256 of its bytes (or 'dir')} of everything in the folder."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_runners_opening_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Each round, 6 threads (each its own connection, as runner processes have) open the same new store at once.
    They raced for the WAL switch ("database is locked") and could see the tables before the schema version
    (read as the old schema 1)."""
    errors: list[BaseException] = []
    for round_ in range(100):
        path = tmp_path / f"j{round_}.db"
        barrier = threading.Barrier(6)

        def open_store(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                with JudgmentStore(path) as store:
                    store.count()
            except Exception as exc:  # collected: a thread's exception would not fail the test
                errors.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_}: {errors}"
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()


def test_random_bytes_are_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(os.urandom(4096))
    before = listing(tmp_path)
    for readonly in (False, True):
        with pytest.raises(InputError) as err:
            JudgmentStore(path, readonly=readonly)
        assert str(path) in str(err.value) and "not a SQLite file" in str(err.value)
    assert listing(tmp_path) == before  # same bytes, no -wal / -shm beside it


def test_a_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = listing(tmp_path)
    for readonly in (False, True):
        with pytest.raises(InputError) as err:
            JudgmentStore(path, readonly=readonly)
        message = str(err.value)
        assert str(path) in message and "not a hardneg judgment store" in message and "users" in message
    assert listing(tmp_path) == before
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables == ["users"] and conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    finally:
        conn.close()


def test_a_folder_and_a_missing_readonly_store_are_errors(tmp_path: Path) -> None:
    folder = tmp_path / "judgments"
    folder.mkdir()
    with pytest.raises(InputError) as err:
        JudgmentStore(folder)
    assert str(folder) in str(err.value) and "folder" in str(err.value)
    assert list(folder.iterdir()) == []
    missing = tmp_path / "missing.db"
    with pytest.raises(InputError) as err:
        JudgmentStore(missing, readonly=True)
    assert str(missing) in str(err.value) and "no such judgment store" in str(err.value)
    assert not missing.exists()
    with JudgmentStore(missing) as store:  # writable: a missing file is a new store
        assert store.count() == 0


def test_an_empty_file_is_a_new_store_unless_read_only(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(InputError) as err:
        JudgmentStore(path, readonly=True)
    assert str(path) in str(err.value) and "empty store (0 bytes)" in str(err.value)
    with JudgmentStore(path) as store:
        assert store.count() == 0


def test_old_schema_store_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the first format: keys included thresholds and routing
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("CREATE TABLE judgments (query_id TEXT, stage INTEGER, config_hash TEXT)")
    for readonly in (False, True):
        with pytest.raises(ConfigError, match=r"old\.db: judgment store schema 1, but this hardneg reads schema 2"):
            JudgmentStore(path, readonly=readonly)
    with sqlite3.connect(path) as conn:  # nothing was added to it
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"meta", "judgments"}


def test_an_old_format_store_still_gives_its_schema_message(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("CREATE TABLE judgments (query_id TEXT, stage INTEGER, judge_name TEXT)")
    conn.commit()
    conn.close()
    before = listing(tmp_path)
    with pytest.raises(ConfigError) as err:
        JudgmentStore(path)
    assert "schema 1" in str(err.value) and str(path) in str(err.value)
    assert listing(tmp_path) == before


def test_a_store_of_the_previous_release_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with JudgmentStore(path) as store:
        store.put("q1", 1, "stage1", CFG, ok(["a"], [], ["a", "b"]))
    # the previous release wrote the same schema without the claims table
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE claims")
    conn.commit()
    conn.close()
    with JudgmentStore(path, readonly=True) as store:
        assert store.get("q1", 1, config_hash(CFG)) is not None
        assert set(store.final_verdicts()) == {"q1"}
    with JudgmentStore(path) as store:
        record = store.get("q1", 1, config_hash(CFG))
        assert record is not None and record.better == ["a"]
        assert store.claim(("q1", 1, config_hash(CFG), ""), new_owner())  # the claims table is added on a writable open
        assert len(store.claims()) == 1


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's own are root's alone when the tests run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="hardneg-store-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def opened_without_root(path: Path, *, readonly: bool) -> str:
    """What opening the store says to a user that file permissions bind: this user where the tests do not run as
    root, else a child process that drops to `nobody` (forked: it needs no interpreter of root's)."""

    def open_it() -> str:
        try:
            with JudgmentStore(path, readonly=readonly) as store:
                return f"opened ({store.count()} records)"
        except InputError as exc:
            return str(exc)

    if os.geteuid() != 0:
        return open_it()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        os.setgid(65534)
        os.setuid(65534)
        send.send(open_it())

    process = context.Process(target=child)
    process.start()
    said = receive.recv() if receive.poll(60) else f"no answer (exit code {process.exitcode})"
    process.join(10)
    return str(said)


def test_a_store_this_user_may_not_write_is_named_read_only(shared_folder: Path) -> None:
    path = shared_folder / "j.db"
    with JudgmentStore(path, reserve=0) as store:
        store.put("q1", 1, "s", CFG, ok([], []))
    path.chmod(0o444)
    said = opened_without_root(path, readonly=False)
    assert said.startswith(f"{path}: -: read-only: this user may not write the store"), said
    assert "check the permissions of the file and its folder, or open it read only" in said
    assert opened_without_root(path, readonly=True) == "opened (1 records)"


def test_a_store_in_a_folder_this_user_may_not_write_is_named_read_only(shared_folder: Path) -> None:
    path = shared_folder / "j.db"
    with JudgmentStore(path, reserve=0) as store:
        store.put("q1", 1, "s", CFG, ok([], []))
    shared_folder.chmod(0o555)  # SQLite cannot make its -wal and -shm files beside the store
    for readonly in (False, True):
        said = opened_without_root(path, readonly=readonly)
        assert said.startswith(f"{path}: -: read-only: SQLite needs to write beside a store (WAL) even to"), said
        assert "not a readable SQLite database" not in said
    assert sorted(p.name for p in shared_folder.iterdir()) == ["j.db"]
