"""Options declared once: those several verbs share, and those that set a library option.

A verb declares a shared option as ``name: T = options.limit("...")``. An option that sets a keyword of a library
verb or a field of a library config (`MineConfig`, `RelabelOptions`, ...) takes its default from there
(`library`), and its help too where the config documents the field; a verb whose options are mostly a config's
fields (`mine`, `train`) lists them as a table of `Flag`s (`config_flags`), which also takes each option's type from
its field. So the CLI never restates a library default (tests/cli/test_defaults.py checks every one).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import os
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union

import typer

# The one output rule (`hardneg.data.formats.check_output`), as every verb that writes training rows says it.
OUTPUT_RULE = (
    "in the format its name says: .jsonl, .jsonl.gz, .parquet (an existing file is replaced), or a datasets folder "
    "(a name ending in .hf or /; an existing one only with --overwrite)."
)
OVERWRITE_HELP = "Replace an existing output folder hardneg wrote (never a folder of other files)."
JSON_HELP = "Print one JSON object on stdout."
STORE_HELP = "Judgment store (SQLite); created if missing, reused to resume."
ENGINE_HELP = "local (this process) or ray (each stage in a Ray actor pool sized by its workers/num_cpus/num_gpus)."
RAY_ADDRESS_HELP = "Ray cluster to join with --engine ray (default: $RAY_ADDRESS, else a local Ray for the run)."
CASCADE_HELP = "Cascade YAML, or a shipped config's name (`hardneg configs`); default: the `default` config."
RETRY_FAILED_HELP = "Send every failed call again once, also those past max_attempts or max_timeouts."


def library_default(owner: Any, name: str) -> Any:
    """The library's default of `name`: a field of a config class (a dataclass, pydantic's too) or a keyword of a
    function."""
    pydantic_fields = getattr(owner, "__pydantic_fields__", None)
    if pydantic_fields is not None and name in pydantic_fields:
        return pydantic_fields[name].get_default(call_default_factory=True)
    label = getattr(owner, "__name__", repr(owner))
    if dataclasses.is_dataclass(owner):
        for field in dataclasses.fields(owner):
            if field.name == name:
                if field.default_factory is not dataclasses.MISSING:
                    return field.default_factory()
                if field.default is dataclasses.MISSING:
                    raise KeyError(f"{label}.{name} has no default")
                return field.default
        raise KeyError(f"{label} has no field {name!r}")
    parameter = inspect.signature(owner).parameters[name]
    if parameter.default is inspect.Parameter.empty:
        raise KeyError(f"{label}({name}) has no default")
    return parameter.default


def library_help(owner: Any, name: str) -> str | None:
    """A config field's own description (pydantic's `description`, or a dataclass field's ``help`` metadata)."""
    pydantic_fields = getattr(owner, "__pydantic_fields__", None)
    if pydantic_fields is not None and name in pydantic_fields:
        return pydantic_fields[name].description
    if dataclasses.is_dataclass(owner):
        for field in dataclasses.fields(owner):
            if field.name == name:
                return field.metadata.get("help") or field.metadata.get("description")
    return None


def library(
    owner: Any, name: str, *decls: str, help: str | None = None, shown: Callable[[Any], Any] | None = None, **kw: Any
) -> Any:
    """An option that sets `owner`'s `name` (a config field or a library verb's keyword): its default is the
    library's (written as the flag takes it by `shown`, e.g. a tuple as ``a,b``), its help the field's own
    description where the config has one, else `help`."""
    default = library_default(owner, name)
    return typer.Option(
        shown(default) if shown is not None else default, *decls, help=library_help(owner, name) or help, **kw
    )


def as_json(help: str = JSON_HELP) -> Any:
    return typer.Option(False, "--json", help=help)


def overwrite(help: str = OVERWRITE_HELP) -> Any:
    return typer.Option(False, "--overwrite", help=help)


def allow_empty(help: str = "Accept an input without any instance.") -> Any:
    return typer.Option(False, "--allow-empty", help=help)


def allow_partial(help: str) -> Any:
    return typer.Option(False, "--allow-partial", help=help)


def limit(help: str) -> Any:
    """``--limit N``: the first N of something; click refuses N < 1 before any work."""
    return typer.Option(None, "--limit", min=1, help=help)


def sample(help: str) -> Any:
    """``--sample N``: a random N of something (seeded by --seed); click refuses N < 1 before any work."""
    return typer.Option(None, "--sample", min=1, help=help)


def output(help: str, *decls: str) -> Any:
    """A required output, ``-o/--output`` unless other `decls` are given."""
    return typer.Option(..., *(decls or ("-o", "--output")), help=help)


def store(help: str = STORE_HELP, *, required: bool = True) -> Any:
    return typer.Option(... if required else None, "--store", help=help)


def cascade(help: str = CASCADE_HELP) -> Any:
    return typer.Option(None, "--config", help=help)


def engine(owner: Any) -> Any:
    """``--engine`` of a judging verb: `owner`'s default (``local``)."""
    return library(owner, "engine", "--engine", help=ENGINE_HELP)


def ray_address(owner: Any) -> Any:
    return library(owner, "ray_address", "--ray-address", help=RAY_ADDRESS_HELP)


def retry_failed() -> Any:
    return typer.Option(False, "--retry-failed", help=RETRY_FAILED_HELP)


# --- options from a config's fields ----------------------------------------------------------------------------
F = TypeVar("F", bound=Callable[..., Any])
# The default of a command's `options` parameter: where `config_flags` puts the table's options.
CONFIG_FLAGS: Any = object()


@dataclasses.dataclass(frozen=True)
class Flag:
    """An option that sets a field of a library config: its names and help (the field's own description wins
    where the config has one). Its default and type are the field's; `type` overrides the latter for a folder
    taken as a path (`Path | None`), which the config gets as text."""

    field: str
    decls: tuple[str, ...]
    help: str | None = None
    type: Any = None


def flag(field: str, *decls: str, help: str | None = None, type: Any = None) -> Flag:
    return Flag(field, decls, help, type)


def config_flags(config: type, table: Sequence[Flag | str]) -> Callable[[F], F]:
    """Give a command one option per `Flag` of `table`, placed where it declares ``options: dict[str, Any] =
    CONFIG_FLAGS``, and call it with ``options={field: value}`` instead. A name in `table` places the command's own
    parameter of that name there (an option that is no field as it is given, e.g. ``--range A-B``)."""

    def decorate(command: F) -> F:
        own = inspect.signature(command).parameters
        if "options" not in own:
            raise TypeError(f"{command.__name__} declares no `options` parameter for the options of {config.__name__}")
        added = {
            entry.field: inspect.Parameter(
                entry.field,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=library(config, entry.field, *entry.decls, help=entry.help),
                annotation=entry.type if entry.type is not None else flag_type(config, entry.field),
            )
            for entry in table
            if isinstance(entry, Flag)
        }
        placed = [added[e.field] if isinstance(e, Flag) else own[e] for e in table]
        parameters = []
        for name, parameter in own.items():
            if name == "options":
                parameters.extend(placed)
            elif name not in table:
                parameters.append(parameter)

        paths = {entry.field for entry in table if isinstance(entry, Flag) and entry.type is not None}

        @functools.wraps(command)
        def with_options(*args: Any, **kwargs: Any) -> Any:
            options = {name: kwargs.pop(name) for name in added}
            for name in paths:
                if isinstance(options[name], os.PathLike):
                    options[name] = os.fspath(options[name])  # the config keeps a folder as text
            return command(*args, options=options, **kwargs)

        with_options.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        return with_options  # type: ignore[return-value]

    return decorate


def flag_type(config: type, name: str) -> Any:
    """The type of the option that sets `config`'s field `name`: the field's, constraints left to the config and
    a choice (`Literal`) taken as text, so that the config checks it and its error names the option."""
    pydantic_fields = getattr(config, "__pydantic_fields__", None)
    if pydantic_fields is not None and name in pydantic_fields:
        return _as_option_type(pydantic_fields[name].annotation)
    return _as_option_type(typing.get_type_hints(config)[name])


def _as_option_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _as_option_type(typing.get_args(hint)[0])
    if origin is Literal:
        return str
    if origin is Union or origin is types.UnionType:
        return functools.reduce(operator.or_, (_as_option_type(arg) for arg in typing.get_args(hint)))
    return hint
