"""Atomic writes: a writer killed midway (kill -9, a real subprocess) leaves no output under the target name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardneg.data.atomic import atomic_dir, atomic_path, temp_path

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
