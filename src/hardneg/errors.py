"""Errors shared by every stage.

An `InputError` names the file, the line (or Parquet row) and the field, so a user
can fix bad input without reading a traceback. The CLI turns it into exit code 2.
A `ConfigError` names the parameter; every config validates with pydantic, and its ValidationError becomes one of
these two here (`config_error`, `validation_problems`, `config_dataclass`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, ConfigDict, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pydantic's own dependency
    from typing_extensions import dataclass_transform


class HardnegError(Exception):
    """Base class of every error hardneg raises on purpose."""


@dataclass
class Problem:
    """One thing wrong with one place of an input file."""

    path: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        field = self.field or "-"
        return f"{where}: {field}: {self.message}"


class InputError(HardnegError):
    """Bad input: raised before anything is written."""

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        field: str,
        message: str,
        *,
        problems: list[Problem] | None = None,
    ) -> None:
        self.problem = Problem(str(path), line, field, message)
        self.problems = problems or [self.problem]
        super().__init__(str(self.problem))

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> InputError:
        first = problems[0]
        return cls(first.path, first.line, first.field, first.message, problems=problems)


class ConfigError(HardnegError):
    """A bad option or configuration value (also exit code 2 in the CLI).

    `param` names the library parameter (``range_end``, ``stages.1.t_better``), never a command-line flag: the
    CLI maps parameters to its own flags when it prints the error.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        self.detail = message
        super().__init__(f"{param}: {message}" if param else message)


class EmptyInput(InputError):
    """An input without any instance: usually a mistake (a wrong path or an unfinished export), so stages refuse
    it unless they are told an empty input is fine (`allow_empty`)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, None, "-", "no instances: the input is empty")


# ---------------------------------------------------------------------------------------------- config validation
# Every config validates with pydantic (the dataclass configs through `config_dataclass`, the YAML ones as models);
# its ValidationError becomes a hardneg error here, in one place, worded the same for every config.

Location = tuple[str | int, ...]
# A path option kept as text (what the configs store and report); a `Path` given for it is taken as its text.
PathText = Annotated[str, BeforeValidator(lambda value: os.fspath(value) if isinstance(value, os.PathLike) else value)]


class FieldError(ValueError):
    """Raised inside a config's pydantic validator to blame `field` (a name, or a path below the validated value,
    e.g. ``(2, "name")``): what a rule across fields raises, so the error still names a parameter."""

    def __init__(self, field: str | int | Location, message: str) -> None:
        super().__init__(message)
        self.field: Location = field if isinstance(field, tuple) else (field,)
        self.message = message


def validation_problems(exc: ValidationError) -> list[tuple[Location, str]]:
    """(location, message) of each error of a pydantic `ValidationError`, worded for people.

    A `FieldError` adds its field to the location; a choice outside a `Literal` reads
    ``unknown tags 'x'; expected one of better, both``; pydantic's "Value error, " prefix is dropped.
    """
    problems: list[tuple[Location, str]] = []
    for error in exc.errors():
        loc: Location = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        context = error.get("ctx") or {}
        cause = context.get("error")
        if isinstance(cause, FieldError):
            loc, message = (*loc, *cause.field), cause.message
        elif error["type"] == "literal_error":
            name = loc[-1] if loc and isinstance(loc[-1], str) else "value"
            choices = re.findall(r"'([^']*)'", str(context.get("expected", ""))) or [str(context.get("expected"))]
            message = f"unknown {name} {error['input']!r}; expected one of {', '.join(choices)}"
        problems.append((loc, message))
    return problems


def config_error(exc: ValidationError) -> ConfigError:
    """A pydantic `ValidationError` of an options object as a `ConfigError` naming its first bad parameter
    (``stages.1.t_better`` below the top level); further problems follow in the message."""
    problems = [(".".join(str(part) for part in loc), message) for loc, message in validation_problems(exc)]
    (param, message), rest = problems[0], problems[1:]
    message += "".join(f"; {other}: {text}" if other else f"; {text}" for other, text in rest)
    return ConfigError(message, param=param or None)


T = TypeVar("T")


@dataclass_transform(field_specifiers=(dataclasses.field,))
def config_dataclass(cls: type[T]) -> type[T]:
    """`cls` as a pydantic dataclass of options: validated when made (and by `dataclasses.replace`), unknown
    fields refused, any failure a `ConfigError` naming the parameter. It stays a dataclass (`dataclasses.fields`,
    `replace`, `asdict`); constraints are `Annotated[int, Field(ge=1)]` (the default stays a plain value),
    choices `Literal`, rules across fields a `model_validator` raising `FieldError`."""
    checked = pydantic_dataclass(cls, config=ConfigDict(extra="forbid"))
    validate = checked.__init__

    @functools.wraps(validate)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(exc) from None

    checked.__init__ = __init__  # type: ignore[method-assign]
    return checked  # type: ignore[return-value]  # the class, validating


def revalidate(config: Any) -> None:
    """Validate a `config_dataclass` object's current values again (its fields may have been set since it was
    made): `ConfigError` naming the parameter."""
    type(config)(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
