"""Options declared once: defaults read from the library, and a command's options made from a config's fields."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import Field
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.cli import options as opt
from hardneg.cli.common import handle_errors
from hardneg.errors import config_dataclass


@config_dataclass
class Toy:
    """A config as the library writes them: constraints in `Annotated`, choices as `Literal`."""

    size: Annotated[int, Field(ge=1)] = 3
    kind: Literal["a", "b"] = "a"
    limit: Annotated[float, Field(ge=0)] | None = None
    folder: str | None = None
    on: bool = True


@dataclasses.dataclass
class Plain:
    names: tuple[str, ...] = ("x",)
    count: int = dataclasses.field(default=2, metadata={"help": "How many (the field's own words)."})


def toy_app(seen: dict[str, Any]) -> typer.Typer:
    toy = typer.Typer()

    @toy.command()
    @handle_errors
    @opt.config_flags(
        Toy,
        [
            opt.flag("size", "--size", "-s", help="Size."),
            "label",
            opt.flag("kind", "--kind"),
            opt.flag("limit", "--limit"),
            opt.flag("folder", "--folder", type=Path | None),
            opt.flag("on", "--on/--off"),
        ],
    )
    def run(
        first: str = typer.Argument(...),
        options: dict[str, Any] = opt.CONFIG_FLAGS,
        label: str = typer.Option("", "--label"),
        last: bool = typer.Option(False, "--last"),
    ) -> None:
        seen.update(options, first=first, label=label, last=last, made=Toy(**options))

    @toy.command()
    def other() -> None:  # a second command keeps `run` a subcommand
        pass

    return toy


def test_config_flags_make_one_option_per_field_in_the_tables_place() -> None:
    seen: dict[str, Any] = {}
    command: Any = typer.main.get_command(toy_app(seen)).commands["run"]  # type: ignore[attr-defined]
    names = [p.name for p in command.params]
    assert names == ["first", "size", "label", "kind", "limit", "folder", "on", "last"]
    defaults = {p.name: p.default for p in command.params}
    assert (defaults["size"], defaults["kind"], defaults["limit"], defaults["on"]) == (3, "a", None, True)
    result = CliRunner().invoke(toy_app(seen), ["run", "x", "-s", "5", "--limit", "0.5", "--folder", "d", "--off"])
    assert result.exit_code == 0, result.output
    assert seen["made"] == Toy(size=5, kind="a", limit=0.5, folder="d", on=False)
    assert seen["folder"] == "d" and seen["first"] == "x" and seen["last"] is False  # a path option, given as text


def test_a_bad_value_is_the_configs_error_named_by_the_flag() -> None:
    """Choices and constraints are the config's to check: the option takes text, the error names the flag."""
    for args, flag in ((["--kind", "c"], "--kind"), (["-s", "0"], "--size")):
        result = CliRunner().invoke(toy_app({}), ["run", "x", *args])
        assert result.exit_code == 2 and f"{flag}: " in result.stderr, result.output


def test_option_types_leave_constraints_and_choices_to_the_config() -> None:
    assert opt.flag_type(Toy, "size") is int
    assert opt.flag_type(Toy, "kind") is str
    assert opt.flag_type(Toy, "limit") == float | None
    assert opt.flag_type(Plain, "names") == tuple[str, ...]


def test_library_defaults_and_help_come_from_configs_and_functions() -> None:
    def verb(data: Any, *, seed: int = 7) -> None: ...

    assert opt.library_default(Toy, "size") == 3 and opt.library_default(Plain, "names") == ("x",)
    assert opt.library_default(verb, "seed") == 7
    assert opt.library_help(Plain, "count") == "How many (the field's own words)."
    assert opt.library_help(Toy, "size") is None
    shown = opt.library(Plain, "names", "--names", shown=",".join, help="Names.")
    assert (shown.default, shown.help) == ("x", "Names.")
    own = opt.library(Plain, "count", "--count", help="The CLI's words.")
    assert own.help == "How many (the field's own words)."


def test_shared_options_read_the_same_in_every_verb() -> None:
    root: Any = typer.main.get_command(app)
    limits = [
        p
        for command in root.commands.values()
        for p in getattr(command, "params", [])
        if "--limit" in getattr(p, "opts", [])
    ]
    assert len(limits) >= 6 and {(p.default, p.min) for p in limits} == {(None, 1)}
