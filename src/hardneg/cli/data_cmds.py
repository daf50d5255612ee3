"""Data verbs: validate (stats and convert are added by the data layer)."""

from __future__ import annotations

from pathlib import Path

import typer

from hardneg.cli.common import EXIT_BAD_INPUT, app, console, err_console, handle_errors


@app.command()
@handle_errors
def validate(
    file: Path = typer.Argument(..., help="Training file (.jsonl, .jsonl.gz, .parquet or a datasets folder)."),
    max_errors: int = typer.Option(50, "--max-errors", help="Stop after this many problems."),
) -> None:
    """Check a training file; print every problem as FILE:LINE: field: what is wrong. Exit 2 if any."""
    from hardneg.data.io import validate_file

    problems = validate_file(file, max_errors=max_errors)
    for problem in problems:
        err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(EXIT_BAD_INPUT)
    console.print(f"{file}: ok")
