"""kill -9 while a verb writes its output: no partial output under the target name, one temp entry beside it
(one level: `.<target>.hardneg-tmp-<host>-<pid>`, no temp of a temp), and the next run of the same command
removes it and leaves only the inputs and the output.

Each writer verb runs in a subprocess on an input big enough to be caught writing (generated in tmp_path):
`convert` (100k small rows, to JSONL and to a datasets folder), `relabel` (the same rows) and `mine` (a generated
BEIR folder of a few thousand queries). The test polls until the temp entry holds data, then sends SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardneg.data.atomic import TEMP_MARK
from hardneg.judging.store import JudgmentStore

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet"]
HOST = "".join(c if c.isalnum() or c in "_." else "_" for c in socket.gethostname())


def write_rows(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            row = {
                "query_id": f"q{i}",
                "query": f"query number {i}",
                "positive_passages": [{"docid": f"p{i}", "title": "", "text": f"the answer to query {i}"}],
                "negative_passages": [{"docid": f"n{i}", "title": "", "text": f"not the answer to {i}"}],
            }
            handle.write(json.dumps(row) + "\n")
    return path


def write_beir(folder: Path, docs: int = 6000, queries: int = 3000) -> Path:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(1500)]
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for i in range(docs):
            handle.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(rng.choices(words, k=12))}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        for i in range(queries):
            handle.write(json.dumps({"_id": f"q{i}", "text": " ".join(rng.choices(words, k=4))}) + "\n")
    with open(folder / "qrels" / "train.tsv", "w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"q{i}\td{rng.randrange(docs)}\t1\n" for i in range(queries))
    return folder


def count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if TEMP_MARK in p.name)


def holds_data(path: Path) -> bool:
    """The temp file (or folder) has bytes in it: the writer is writing."""
    if path.is_dir():
        return any(p.is_file() and p.stat().st_size > 0 for p in path.rglob("*"))
    return path.stat().st_size > 0


def kill_while_writing(cmd: list[str], folder: Path) -> int:
    """Start `cmd`, wait until its temp entry in `folder` holds data, SIGKILL it; returns its pid."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            found = temps(folder)
            if found and holds_data(found[0]):
                break
            assert proc.poll() is None, f"it ended before it could be killed (input too small?): {proc.stderr.read()}"
            time.sleep(0.02)
        else:
            pytest.fail("no temp output appeared")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def check_killed_then_rerun(cmd: list[str], folder: Path, target: Path, inputs: set[str]) -> None:
    pid = kill_while_writing(cmd, folder)
    assert not target.exists()
    (left,) = temps(folder)  # exactly one temp entry
    assert left.name == f".{target.name}{TEMP_MARK}{HOST}-{pid}"  # one level: no temp name inside a temp name
    assert {p.name for p in folder.iterdir()} == inputs | {left.name}

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert target.exists()
    assert {p.name for p in folder.iterdir()} == inputs | {target.name}  # the stale temp is gone


@pytest.mark.parametrize("out_name", ["out.jsonl", "out.hf"])
def test_convert_killed_while_writing(tmp_path: Path, out_name: str) -> None:
    source = write_rows(tmp_path / "big.jsonl", 100_000)
    target = tmp_path / out_name
    check_killed_then_rerun([*CLI, "convert", str(source), str(target)], tmp_path, target, {source.name})
    if out_name == "out.jsonl":
        assert count_lines(target) == 100_000


def test_relabel_killed_while_writing(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "big.jsonl", 100_000)
    stores = tmp_path / "stores"  # beside, so that SQLite's -wal/-shm of a reader are not in the checked folder
    stores.mkdir()
    with JudgmentStore(stores / "j.db"):
        pass
    target = tmp_path / "clean.jsonl"
    cmd = [*CLI, "relabel", str(source), "--store", str(stores / "j.db"), "-o", str(target)]
    check_killed_then_rerun(cmd, tmp_path, target, {source.name, stores.name})
    assert count_lines(target) == 100_000


def test_mine_killed_while_writing(tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "gen")
    target = tmp_path / "mined.jsonl"
    cmd = [*CLI, "mine", str(beir), "-o", str(target), "--negatives", "5"]
    check_killed_then_rerun(cmd, tmp_path, target, {beir.name})
    assert count_lines(target) == 3000
    assert not temps(beir)
