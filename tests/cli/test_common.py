"""Shared CLI pieces: parameters named by the flags, tables never cut, progress in logs, --quiet, --version."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

from hardneg.cli.common import command_flags, error_message, print_table
from hardneg.data.sample import sample_beir_dir, sample_train_path
from hardneg.errors import ConfigError, InputError
from hardneg.progress import INTERVAL_ENV


def _command(
    rank_range: str = typer.Option("0-100", "--range"),
    negatives: int = typer.Option(30, "--negatives", "-n"),
    relative_margin: float | None = typer.Option(None, "--relative-margin"),
    data: str = typer.Argument(..., metavar="FILE"),
) -> None: ...


def test_parameters_are_named_by_the_commands_flags() -> None:
    flags = command_flags(_command)
    assert flags["negatives"] == "--negatives" and flags["relative_margin"] == "--relative-margin"
    assert flags["rank_range"] == flags["range"] == "--range" and flags["data"] == "FILE"
    assert error_message(ConfigError("must be >= 1", param="negatives"), flags) == "--negatives: must be >= 1"
    assert error_message(ConfigError("B > A", param="range_end"), flags) == "--range: B > A"
    # a parameter the command has no flag for keeps its library name; plain errors are unchanged
    assert error_message(ConfigError("too big", param="block_size"), flags) == "block_size: too big"
    assert error_message(InputError("f.jsonl", 3, "query", "empty"), flags) == "f.jsonl:3: query: empty"


def _printed(table: Any, width: int) -> str:
    out = Console(width=width, file=io.StringIO(), color_system=None)
    print_table(table, out)
    return out.file.getvalue()  # type: ignore[attr-defined]


def _wide_table() -> Any:
    from rich.table import Table

    table = Table(title="against bm25 ([bold]80[/bold] queries)")
    for column in ("system", "metric", "baseline", "system score", "delta", "W/L/T", "t-test p", "rand. p"):
        table.add_column(column)
    table.add_row("rlhn.trec-with-a-long-name", "ndcg@10", "0.6790", "0.6912", "+0.0122", "40/30/10", "0.03", "0.04")
    table.add_row("rlhn.trec-with-a-long-name", "recall@100", "0.9250", "0.9301", "+0.0051", "12/9/59", "0.3", "0.31")
    return table


def test_tables_are_never_cut() -> None:
    wide = _printed(_wide_table(), 200)
    assert "│ rlhn.trec-with-a-long-name │ ndcg@10" in wide and "against bm25 (80 queries)" in wide
    # too wide for 80 columns, transposed it fits: one column per row
    flipped = _printed(_wide_table(), 80)
    assert "…" not in flipped and "│ rand. p      │" in flipped and flipped.count("rlhn.trec-with-a-long-name") == 2
    # too wide both ways: one block per row, every cell whole
    stacked = _printed(_wide_table(), 30)
    assert "…" not in stacked and "against bm25 (80 queries)" in stacked
    assert "system: rlhn.trec-with-a-long-name\n  metric: ndcg@10\n  baseline: 0.6790\n" in stacked
    assert "  rand. p: 0.31\n" in stacked


def test_a_title_wider_than_its_table_gets_its_own_line() -> None:
    from rich.table import Table

    table = Table(title="/a/very/long/path/to/some/training/file/that/is/wider/than/the/table.jsonl.gz")
    table.add_column("n")
    table.add_row("1")
    printed = _printed(table, 40)
    assert printed.splitlines()[0] == "/a/very/long/path/to/some/training/file/that/is/wider/than/the/table.jsonl.gz"


def _run(*args: str, env: dict[str, str] | None = None, stderr: Any = subprocess.PIPE) -> Any:
    exe = shutil.which("hardneg", path=os.path.dirname(sys.executable)) or shutil.which("hardneg")
    assert exe, "the hardneg console script is not installed"
    return subprocess.run(
        [exe, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )  # fmt: skip


def test_progress_lines_reach_a_log_file(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    out = tmp_path / "converted.jsonl"
    with log.open("w") as handle:
        done = _run("convert", str(sample_train_path()), str(out), env={INTERVAL_ENV: "0"}, stderr=handle)
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    name = sample_train_path().name
    assert lines[0] == f"converting {name}: started", lines
    assert any(line.startswith(f"converting {name}: 1, ") for line in lines), lines
    assert lines[-1].startswith(f"converting {name}: done, 24 in 0:00:"), lines
    # the default interval writes the start and end lines, not a line per instance
    with log.open("w") as handle:
        assert _run("stats", str(sample_train_path()), stderr=handle).returncode == 0
    assert [line.split(":")[0] for line in log.read_text().splitlines()] == [f"reading {name}"] * 2


def test_quiet_leaves_stderr_empty_and_stdout_holds_the_results(tmp_path: Path) -> None:
    train = str(sample_train_path())
    cascade = tmp_path / "lexical.yaml"
    cascade.write_text("stages:\n  - {name: overlap, backend: 'support.lexical_judges:LexicalJudge', t_better: 0.3}\n")
    for args in (
        ("judge", train, "--config", str(cascade), "--store", str(tmp_path / "j.db")),
        ("validate", train),
        ("stats", train, "--json"),
        ("convert", train, str(tmp_path / "c.jsonl"), "--to", "st-triplet"),
        ("evaluate", "--bm25", str(sample_beir_dir()), "--json"),
    ):
        done = _run("--quiet", *args, env={INTERVAL_ENV: "0", "PYTHONPATH": str(Path(__file__).parents[1])})
        assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
        assert done.stdout.strip(), args
        if "--json" in args:
            json.loads(done.stdout)


def test_version() -> None:
    done = _run("--version")
    assert done.returncode == 0 and done.stdout == f"hardneg {version('hardneg')}\n"


def test_validate_json(tmp_path: Path) -> None:
    good = _run("validate", str(sample_train_path()), "--json")
    assert good.returncode == 0
    assert json.loads(good.stdout) == {
        "file": str(sample_train_path()), "ok": True, "rows_read": 24, "problem_count": 0,
        "stopped_at_max_errors": False, "problems": [],
    }  # fmt: skip
    bad = tmp_path / "bad.jsonl"
    rows = sample_train_path().read_text().splitlines()
    bad.write_text("\n".join([rows[0], '{"query_id": "x"}', "not json", rows[1]]) + "\n")
    done = _run("validate", str(bad), "--json", "--max-errors", "2")
    assert done.returncode == 2 and f"{bad}:" not in done.stderr  # the problems are in the JSON only
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["problem_count"] == 2 and report["stopped_at_max_errors"]
    assert report["problems"][0].startswith(f"{bad}:2: ") and report["rows_read"] == 2


@pytest.mark.slow
def test_a_log_gets_our_lines_and_no_library_bars() -> None:
    """Without --quiet and with stderr in a file (a log), transformers' tqdm bars ("Loading weights", carriage
    returns) stay off and hardneg's own lines say what happens, though the environment it starts from leaves the
    libraries' bar switches unset."""
    from hardneg.models import minilm_path

    shell = {name: "" for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    done = _run("evaluate", str(minilm_path()), str(sample_beir_dir()), "--no-cache", "--json", env=shell)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "Loading weights" not in done.stderr, done.stderr
    assert "load model: done" in done.stderr and json.loads(done.stdout)["queries"] == 8


@pytest.mark.slow
def test_quiet_silences_the_libraries_of_a_real_model() -> None:
    """Loading MiniLM through transformers draws a "Loading weights" bar on stderr; --quiet turns it off."""
    from hardneg.models import minilm_path

    done = _run("--quiet", "evaluate", str(minilm_path()), str(sample_beir_dir()), "--no-cache", "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["queries"] == 8
