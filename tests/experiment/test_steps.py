"""The step graph's cache: keys follow config and input content; missing outputs are redone; crashes leave nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.data.atomic import MARKER
from hardneg.errors import ConfigError
from hardneg.experiment.steps import STEP_LOG, Step, StepContext, StepGraph


def build(folder: Path, source: Path, factor: int, calls: list[str]) -> StepGraph:
    graph = StepGraph(folder)

    def read(ctx: StepContext) -> dict:
        calls.append("read")
        (ctx.out / "numbers.txt").write_text(ctx.external["src"].read_text())
        return {"lines": len(ctx.external["src"].read_text().split())}

    def scale(ctx: StepContext) -> dict:
        calls.append(f"scale{factor}")
        numbers = [int(x) * factor for x in (ctx.inputs["data"] / "numbers.txt").read_text().split()]
        (ctx.out / "scaled.txt").write_text(" ".join(map(str, numbers)))
        return {"sum": sum(numbers)}

    def total(ctx: StepContext) -> dict:
        calls.append("total")
        value = sum(int(x) for x in (ctx.inputs["scaled"] / "scaled.txt").read_text().split())
        (ctx.out / "total.json").write_text(json.dumps(value))
        return {"total": value}

    graph.add(Step("read/src", "read", {}, read, ("numbers.txt",), external={"src": source}))
    graph.add(Step("scale/x", "scale", {"factor": factor}, scale, ("scaled.txt",), inputs={"data": "read/src"}))
    graph.add(Step("total/x", "total", {}, total, ("total.json",), inputs={"scaled": "scale/x"}))
    return graph


def test_cache_resume_and_invalidation(tmp_path: Path) -> None:
    source = tmp_path / "numbers.txt"
    source.write_text("1 2 3")
    folder = tmp_path / "exp"
    calls: list[str] = []
    records = build(folder, source, 2, calls).execute()
    assert [r.status for r in records] == ["ran", "ran", "ran"]
    assert records[-1].summary == {"total": 12}

    calls.clear()
    records = build(folder, source, 2, calls).execute()
    assert calls == [] and [r.status for r in records] == ["cached"] * 3

    # A dry run plans without running.
    plan = build(folder, source, 3, calls).execute(dry_run=True)
    assert [r.status for r in plan] == ["cached", "pending", "pending"] and calls == []
    assert plan[2].key is None  # its input is not produced yet

    # A changed config reruns that step and what depends on it, in a new folder; the old one is kept.
    records = build(folder, source, 3, calls).execute()
    assert calls == ["scale3", "total"]
    assert records[-1].summary == {"total": 18}
    assert len(list((folder / "steps" / "scale").iterdir())) == 2

    # A deleted output is redone; the dependent is cached because the new output has the same content.
    calls.clear()
    scaled = records[1].folder / "scaled.txt"
    scaled.unlink()
    records = build(folder, source, 3, calls).execute()
    assert calls == ["scale3"]
    assert [r.status for r in records] == ["cached", "ran", "cached"]

    # Changed input content reruns everything downstream.
    calls.clear()
    source.write_text("1 2 3 4")
    records = build(folder, source, 3, calls).execute()
    assert calls == ["read", "scale3", "total"]
    assert records[-1].summary == {"total": 30}

    log = [json.loads(line) for line in (folder / STEP_LOG).read_text().splitlines()]
    assert {entry["status"] for entry in log} == {"ran", "cached"}
    assert sum(1 for entry in log if entry["step"] == "scale/x" and entry["status"] == "ran") == 4


def test_crash_leaves_no_step_folder(tmp_path: Path) -> None:
    source = tmp_path / "numbers.txt"
    source.write_text("1 x 3")  # int('x') fails inside the scale step
    folder = tmp_path / "exp"
    calls: list[str] = []
    with pytest.raises(ValueError):
        build(folder, source, 2, calls).execute()
    assert not (folder / "steps" / "scale").exists() or not any(
        p.name.startswith("x-") for p in (folder / "steps" / "scale").iterdir()
    )
    assert list((folder / "steps" / "scale").iterdir()) == []
    log = [json.loads(line) for line in (folder / STEP_LOG).read_text().splitlines()]
    assert log[-1]["status"] == "failed" and log[-1]["step"] == "scale/x"
    # Fixed input: the read step reruns (new content), and the rest completes.
    source.write_text("1 2 3")
    calls.clear()
    records = build(folder, source, 2, calls).execute()
    assert calls == ["read", "scale2", "total"]
    assert records[-1].summary == {"total": 12}


def test_missing_declared_output_fails(tmp_path: Path) -> None:
    graph = StepGraph(tmp_path / "exp")
    graph.add(Step("lazy/x", "lazy", {}, lambda ctx: {}, ("never.txt",)))
    with pytest.raises(Exception, match=r"did not write never\.txt"):
        graph.execute()


def test_lock_and_stale_temp_folders(tmp_path: Path) -> None:
    import fcntl

    from hardneg.errors import HardnegError
    from hardneg.experiment.steps import LOCK

    source = tmp_path / "numbers.txt"
    source.write_text("1 2 3")
    folder = tmp_path / "exp"
    build(folder, source, 2, []).execute()
    # What a killed run leaves: a temp folder beside the step folders. The next run removes it.
    stale = folder / "steps" / "scale" / ".x-0123.hardneg-tmp-otherhost-99"
    stale.mkdir()
    calls: list[str] = []
    build(folder, source, 2, calls).execute()
    assert not stale.exists() and calls == []
    # While another process holds the lock, a run refuses to start (a dry run still plans).
    with open(folder / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(HardnegError, match="another run"):
            build(folder, source, 2, []).execute()
        assert [r.status for r in build(folder, source, 2, []).execute(dry_run=True)] == ["cached"] * 3


def test_a_step_folder_is_redone_but_a_file_put_there_is_never_deleted(tmp_path: Path) -> None:
    source = tmp_path / "numbers.txt"
    source.write_text("1 2 3")
    folder = tmp_path / "exp"
    calls: list[str] = []
    records = build(folder, source, 2, calls).execute()
    step = records[1].folder
    # a step folder written before hardneg marked its folders is still redone
    (step / MARKER).unlink()
    (step / "scaled.txt").unlink()
    calls.clear()
    assert [r.status for r in build(folder, source, 2, calls).execute()] == ["cached", "ran", "cached"]
    # a file someone put into a step folder that must be redone stops the run, and stays
    (step / "scaled.txt").unlink()
    (step / "my-analysis.ipynb").write_text("precious")
    with pytest.raises(ConfigError, match="hardneg did not write") as raised:
        build(folder, source, 2, calls).execute()
    assert str(step / "my-analysis.ipynb") in str(raised.value)
    assert (step / "my-analysis.ipynb").read_text() == "precious"
