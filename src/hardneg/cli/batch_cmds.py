"""`hardneg batch status|collect`: follow OpenAI Batch API jobs that `hardneg judge` submitted.

Submitting is `hardneg judge` with an `openai-batch` stage (`wait: false` to return at once); its batch ids
are kept in the store file. `status` shows them (refreshed from the API when --config is given); `collect`
downloads the answers of ended batches into the store file, and the next `hardneg judge` run stores them as
judgments without any new call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import app, console, handle_errors, print_json, print_table
from hardneg.judging.backends.openai_batch import BatchJudge, BatchState
from hardneg.judging.cascade import load_cascade
from hardneg.judging.store import JudgmentStore

batch_app = typer.Typer(help="Follow Batch API jobs submitted by `hardneg judge` (openai-batch stages).")
app.add_typer(batch_app, name="batch")

STORE_HELP = "Judgment store (SQLite) that holds the batch ids."


def _check_store(store: Path) -> None:
    """The judgment store's own checks (opened read-only), before the batch tables are read or added: a missing,
    empty (0 bytes) or non-SQLite file, a SQLite database that is not a hardneg store, or a store of another
    schema stops here (`InputError` / `ConfigError`, exit 2) and is left as it was."""
    with JudgmentStore(store, readonly=True):
        pass


def _batch_judges(config: Path, store: Path) -> list[Any]:

    cascade = load_cascade(config)
    judges = []
    for stage in cascade.stages:
        if stage.backend == "openai-batch":
            judges.append(BatchJudge(**{**stage.params, "state_db": store}))
    return judges


def _statuses(store: Path) -> list[dict[str, Any]]:
    import sqlite3
    from dataclasses import asdict

    # a store no batch was submitted into has no batch tables: nothing to list, and nothing is added to it
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='batches'").fetchone() is None:
            return []
    finally:
        conn.close()
    state = BatchState(store)
    try:
        return [asdict(s) for s in state.statuses()]
    finally:
        state.close()


def _show(rows: list[dict[str, Any]], title: str) -> None:
    from rich.table import Table

    grid = Table(title=title)
    for column in ("batch", "status", "requests", "completed", "failed", "collected"):
        grid.add_column(column)
    for r in rows:
        grid.add_row(
            r["batch_id"],
            r["status"],
            str(r["n_requests"]),
            str(r["completed"]),
            str(r["failed"]),
            "yes" if r["collected"] else "no",
        )
    print_table(grid)


@batch_app.command("status")
@handle_errors
def status(
    store: Path = opt.store(STORE_HELP),
    config: Path | None = typer.Option(None, "--config", help="Cascade YAML: refresh statuses from the API first."),
    as_json: bool = opt.as_json(),
) -> None:
    """List the batches recorded in the store (refreshed from the API with --config)."""

    _check_store(store)
    if config is not None:
        for judge in _batch_judges(config, store):
            try:
                judge.poll()
            finally:
                judge.close()
    rows = _statuses(store)
    if as_json:
        print_json({"store": str(store), "batches": rows})
        return
    _show(rows, f"batches in {store}")


@batch_app.command("collect")
@handle_errors
def collect(
    store: Path = opt.store(STORE_HELP),
    config: Path = typer.Option(..., "--config", help="Cascade YAML with the openai-batch stage(s)."),
    as_json: bool = opt.as_json(),
) -> None:
    """Download the answers of ended batches into the store; then re-run `hardneg judge` to record them."""

    _check_store(store)
    answered = 0
    for judge in _batch_judges(config, store):
        try:
            judge.poll()
            answered += judge.collect()
        finally:
            judge.close()
    rows = _statuses(store)
    running = sum(1 for r in rows if not r["collected"])
    if as_json:
        print_json({"store": str(store), "answered": answered, "running": running, "batches": rows})
        return
    _show(rows, f"batches in {store}")
    console.print(f"{answered} request(s) answered now; {running} batch(es) still running.", highlight=False)
