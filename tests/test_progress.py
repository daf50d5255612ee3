"""Plain progress lines for logs, announced phases, and the quiet switch (ours and the libraries')."""

from __future__ import annotations

import io
import logging
import os
import warnings

import pytest

from hardneg import progress
from hardneg.progress import LineProgress, announce, interval_s, is_quiet, set_phase_hook, set_quiet


def _lines(interval: float = 0) -> tuple[LineProgress, list[str]]:
    lines: list[str] = []
    return LineProgress(interval=interval, write=lines.append), lines


def test_a_task_writes_a_start_line_a_line_per_update_and_a_done_line() -> None:
    bar, lines = _lines()
    with bar:
        task = bar.add_task("reading x.jsonl", total=4)
        bar.advance(task)
        bar.update(task, completed=3)
        bar.update(task, completed=3)  # no change: no line
        bar.advance(task)
        bar.advance(task)  # past the end: finished already, no line
    assert lines[0] == "reading x.jsonl: started (4 to do)"
    assert lines[1].startswith("reading x.jsonl: 1/4 (25%), ") and "/s, elapsed 0:00:" in lines[1]
    assert " ETA " in lines[1] and lines[2].startswith("reading x.jsonl: 3/4 (75%), ")
    assert lines[3].startswith("reading x.jsonl: done, 4/4 in 0:00:") and len(lines) == 4


def test_unknown_totals_and_stopped_tasks_end_with_the_display() -> None:
    bar, lines = _lines()
    with bar:
        open_ended = bar.add_task("importing", total=None)
        bar.update(open_ended, completed=7)
        cut = bar.add_task("validating", total=10)
        bar.advance(cut, 2)
    assert lines[1].startswith("importing: 7, ") and "elapsed" in lines[1]
    assert "importing: done, 7 in 0:00:" in lines[-2] and lines[-1].startswith("validating: stopped at 2/10 in ")


def test_an_empty_task_is_done_at_once_and_a_disabled_display_writes_nothing() -> None:
    bar, lines = _lines()
    with bar:
        bar.add_task("judging: cheap", total=0)
    assert lines == ["judging: cheap: started (0 to do)", "judging: cheap: done, 0/0 in 0:00:00"]
    quiet_lines: list[str] = []
    with LineProgress(interval=0, write=quiet_lines.append, enabled=False) as quiet:
        task = quiet.add_task("x", total=2)
        quiet.advance(task, 2)
        quiet.phase("loading model")
    assert quiet_lines == [] and quiet.finished


def test_phases_are_lines_and_end_when_the_counted_work_starts() -> None:
    bar, lines = _lines()
    with bar:
        bar.phase("loading model all-MiniLM-L6-v2")
        bar.phase("tokenising 5 passages")
        assert [t.description for t in bar.tasks] == ["tokenising 5 passages"]
        task = bar.add_task("encoding", total=2)
        assert bar.task_ids == [task]
        bar.advance(task, 2)
        step = bar.add_task("load model", total=1)  # one step: no count to do, no rate
        bar.advance(step)
    assert lines[:3] == ["loading model all-MiniLM-L6-v2", "tokenising 5 passages", "encoding: started (2 to do)"]
    assert lines[-2] == "load model: started" and lines[-1].startswith("load model: done, 1/1 in 0:00:0")
    assert lines[-1].count(",") == 1


def test_a_phase_inside_counted_work_ends_when_the_count_moves() -> None:
    """A judge loads its model lazily, inside the first call of a running task: the "loading" line must not keep
    its heartbeat once the judging count moves again (seen in a log of `hardneg clean`)."""
    bar, lines = _lines()
    with bar:
        judging = bar.add_task("judging: embedding", total=4)
        bar.phase("loading the embedding judge's model")
        bar.update(judging, completed=0)  # no move: the model is still loading
        assert [t.description for t in bar.tasks] == ["judging: embedding", "loading the embedding judge's model"]
        bar.advance(judging, 2)
        assert [t.description for t in bar.tasks] == ["judging: embedding"]
    assert lines[1] == "loading the embedding judge's model" and "loading" not in " ".join(lines[2:])


def test_a_live_phase_ends_when_another_task_moves() -> None:
    from rich.console import Console

    from hardneg.cli.common import LiveProgress

    bar = LiveProgress(console=Console(file=io.StringIO(), force_terminal=True), transient=False)
    with bar:
        judging = bar.add_task("judging", total=4)
        bar.phase("loading the model")
        bar.update(judging, completed=0)
        assert len(bar.tasks) == 2
        bar.advance(judging, 1)
        assert [t.description for t in bar.tasks] == ["judging"]
        bar.phase("loading again")
        bar.update(judging, completed=3)
        assert [t.description for t in bar.tasks] == ["judging"]


def test_a_done_line_gives_no_rate_for_work_done_in_under_a_second() -> None:
    bar, lines = _lines()
    with bar:
        batch = bar.add_task("mine", total=809)
        bar.update(batch, completed=809)  # one batched search: the count jumps at once
    assert lines[-1].startswith("mine: done, 809/809 in 0:00:00") and "/s" not in lines[-1], lines


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.INTERVAL_ENV, raising=False)
    assert interval_s() == progress.DEFAULT_INTERVAL_S
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.5")
    assert interval_s() == 0.5
    monkeypatch.setenv(progress.INTERVAL_ENV, "soon")
    with pytest.raises(ValueError, match="HARDNEG_PROGRESS_INTERVAL='soon'"):
        interval_s()


def test_announce_goes_to_the_hook_else_the_logger(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    previous = set_phase_hook(seen.append)
    try:
        announce("loading judge")
        assert seen == ["loading judge"]
        set_phase_hook(None)
        with caplog.at_level(logging.INFO, logger="hardneg"):
            announce("tokenising")
        assert "tokenising" in caplog.messages
    finally:
        set_phase_hook(previous)


def test_quiet_silences_the_libraries_and_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TQDM_DISABLE", "TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS"):
        monkeypatch.delenv(name, raising=False)
    seen: list[str] = []
    previous = set_phase_hook(seen.append)
    level = logging.getLogger("sentence_transformers").level
    try:
        with warnings.catch_warnings():
            set_quiet(True)
            assert is_quiet() and os.environ["TQDM_DISABLE"] == "1" and os.environ["TRANSFORMERS_VERBOSITY"] == "error"
            assert logging.getLogger("sentence_transformers").level == logging.ERROR
            with warnings.catch_warnings(record=True) as caught:
                warnings.warn("noise", FutureWarning, stacklevel=1)
            assert caught == []
            announce("loading model")
            assert seen == []
            set_quiet(False)
            assert not is_quiet() and "TQDM_DISABLE" not in os.environ and "PYTHONWARNINGS" not in os.environ
            assert logging.getLogger("sentence_transformers").level == level
            announce("loading model")
            assert seen == ["loading model"]
    finally:
        set_quiet(False)
        set_phase_hook(previous)
