"""Atomic writes: a writer killed midway (kill -9, a real subprocess) leaves no output under the target name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardneg.data.atomic import MARKER, atomic_dir, atomic_path, check_target, is_hardneg_folder, temp_path
from hardneg.errors import ConfigError

# The child writes rows from a slow generator and says "started" once rows are flowing into the temp file.
CHILD = r"""
import sys, time
from hardneg.data.io import write_rows

def rows():
    for i in range(100000):
        if i == 600:
            print("started", flush=True)
        if i >= 600:
            time.sleep(0.01)
        yield {"query_id": f"q{i}", "query": "q?", "positive_passages": [{"docid": "d", "title": "", "text": "t"}],
               "negative_passages": [], "subset": "s", "note": i}

write_rows(sys.argv[1], rows())
print("finished", flush=True)
"""


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.parquet", "out.hf"])
def test_kill_9_midway_leaves_no_target(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.2)
        # The partial output exists, under a temp name only.
        temps = [p.name for p in tmp_path.iterdir()]
        # one temp name, one level: `.<target>.hardneg-tmp-<host>-<pid>` (issue #13 replaced `.<target>.<rand>.tmp*`)
        assert temps == [temp_path(target).name.replace(str(os.getpid()), str(child.pid))], temps
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not target.exists()
    # kill -9 gives no chance to clean up: the temp may remain, never the target itself...
    assert all(p.name.startswith(f".{name}.") for p in tmp_path.iterdir())
    # ... and the next write to the same target removes it, since its process is gone.
    with atomic_dir(target) if name.endswith(".hf") else atomic_path(target) as tmp:
        (tmp / "x").write_text("done") if tmp.is_dir() else tmp.write_text("done")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_exception_cleans_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_an_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.jsonl.gz"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.name == temp_path(target).name and ".hardneg-tmp-" in tmp.name  # one recognisable name
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl.gz"]


# ------------------------------------------------------------------------ never destroy what hardneg did not write


def _write_dir(target: Path, text: str = "new", **kwargs: object) -> None:
    with atomic_dir(target, **kwargs) as tmp:  # type: ignore[arg-type]
        (tmp / "data.txt").write_text(text)


def test_a_folder_of_user_files_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "project"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="hardneg did not write") as raised:
            _write_dir(target, overwrite=overwrite, param="output")
        assert raised.value.param == "output" and str(target) in str(raised.value)
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["project"]  # no temp left behind


def test_a_folder_hardneg_wrote_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.hf"
    _write_dir(target, "first")
    assert is_hardneg_folder(target) and json.loads((target / MARKER).read_text())["files"] == ["data.txt"]
    with pytest.raises(ConfigError, match="already exists"):
        _write_dir(target, "second")
    assert (target / "data.txt").read_text() == "first"
    _write_dir(target, "second", overwrite=True)
    assert (target / "data.txt").read_text() == "second" and is_hardneg_folder(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.hf"]  # the old folder is gone, no temp left


def test_overwrite_refuses_a_hardneg_folder_someone_added_files_to(tmp_path: Path) -> None:
    target = tmp_path / "model"
    _write_dir(target)
    (target / "sub").mkdir()
    (target / "sub" / "results.csv").write_text("precious")
    with pytest.raises(ConfigError, match="holds files hardneg did not write") as raised:
        _write_dir(target, overwrite=True)
    assert str(target / "sub" / "results.csv") in str(raised.value)
    assert (target / "sub" / "results.csv").read_text() == "precious"


def test_the_old_folder_stays_until_the_new_one_is_complete(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_dir(target, "old")
    with pytest.raises(RuntimeError), atomic_dir(target, overwrite=True) as tmp:
        (tmp / "data.txt").write_text("half")
        raise RuntimeError("failed midway")
    assert (target / "data.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_folder_that_appears_during_the_work_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(ConfigError, match="hardneg did not write"), atomic_dir(target) as tmp:
        (tmp / "data.txt").write_text("new")
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]


def test_an_empty_folder_or_nothing_is_written_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _write_dir(tmp_path / "empty")
    _write_dir(tmp_path / "deep" / "er" / "new")
    assert (tmp_path / "empty" / "data.txt").read_text() == (tmp_path / "deep/er/new/data.txt").read_text() == "new"


def test_files_links_and_folders_are_never_swapped(tmp_path: Path) -> None:
    afile = tmp_path / "out.hf"
    afile.write_text("a file")
    with pytest.raises(ConfigError, match="not a folder"):
        _write_dir(afile, overwrite=True)
    assert afile.read_text() == "a file"
    real = tmp_path / "real"
    _write_dir(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="not a folder"):
        _write_dir(link, overwrite=True)
    folder = tmp_path / "x.jsonl"
    folder.mkdir()
    (folder / "keep").write_text("k")
    with pytest.raises(ConfigError, match="is a folder"), atomic_path(folder, param="output") as tmp:
        tmp.write_text("never")
    assert (folder / "keep").read_text() == "k"
    with pytest.raises(ConfigError, match="is not a folder"):
        check_target(afile / "plot.png", folder=False, param="plot")


def test_a_kill_between_the_swaps_leaves_temps_the_next_writer_removes(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_dir(target)
    dead = 2**22 + 7  # no such process
    for suffix in ("", "-old"):
        stale = temp_path(target).with_name(temp_path(target).name.replace(str(os.getpid()), str(dead)) + suffix)
        stale.mkdir()
        (stale / "x").write_text("left by a kill -9")
    _write_dir(target, "again", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "data.txt").read_text() == "again"
