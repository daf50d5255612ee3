"""Errors shared by every stage.

An `InputError` names the file, the line (or Parquet row) and the field, so a user
can fix bad input without reading a traceback. The CLI turns it into exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
