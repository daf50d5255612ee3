"""Shared CLI pieces: the Typer app, consoles, error handling, JSON output and progress bars."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hardneg.errors import ConfigError, EmptyInput, HardnegError, InputError
from hardneg.judge.store import PartialCascade

app = typer.Typer(
    name="hardneg",
    help="Find and fix false negatives in retrieval training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

# Set by the --quiet option of the root callback; read by `progress`.
STATE: dict[str, Any] = {"quiet": False}

EXIT_BAD_INPUT = 2
# A judge run that ended with failed calls, or that its judge stopped (credentials refused): see `hardneg judge`.
EXIT_FAILED_CALLS = 3

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Find and fix false negatives in retrieval training data."""
    STATE["quiet"] = quiet


# Library parameters whose flag is not `--` + the parameter's name with dashes.
PARAM_FLAGS = {"range_start": "--range", "range_end": "--range", "range": "--range"}


def command_flags(func: Callable[..., Any]) -> dict[str, str]:
    """{python parameter: its flag or argument name} of a Typer command function, read from its defaults."""
    flags: dict[str, str] = {}
    for name, parameter in inspect.signature(func).parameters.items():
        info = parameter.default
        decls = [d for d in getattr(info, "param_decls", None) or () if d.startswith("--")]
        if decls:
            flags[name] = decls[0]
            for decl in decls:
                flags[decl.removeprefix("--").replace("-", "_")] = decl
        elif isinstance(info, typer.models.ArgumentInfo):
            flags[name] = info.metavar or name.upper()
    return flags


def error_message(exc: HardnegError, flags: dict[str, str] | None = None) -> str:
    """A library error as the CLI says it: parameters named by the command's flags where it has them."""
    if isinstance(exc, ConfigError) and exc.param:
        flags = flags or {}
        name = PARAM_FLAGS.get(exc.param) or flags.get(exc.param) or exc.param
        return f"{name}: {exc.detail}"
    return str(exc)


def handle_errors(func: F) -> F:
    """Turn hardneg's own errors into a one-line message on stderr and exit code 2."""

    flags = command_flags(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            hint = " (--allow-empty accepts it)" if isinstance(exc, EmptyInput) and "allow_empty" in flags else ""
            for problem in exc.problems[:50]:
                err_console.print("[red]error[/red] ", markup=True, end="")
                err_console.print(f"{problem}{hint}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except PartialCascade as exc:
            err_console.print("[red]error[/red] ", markup=True, end="")
            err_console.print(
                f"{exc.summary}: resume the judge run, or pass --allow-partial", markup=False, highlight=False
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except (ConfigError, HardnegError) as exc:
            err_console.print("[red]error[/red] ", markup=True, end="")
            err_console.print(error_message(exc, flags), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def stdout_to_stderr(active: bool) -> Iterator[None]:
    """With --json, stdout holds only the JSON object: library log lines (trainers, ...) go to stderr."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (no rich markup, so it can be piped to jq)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str))
    sys.stdout.write("\n")
    sys.stdout.flush()


@contextlib.contextmanager
def progress(quiet: bool | None = None) -> Iterator[Progress]:
    """A rich progress display on stderr, disabled by --quiet or when stderr is not a terminal."""
    disable = STATE["quiet"] if quiet is None else quiet
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=disable, transient=False) as bar:
        yield bar


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (respects --quiet)."""
    with progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
