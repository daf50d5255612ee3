"""The CLI names library parameters by its own flags."""

from __future__ import annotations

import typer

from hardneg.cli.common import command_flags, error_message
from hardneg.errors import ConfigError, InputError


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
