"""A full disk under a store: the reserve a writer holds back beside the store, `StoreFull`, and runs whose disk
fills part-way.

The runs are real: a judge with 8 calls in flight (all sent before the first answer comes back, as an API judge's
concurrent requests are) fills the disk just before it hands back its 10th answer. On a real small file system (an
8 MiB tmpfs, where the tests may mount one: root) the store refuses the next write with SQLite's "database or disk
is full"; no new call is sent, the answers of the calls in flight are kept and written into the space the reserve
frees, the run ends with `StoreFull` naming the store (exit 2 for `hardneg judge`), every answered call is in the
store, and the run after space is freed sends only what was never answered. Where no file system can be mounted,
SQLite's own size cap (`max_page_count`) refuses the writes for real: the reserve cannot lift that cap, and the
error counts the answers it could not write (the next run sends them again).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.records import Instance
from hardneg.judging.base import JudgeOutput
from hardneg.judging.cascade import CascadeConfig, parse_config, run_cascade
from hardneg.judging.registry import register_backend
from hardneg.judging.store import JudgmentStore, StoreFull
from hardneg.judging.store.space import RESERVE_BYTES, disk_full
from support.lexical_judges import LexicalListwiseJudge

runner = CliRunner()


def one_line(text: str) -> str:
    return " ".join(text.split())


def fill_disk(path: Path) -> None:
    """Write `path` until its file system has not a byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\1" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


class FillingJudge(LexicalListwiseJudge):
    """A real listwise judge with `window` calls in flight that, just before it hands back its `fill_at`-th answer,
    fills the disk (the file system of the file `filler`) or runs `fill`; it logs each call it sends to `log`, one
    query id a line. `pad` lengthens each response (long answers: every record then needs new pages)."""

    def __init__(
        self,
        log: str,
        filler: str | None = None,
        fill_at: int = 0,
        window: int = 8,
        threshold: float = 0.2,
        fill: Callable[[], None] | None = None,
        pad: int = 0,
    ) -> None:
        super().__init__(threshold=threshold)
        self.log, self.fill_at, self.window, self.pad = log, fill_at, window, pad
        if fill is None and filler is not None:
            fill = lambda: fill_disk(Path(filler))  # noqa: E731
        self.fill = fill
        self.answered = 0

    def judge_many(self, items: Iterable[tuple[Instance, Sequence[str]]]) -> Iterator[tuple[Instance, JudgeOutput]]:
        source = iter(items)
        while True:
            window = []
            for instance, docids in source:
                with open(self.log, "a", encoding="utf-8") as handle:
                    handle.write(instance.query_id + "\n")
                out = self.judge(instance, docids)
                out.raw_response = f"{out.raw_response}{' ' * self.pad}"
                window.append((instance, out))
                if len(window) == self.window:
                    break
            if not window:
                return
            for answer in window:
                self.answered += 1
                if self.answered == self.fill_at and self.fill is not None:
                    self.fill()
                yield answer


register_backend("disk-filling", FillingJudge)


def sent(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").split() if log.exists() else []


def one_stage() -> CascadeConfig:
    stage = {"name": "lex", "backend": "disk-filling", "mode": "verdict", "params": {"threshold": 0.2}}
    return parse_config({"name": "filling", "stages": [stage]})


def stored_ids(db: Path) -> list[str]:
    with JudgmentStore(db, readonly=True) as store:
        return [j.query_id for j in store.iter_judgments()]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB file system (tmpfs) at tmp_path/disk; skips where one cannot be mounted (it needs root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root and mount(8)")
    target = tmp_path / "disk"
    target.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(target)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


# -- the reserve, the error ------------------------------------------------------------------------------------


def test_a_store_opened_for_writing_holds_a_reserve_beside_it(tmp_path: Path) -> None:
    path, reserve = tmp_path / "j.db", tmp_path / "j.db-reserve"
    with JudgmentStore(path) as store:
        data = reserve.read_bytes()
        assert len(data) == RESERVE_BYTES
        assert len(set(data[:65536])) == 256  # not zeros: a compressing file system must really set it aside
        assert store.free_reserve() == RESERVE_BYTES and not reserve.exists()
        assert store.free_reserve() == 0
    with JudgmentStore(path, readonly=True):
        assert not reserve.exists()  # reading holds nothing back
    reserve.write_bytes(data[:1000])  # cut short (a process killed while writing it): filled up on the next open
    with JudgmentStore(path):
        assert reserve.read_bytes() == data
    with JudgmentStore(tmp_path / "none.db", reserve=0):
        assert not (tmp_path / "none.db-reserve").exists()
    with JudgmentStore(":memory:") as store:
        assert store.reserve is None and store.free_reserve() == 0


def test_store_full_says_the_store_and_what_a_run_saved(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    lead = f"{db}: no space left on the disk of the judgment store (database or disk is full)"
    tail = "; free some space there and run again: calls in the store are not sent again"
    assert str(StoreFull(db)) == lead + tail
    assert str(StoreFull(db, saved=16)) == f"{lead}: all 16 call(s) this run had answered are saved{tail}"
    assert str(StoreFull(db, saved=0)) == f"{lead}: this run had no answered call to save{tail}"
    assert str(StoreFull(db, saved=9, lost=7)) == (
        f"{lead}: 9 of the 16 call(s) this run had answered are saved, 7 could not be written (the next run sends "
        f"them again){tail}"
    )
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))


# -- runs whose disk fills -------------------------------------------------------------------------------------


def test_a_run_whose_disk_fills_keeps_every_answered_call(small_disk: Path, sample_train: Path, tmp_path: Path) -> None:
    db, filler, log = small_disk / "j.db", small_disk / "filler", tmp_path / "sent.log"
    judge = FillingJudge(str(log), str(filler), fill_at=10)
    with JudgmentStore(db) as store, pytest.raises(StoreFull) as err:
        run_cascade(sample_train, one_stage(), store, judges={"lex": judge})
    calls = sent(log)
    assert len(calls) == 16  # two windows: the disk filled in the second one, and no third was sent
    assert str(err.value) == str(StoreFull(db, saved=16))
    assert sorted(stored_ids(db)) == sorted(calls)  # the 7 answers that arrived after it filled are in
    assert not (small_disk / "j.db-reserve").exists()  # ... written into the space the reserve freed
    filler.unlink()
    log.unlink()
    with JudgmentStore(db) as store:
        report = run_cascade(sample_train, one_stage(), store, judges={"lex": FillingJudge(str(log))})
        assert len(store.final_verdicts()) == 24
    assert (report.stages[0].judged_now, report.stages[0].reused) == (8, 16)
    assert len(sent(log)) == 8 and not set(sent(log)) & set(calls)  # no saved call is sent again
    assert (small_disk / "j.db-reserve").exists()  # held back again


def test_a_run_on_a_disk_already_full_sends_no_call(small_disk: Path, sample_train: Path, tmp_path: Path) -> None:
    db, filler, log = small_disk / "j.db", small_disk / "filler", tmp_path / "sent.log"
    with JudgmentStore(db) as store:
        fill_disk(filler)
        with pytest.raises(StoreFull) as err:  # the `pending` rows of the stage cannot be written
            run_cascade(sample_train, one_stage(), store, judges={"lex": FillingJudge(str(log))})
        assert store.current_run() is None  # the stage did not become part of the store's current run
    assert str(err.value) == str(StoreFull(db, saved=0)) and sent(log) == []
    filler.unlink()
    with JudgmentStore(db) as store:
        report = run_cascade(sample_train, one_stage(), store, judges={"lex": FillingJudge(str(log))})
    assert report.stages[0].judged_now == 24


def test_hardneg_judge_on_a_disk_that_fills_exits_2_with_every_answer_saved(
    small_disk: Path, sample_train: Path, tmp_path: Path
) -> None:
    db, filler, log = small_disk / "j.db", small_disk / "filler", tmp_path / "sent.log"

    def config(fill_at: int) -> Path:
        params = {"threshold": 0.2, "log": str(log), "filler": str(filler), "fill_at": fill_at}
        stage = {"name": "lex", "backend": "disk-filling", "mode": "verdict", "params": params}
        path = tmp_path / f"fill{fill_at}.yaml"
        path.write_text(yaml.safe_dump({"name": "filling", "stages": [stage]}), encoding="utf-8")
        return path

    args = ["judge", str(sample_train), "--store", str(db), "--json", "--config"]
    result = runner.invoke(app, [*args, str(config(10))])
    assert result.exit_code == 2, result.output
    message = one_line(result.stderr)
    assert f"{db}: no space left on the disk of the judgment store" in message
    assert "all 16 call(s) this run had answered are saved" in message
    assert "Traceback" not in result.output and "cannot rollback" not in result.output
    calls = sent(log)
    assert len(calls) == 16 and sorted(stored_ids(db)) == sorted(calls)
    filler.unlink()
    again = runner.invoke(app, [*args, str(config(0))])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["stages"][0]["judged_now"] == 8
    assert len(sent(log)) == 24 and len(set(sent(log))) == 24  # each call sent once over the two runs


def test_a_run_whose_store_hits_its_size_cap_counts_the_answers_it_could_not_write(
    sample_train: Path, tmp_path: Path
) -> None:
    db, log = tmp_path / "j.db", tmp_path / "sent.log"
    with JudgmentStore(db) as store:

        def cap() -> None:  # SQLite's own limit on the file's pages, for this connection: no page more
            (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
            store._conn.execute(f"PRAGMA max_page_count={pages}")

        judge = FillingJudge(str(log), fill=cap, fill_at=10, pad=10_000)
        with pytest.raises(StoreFull) as err:
            run_cascade(sample_train, one_stage(), store, judges={"lex": judge})
    calls, saved = sent(log), stored_ids(db)
    assert len(calls) == 16 and sorted(saved) == sorted(calls[:9])  # nothing sent after the window it filled in
    assert str(err.value) == str(StoreFull(db, saved=9, lost=7))  # the reserve does not lift the cap
    log.unlink()
    with JudgmentStore(db) as store:  # the cap was the connection's: a new one has none
        report = run_cascade(sample_train, one_stage(), store, judges={"lex": FillingJudge(str(log))})
    assert report.stages[0].judged_now == 24 - 9 and not set(sent(log)) & set(saved)
