"""Shared CLI pieces: the Typer app, consoles, error handling, JSON output, tables and progress."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import io
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
from hardneg.judging.store import PartialCascade
from hardneg.progress import LineProgress, interval_s, set_library_bars, set_phase_hook, set_quiet

app = typer.Typer(
    name="hardneg",
    help="Find and fix false negatives in retrieval training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help paragraphs reflow to the terminal's width instead of keeping the docstrings' line breaks.
    rich_markup_mode="markdown",
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


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("hardneg")
        except PackageNotFoundError:  # running from a source tree that is not installed
            from hardneg import __version__ as number
        typer.echo(f"hardneg {number}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="No progress, no log lines (ours and the libraries'); errors and what a verb says about the data stay.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Find and fix false negatives in retrieval training data."""
    STATE["quiet"] = quiet
    set_library_bars(True)  # what an earlier in-process call (CliRunner) turned off comes back first
    set_quiet(quiet)
    if not quiet and not err_console.is_terminal:
        set_library_bars(False)  # in a log our plain lines say it; tqdm's carriage returns would garble it
    set_phase_hook(_print_phase)


def _print_phase(message: str) -> None:
    """A phase announced by the library (`hardneg.progress.announce`) outside any progress display: one line."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


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
    """Turn hardneg's own errors, and the OSErrors of `DISK_ERRORS` (a full disk, a read-only file system, a
    refused permission, a folder given for a file), into a one-line message on stderr and exit code 2."""

    flags = command_flags(func)
    # the command's outputs (-o/--output, an OUT argument): named when a write fails without naming its file
    outputs = [name for name in inspect.signature(func).parameters if flags.get(name) in ("--output", "OUT")]

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
        except OSError as exc:  # a full disk, a read-only mount, no permission: said with the path, no traceback
            if exc.errno not in DISK_ERRORS:
                raise
            err_console.print("[red]error[/red] ", markup=True, end="")
            written = [kwargs[name] for name in outputs if kwargs.get(name) is not None]
            err_console.print(disk_error_message(exc, written), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


# OSErrors `handle_errors` says in one line (exit 2), with the path: errno -> what to do about it.
DISK_ERRORS = {
    errno.ENOSPC: "free some space there and run again",
    errno.EDQUOT: "free some space (disk quota) and run again",
    errno.EFBIG: "the file is larger than this system allows (a file-size limit); write elsewhere",
    errno.EROFS: "it is on a read-only file system: write to another path",
    errno.EACCES: "check the permissions of the file and its folder",
    errno.EPERM: "check the permissions of the file and its folder",
    errno.EISDIR: "a folder where a file was expected: name a file",
    errno.ENOTDIR: "a file where a folder was expected: check the path",
    errno.EEXIST: "it exists already (a file where a folder was expected?): check the path",
}


def disk_error_message(exc: OSError, outputs: Iterable[Any] = ()) -> str:
    """``PATH: No space left on device (ENOSPC): free some space...``. A write that failed without naming its
    file (a full disk mid-write) is said with the command's `outputs` (-o / OUT) instead."""
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    reason = f"{exc.strerror or exc} ({code}): {DISK_ERRORS[exc.errno or 0]}"
    if exc.filename is not None:
        names = [str(exc.filename)] + ([str(exc.filename2)] if exc.filename2 is not None else [])
        return f"{' -> '.join(names)}: {reason}"
    names = [str(o) for o in outputs]
    return f"writing {', '.join(names)}: {reason}" if names else reason


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


def print_table(table: Any, out: Console | None = None) -> None:
    """Print a rich Table with every cell whole, at any width, on a terminal, in a pipe or in a file.

    As drawn when its natural width fits the console; else transposed (a row per column) when that fits; else one
    block per row (of the orientation with fewer blocks), a ``column: value`` line per non-empty cell. A title
    wider than the table goes on its own line. Columns fold rather than cut (`overflow="fold"`) as a last resort:
    no cell ever ends in an ellipsis.
    """
    out = out or console
    for column in table.columns:
        column.overflow = "fold"
    headers, rows = _table_grid(out, table)
    width = _natural_width(out, table)
    if width <= out.width:
        _print_titled(out, table, table.title, width)
        return
    if rows and len(headers) > 1:
        flipped = _grid_table(*_transposed(headers, rows))
        width = _natural_width(out, flipped)
        if width <= out.width:
            _print_titled(out, flipped, table.title, width)
            return
    if rows and len(headers) - 1 < len(rows):
        headers, rows = _transposed(headers, rows)
    lines = [_plain(out, table.title)] if table.title else []
    for row in rows:
        if lines:
            lines.append("")
        lines.append(f"{headers[0]}: {row[0]}" if headers[0] else row[0])
        cells = zip(headers[1:], row[1:], strict=True)
        lines.extend(f"  {header}: {cell}" if header else f"  {cell}" for header, cell in cells if cell)
    if not rows:
        lines.append("(no rows) " + ", ".join(headers))
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _transposed(headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Columns as rows: the first column's cells become the headers."""
    flipped_rows = [[headers[i], *(row[i] for row in rows)] for i in range(1, len(headers))]
    return [headers[0], *(row[0] for row in rows)], flipped_rows


def _plain(out: Console, renderable: Any) -> str:
    """A cell, header or title as plain text (markup rendered away)."""
    from rich.text import Text

    if renderable is None:
        return ""
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, str):
        return out.render_str(renderable).plain
    wide = Console(width=10_000, file=io.StringIO(), color_system=None)
    with wide.capture() as captured:
        wide.print(renderable)
    return captured.get().strip()


def _table_grid(out: Console, table: Any) -> tuple[list[str], list[list[str]]]:
    headers = [_plain(out, column.header) for column in table.columns]
    cells = [[_plain(out, cell) for cell in column._cells] for column in table.columns]
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    return headers, rows


def _grid_table(headers: list[str], rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table()
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _natural_width(out: Console, table: Any) -> int:
    """The width a table takes with no column wrapped or cut (its title aside)."""
    from rich.measure import Measurement

    title, table.title = table.title, None
    try:
        return Measurement.get(out, out.options.update_width(100_000), table).maximum
    finally:
        table.title = title


def _print_titled(out: Console, table: Any, title: Any, width: int) -> None:
    table.title = title
    text = _plain(out, title) if title else ""
    if len(text) > width:  # rich would wrap it to the table's width, folding long words (paths)
        table.title = None
        out.print(text, markup=False, highlight=False, soft_wrap=True)
    out.print(table)


class LiveProgress(Progress):
    """Rich's live bars, plus `phase`: a spinner for a step without a count until the next task starts or another
    task's count moves."""

    _phase_task: Any = None

    def phase(self, message: str) -> None:
        self._end_phase()
        self._phase_task = super().add_task(message, total=None)

    def add_task(self, *args: Any, **kwargs: Any) -> Any:
        self._end_phase()
        return super().add_task(*args, **kwargs)

    def update(self, task_id: Any, **kwargs: Any) -> None:
        completed = kwargs.get("completed")
        moved = kwargs.get("advance") or (completed is not None and completed != self._tasks[task_id].completed)
        if task_id != self._phase_task and moved:
            self._end_phase()  # the counted work it interrupted goes on: the phase is over
        super().update(task_id, **kwargs)

    def advance(self, task_id: Any, advance: float = 1) -> None:
        if task_id != self._phase_task and advance:
            self._end_phase()
        super().advance(task_id, advance)

    def stop(self) -> None:
        self._end_phase()
        super().stop()

    def _end_phase(self) -> None:
        if self._phase_task is not None:
            self.remove_task(self._phase_task)
            self._phase_task = None


@contextlib.contextmanager
def progress(quiet: bool | None = None) -> Iterator[Any]:
    """Progress on stderr: live bars on a terminal, plain lines elsewhere (`hardneg.progress.LineProgress`:
    a line when a task starts, every $HARDNEG_PROGRESS_INTERVAL seconds while it runs, and when it ends),
    nothing under --quiet. Phases the library announces meanwhile show as a spinner or a line."""
    disable = STATE["quiet"] if quiet is None else quiet
    bar: Any
    if disable:
        bar = LineProgress(interval=0, enabled=False)
    elif err_console.is_terminal:
        columns = (
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        bar = LiveProgress(*columns, console=err_console, transient=False)
    else:
        try:
            bar = LineProgress(interval=interval_s())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if disable:  # announced phases keep their route: a line, or nothing under --quiet
        with bar:
            yield bar
        return
    previous = set_phase_hook(bar.phase)
    try:
        with bar:
            yield bar
    finally:
        set_phase_hook(previous)


def stage_bars(bar: Any, label: str = "{}") -> Callable[..., None]:
    """A progress callback ``(name, done, total)`` drawing one bar per name (a cascade stage, a mining phase),
    labelled ``label.format(name)``."""
    tasks: dict[str, Any] = {}

    def on_progress(name: str, done: int, total: int | None = None) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(label.format(name), total=total)
        bar.update(tasks[name], completed=done, total=total)

    return on_progress


def count_bar(bar: Any, description: str, total: int | None = None) -> Callable[[int], None]:
    """A progress callback ``(done)`` drawing one bar."""
    task = bar.add_task(description, total=total)
    return lambda done: bar.update(task, completed=done)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (respects --quiet)."""
    with progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
