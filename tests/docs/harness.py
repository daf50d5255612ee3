"""The docs harness: every fenced shell and Python block of README.md and docs/*.md, classified by a marker.

A marker is an HTML comment on the line before the block (invisible on the site and on GitHub):

    <!-- docs-test: run -->                 run it as written, in a fresh folder (below)
    <!-- docs-test: run limit=4 -->         the same, with `--limit 4` added to every hardneg verb that takes it
    <!-- docs-test: run continue -->        a Python block run in the namespace (and folder) of the page's
                                            previous Python block
    <!-- docs-test: run shared -->          a block that reads ../shared/data through a file it names (skipped
                                            where that is absent, as blocks that name ../shared/ are)
    <!-- docs-test: run sample-train:train.jsonl.gz sample-beir:data/scifact -->
                                            the same, with FIXTURE:PATH placed in the folder first (FIXTURES)
    <!-- docs-test: check gpu -->           not run, because it needs what the tag names (TAGS); checked instead

A run block runs in `WORK` = a fresh `<tmp>/work`, laid out like the repository root beside `../shared/data`:
`bench/` and `examples/` are copies of the repository's, `../shared/data/NAME` links to the real data (tests
skip cleanly when a block needs it and it is absent), and every named file of the docs (a block whose first line
is a comment `# NAME.yaml`, e.g. `gpu-cascade.yaml` on the scaling page) is written there. Shell blocks run with
`bash -e -o pipefail` and the test venv's `bin/` first on PATH (exit 0 required, and every file a hardneg command
names with -o/--output/--out/--save-run/--html/--plot must exist afterwards); Python blocks run in process.
Identical blocks (same text, same marker) run once per session: the README and the site share a few.

A check block is parsed, not run: every `hardneg ...` command must name a verb of the Typer app and only options
it has (click's own parser, so a value is never taken for an option), with no extra arguments; every `--config`
must load (`hardneg.load_cascade`: a shipped name, a repository file, a named file of the docs, or a file the same
block writes with `hardneg configs show NAME > FILE`); every `hardneg experiment` / `prune` config that names a
repository file must load (where ../shared/data, which the repository's configs name, is there); every `python
bench/X.py` must exist and accept its options (its `--help`); every `make` target must exist; every other program
must be a shell builtin or on PATH. A Python check block is compiled, and all of them are type-checked by one mypy
run (hardneg's modules followed, the libraries under them not). Inline commands in the prose (`hardneg ...`,
`python bench/...` in backticks) get the same check as a block tagged `yours`.

A shell or Python block without a marker fails: every new block must be classified. Other blocks (yaml, text,
no language) are output samples or files, never run.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gzip
import io
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SHARED_DATA = Path(os.environ.get("HARDNEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
VENV_BIN = Path(sys.executable).parent
RUN_TIMEOUT_S = 1800

SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}

# Why a block is checked and not run.
TAGS = {
    "gpu": "needs a GPU",
    "api": "needs an API key (a paid or remote API)",
    "cluster": "needs a Ray cluster or several machines",
    "long": "takes too long for the suite (training, LLM judging, installing)",
    "yours": "needs files only the reader has (their model, data or annotation export)",
}
# FIXTURE:PATH on a run marker: what is placed at PATH (relative to WORK) before the block runs.
FIXTURES = {
    "sample-train": "the shipped sample training file (hardneg.data.sample.sample_train_path), as .jsonl or .jsonl.gz",
    "sample-beir": "the shipped sample BEIR folder (hardneg.data.sample.sample_beir_dir)",
    "scifact-slice": "a slice of ../shared/data/scifact: 6 train and 6 test queries, their documents and 120 others",
    "minilm": "the embedded all-MiniLM-L6-v2 folder (hardneg.models.minilm_path)",
}
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
NAMED_FILE = re.compile(r"^#\s*([\w.-]+\.(?:ya?ml|json|tsv|txt))\b")
OUTPUT_OPTIONS = {"-o", "--output", "--out", "--save-run", "--html", "--plot"}
SHELL_BUILTINS = {"export", "cd", "echo", "cat", "set", "for", "do", "done", "if", "then", "fi", "time", "ls", "mkdir"}
OPERATORS = {"|", "||", "&&", ";", "&"}
REDIRECTS = {">", ">>", "<", ">&", "&>"}


# -- blocks and markers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    kind: str  # "run" | "check"
    tags: tuple[str, ...] = ()
    limit: int | None = None
    cont: bool = False
    given: tuple[tuple[str, str], ...] = ()  # (fixture, path)
    shared: bool = False  # reads ../shared/data through a file it names (an experiment config)


@dataclass(frozen=True)
class Block:
    page: Path
    index: int  # 1-based among the page's fenced blocks of any language
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker_text: str | None  # what the marker comment says, or None without one

    @property
    def id(self) -> str:
        return f"{self.page.name}-{self.index}-{self.lang or 'text'}"

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"

    @property
    def tested(self) -> bool:
        return self.lang in SHELL | PYTHON

    @property
    def marker(self) -> Marker:
        """The parsed marker; ValueError when it is missing or malformed."""
        if self.marker_text is None:
            raise ValueError(
                f"{self.where}: a ```{self.lang} block without a marker: put `<!-- docs-test: run -->` (or "
                f"`check TAG`, TAG one of {', '.join(TAGS)}) on the line before it (see tests/docs/harness.py)"
            )
        return parse_marker(self.marker_text, self.where)


def parse_marker(text: str, where: str = "marker") -> Marker:
    words = text.split()
    if not words or words[0] not in ("run", "check"):
        raise ValueError(f"{where}: a docs-test marker starts with run or check, not {text!r}")
    kind, rest = words[0], words[1:]
    if kind == "check":
        tags = tuple(tag for word in rest for tag in word.split(",") if tag)
        unknown = [t for t in tags if t not in TAGS]
        if not tags or unknown:
            raise ValueError(f"{where}: `check` needs one or more of {', '.join(TAGS)} (got {' '.join(rest)!r})")
        return Marker("check", tags=tags)
    limit, cont, shared, given = None, False, False, []
    for word in rest:
        if word == "continue":
            cont = True
        elif word == "shared":
            shared = True
        elif word.startswith("limit="):
            limit = int(word.removeprefix("limit="))
        elif ":" in word and word.split(":", 1)[0] in FIXTURES:
            fixture, path = word.split(":", 1)
            if Path(path).is_absolute() or not path:
                raise ValueError(f"{where}: a fixture path is relative to the block's folder: {word!r}")
            given.append((fixture, path))
        else:
            raise ValueError(f"{where}: unknown word {word!r} in a run marker (limit=N, continue, shared, "
                             f"FIXTURE:PATH with FIXTURE one of {', '.join(FIXTURES)})")  # fmt: skip
    return Marker("run", limit=limit, cont=cont, given=tuple(given), shared=shared)


def page_blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, with the marker on the line before it (if any)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    at = 0
    while at < len(lines):
        opening = FENCE.match(lines[at])
        if not opening:
            at += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        end = at + 1
        while end < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]):
            body.append(lines[end][indent:] if lines[end][:indent].strip() == "" else lines[end])
            end += 1
        before = at - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = MARKER.match(lines[before]) if before >= 0 else None
        text = "\n".join(body) + "\n"
        blocks.append(
            Block(page, len(blocks) + 1, at + 1, opening["lang"].lower(), text, marker[1] if marker else None)
        )
        at = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in page_blocks(page)]


def tested_blocks() -> list[Block]:
    return [block for block in all_blocks() if block.tested]


def named_files() -> dict[str, str]:
    """The files the docs define: a block whose first line is `# NAME.yaml` (NAME.json, ...) is that file."""
    found: dict[str, str] = {}
    for block in all_blocks():
        first = block.text.splitlines()[0] if block.text.strip() else ""
        named = NAMED_FILE.match(first)
        if named and not block.tested:
            if named[1] in found and found[named[1]] != block.text:
                raise ValueError(f"{block.where}: {named[1]} is defined twice in the docs, differently")
            found[named[1]] = block.text
    return found


def needs_shared(block: Block) -> bool:
    if "../shared/" in block.text:
        return True
    if block.marker_text is None or block.marker.kind != "run":
        return False
    return block.marker.shared or any(f == "scifact-slice" for f, _ in block.marker.given)


# -- shell parsing ------------------------------------------------------------------------------------------------


@dataclass
class Command:
    argv: list[str]
    stdout_to: str | None = None  # `> FILE`


def logical_lines(text: str, lang: str = "bash") -> list[str]:
    """The block's commands, one per line: continuation lines joined, comment-only and empty lines dropped
    (console blocks: only the `$ ` lines)."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if lang == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def simple_commands(line: str) -> list[Command]:
    """The simple commands of one shell line: split at | && || ; &, redirections taken out, `VAR=value` prefixes
    dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    commands: list[Command] = []
    current = Command([])
    at = 0
    while at < len(tokens):
        token = tokens[at]
        if token in OPERATORS:
            commands.append(current)
            current = Command([])
        elif token in REDIRECTS or (token.isdigit() and at + 1 < len(tokens) and tokens[at + 1] in REDIRECTS):
            descriptor = None
            if token.isdigit():
                descriptor, at = token, at + 1
                token = tokens[at]
            if token in (">", ">>") and descriptor in (None, "1") and at + 1 < len(tokens):
                current.stdout_to = tokens[at + 1]
            at += 1  # the redirection's target
        elif not current.argv and re.match(r"^[A-Za-z_]\w*=", token):
            pass  # an environment assignment before the program
        else:
            current.argv.append(token)
        at += 1
    commands.append(current)
    return [c for c in commands if c.argv]


def shell_commands(block: Block) -> list[Command]:
    return [command for line in logical_lines(block.text, block.lang) for command in simple_commands(line)]


# -- the CLI -------------------------------------------------------------------------------------------------------


@functools.cache
def _cli() -> tuple[Any, type]:
    import typer

    from hardneg.cli import app

    root = typer.main.get_command(app)
    context_type = type(root.make_context("hardneg", [], resilient_parsing=True))
    return root, context_type


@dataclass
class Parsed:
    path: list[str]  # the verb path: ["train", "retriever"]
    command: Any  # the click command
    options: dict[str, Any]  # param name -> raw value(s)
    problems: list[str] = field(default_factory=list)

    def option_names(self) -> set[str]:
        return {o for p in self.command.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}


def parse_hardneg(argv: list[str]) -> Parsed:
    """Parse `hardneg ...` with click's own parser (no value conversion, no callbacks, nothing run)."""
    root, context_type = _cli()
    command, context = root, context_type(root, info_name="hardneg")
    path: list[str] = []
    rest = list(argv[1:])
    while True:
        parser = command.make_parser(context)
        try:
            options, leftover, _ = parser.parse_args(args=list(rest))
        except Exception as exc:  # click's UsageError family (NoSuchOption, BadOptionUsage, ...)
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            return Parsed(path, command, {}, [f"hardneg {' '.join(path)}: {message}"])
        if not hasattr(command, "get_command") or not leftover:
            break
        sub = command.get_command(context, leftover[0])
        if sub is None:
            verbs = ", ".join(command.list_commands(context))
            return Parsed(path, command, options, [f"hardneg {' '.join(path)}: no verb {leftover[0]!r} ({verbs})"])
        path.append(leftover[0])
        command, context = sub, context_type(sub, info_name=leftover[0], parent=context)
        rest = leftover[1:]
    parsed = Parsed(path, command, options)
    if hasattr(command, "get_command") and not path:
        parsed.problems.append("hardneg: no verb")
    if leftover:
        parsed.problems.append(f"hardneg {' '.join(path)}: unexpected extra argument(s) {' '.join(leftover)!r}")
    return parsed


def takes_limit(path: list[str]) -> bool:
    parsed = parse_hardneg(["hardneg", *path])
    return "--limit" in parsed.option_names()


def with_limit(text: str, limit: int) -> tuple[str, int]:
    """`text` with `--limit N` after the verb of every hardneg command that takes it and has none; and how many."""
    out, count = [], 0
    verb = re.compile(
        r"^(?P<one>\s*hardneg(?:\s+(?:--quiet|-q))*\s+(?P<v1>[a-z][\w-]*))(?P<two>\s+(?P<v2>[a-z][\w-]*))?"
    )
    for line in text.splitlines():
        head = verb.match(line)
        if head and "--limit" not in line:
            paths = [([head["v1"]], head.end("one"))]
            if head["v2"]:
                paths.insert(0, ([head["v1"], head["v2"]], head.end("two")))
            for path, end in paths:
                if path_exists(path):
                    if takes_limit(path):
                        line = f"{line[:end]} --limit {limit}{line[end:]}"
                        count += 1
                    break
        out.append(line)
    return "\n".join(out) + "\n", count


def path_exists(path: list[str]) -> bool:
    parsed = parse_hardneg(["hardneg", *path])
    return parsed.path == path and not any("no verb" in p for p in parsed.problems)


# -- checks ------------------------------------------------------------------------------------------------------


def load_config_problem(value: str, defined: dict[str, str]) -> str | None:
    """None when the cascade config `value` loads, else why not."""
    import hardneg

    try:
        if value in defined:
            target = defined[value]
            if target.startswith("shipped:"):
                hardneg.load_cascade(target.removeprefix("shipped:"))
            else:
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / value
                    path.write_text(target, encoding="utf-8")
                    hardneg.load_cascade(path)
        elif (ROOT / value).is_file():
            hardneg.load_cascade(ROOT / value)
        elif "/" in value or value.endswith((".yaml", ".yml")):
            return f"--config {value}: not a repository file, a named file of the docs, or written by the block"
        else:
            hardneg.load_cascade(value)
    except Exception as exc:
        return f"--config {value}: {exc}"
    return None


def check_hardneg(command: Command, defined: dict[str, str], tags: tuple[str, ...] = ()) -> list[str]:
    parsed = parse_hardneg(command.argv)
    problems = list(parsed.problems)
    if problems:
        return problems
    if parsed.path == ["configs", "show"] and command.stdout_to:
        name = parsed.options.get("name") or next((a for a in command.argv[3:] if not a.startswith("-")), None)
        if name:
            defined[command.stdout_to] = f"shipped:{name}"
    names = [p.name for p in parsed.command.params if "--config" in getattr(p, "opts", ())]
    configs = parsed.options.get(names[0]) if names else None
    for value in configs if isinstance(configs, (list, tuple)) else ([configs] if configs else []):
        problem = load_config_problem(str(value), defined)
        if problem:
            problems.append(f"hardneg {' '.join(parsed.path)}: {problem}")
    if parsed.path and parsed.path[0] in ("experiment", "prune"):
        positional = [a for a in command.argv[2:] if not a.startswith("-")]
        if positional and (ROOT / positional[0]).is_file() and not (ROOT.parent / "shared" / "data").is_dir():
            pass  # the repository's configs name data under ../shared/data, absent here: nothing to load against
        elif positional and (ROOT / positional[0]).is_file():
            from hardneg.experiment.config import load_config

            try:
                load_config(ROOT / positional[0], require_judge=parsed.path[0] == "experiment")
            except Exception as exc:
                problems.append(f"hardneg {parsed.path[0]} {positional[0]}: {exc}")
        elif "yours" not in tags:
            problems.append(f"hardneg {parsed.path[0]}: {positional[:1]} is not a repository file (tag it yours)")
    return problems


@functools.cache
def bench_options(script: str) -> frozenset[str]:
    """The options `python SCRIPT --help` lists."""
    proc = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"python {script} --help failed:\n{proc.stderr[-2000:]}")
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", proc.stdout))


def check_python_script(argv: list[str]) -> list[str]:
    if len(argv) < 2 or argv[1] == "-c":
        return []
    if argv[1] == "-m":
        return []
    script = argv[1]
    if not (ROOT / script).is_file():
        return [f"python {script}: no such file in the repository"]
    known = bench_options(script)
    unknown = [a for a in argv[2:] if a.startswith("-") and a.split("=", 1)[0] not in known]
    return [f"python {script}: no option {a!r} (its --help)" for a in unknown]


@functools.cache
def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([\w.-]+)\s*:(?!=)", text, flags=re.M))


def check_command(command: Command, defined: dict[str, str], tags: tuple[str, ...] = ()) -> list[str]:
    program = command.argv[0]
    if program == "hardneg":
        return check_hardneg(command, defined, tags)
    if program in ("python", "python3"):
        return check_python_script(command.argv)
    if program == "make":
        return [f"make {t}: no such target in the Makefile" for t in command.argv[1:] if t not in make_targets()]
    if program in SHELL_BUILTINS:
        return []
    if shutil.which(program, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        return [f"{program}: not a program on PATH (nor a shell builtin)"]
    return []


def check_shell(block: Block, tags: tuple[str, ...] = ()) -> list[str]:
    defined = dict(named_files())
    problems = []
    for command in shell_commands(block):
        problems += check_command(command, defined, tags)
    return problems


def inline_commands(page: Path) -> list[str]:
    """The `hardneg ...` and `python bench/...` commands written as inline code in the page's prose."""
    text = page.read_text(encoding="utf-8")
    prose = re.sub(r"^(\s*)(`{3,}|~{3,}).*?^\1\2\s*$", "", text, flags=re.S | re.M)
    spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", prose)
    return [s for s in spans if re.match(r"^(hardneg\s+(?:--?\w[\w-]*\s+)*[a-z]|python3? bench/)", s)]


def check_inline(span: str) -> list[str]:
    """An inline command as a check block would check it; placeholders in capitals (VERB, FILE, ...) are allowed
    where a value goes, and `...` ends the part that is checked."""
    span = span.split("...")[0].strip()
    problems = []
    for command in simple_commands(span):
        problems += check_command(command, dict(named_files()), ("yours",))
    # `hardneg mine --backend` names an option in prose: its value is not the point
    return [p for p in problems if not (p.endswith("requires an argument.") and span.endswith(p.split("'")[1]))]


# -- Python blocks: compile and type-check ------------------------------------------------------------------------


def python_source(block: Block) -> str:
    """The block's code, with the earlier blocks of its `continue` chain before it."""
    chain = [block]
    while chain[0].marker.kind == "run" and chain[0].marker.cont:
        earlier = [b for b in page_blocks(block.page) if b.lang in PYTHON and b.index < chain[0].index]
        if not earlier:
            raise ValueError(f"{chain[0].where}: `continue` with no Python block before it on the page")
        chain.insert(0, earlier[-1])
    return "".join(b.text for b in chain)


def type_check(blocks: list[Block]) -> dict[str, list[str]]:
    """One mypy run over `blocks` (Python, each with its `continue` chain): block id -> its errors."""
    folder = Path(tempfile.mkdtemp(prefix="hardneg-docs-mypy-"))
    modules = {}
    for block in blocks:
        name = "block_" + re.sub(r"\W", "_", block.id)
        (folder / f"{name}.py").write_text(python_source(block), encoding="utf-8")
        modules[f"{name}.py"] = block.id
    # hardneg's own modules are followed (their types are what the blocks are checked against); the libraries
    # under them are not (typed as Any), which keeps the run to seconds instead of minutes
    (folder / "mypy.ini").write_text(
        "[mypy]\nfollow_imports = skip\nignore_missing_imports = True\n[mypy-hardneg.*]\nfollow_imports = silent\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-error-summary", "--hide-error-context",
         "--no-color-output", "--cache-dir", str(folder / ".mypy_cache"), *sorted(modules)],
        cwd=folder, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    report: dict[str, list[str]] = {block_id: [] for block_id in modules.values()}
    for line in proc.stdout.splitlines():
        module = line.split(":", 1)[0]
        if module in modules and ": error:" in line:
            report[modules[module]].append(line)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not any(report.values())):
        raise AssertionError(f"mypy did not run:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    shutil.rmtree(folder, ignore_errors=True)
    return report


@functools.cache
def docs_type_report() -> dict[str, list[str]]:
    """`type_check` over the docs' check-marked Python blocks (the run ones run), once per session."""
    return type_check([b for b in tested_blocks() if b.lang in PYTHON and _is_check(b)])


def _is_check(block: Block) -> bool:
    try:
        return block.marker.kind == "check"
    except ValueError:
        return False


def check_python(block: Block) -> list[str]:
    try:
        compile(python_source(block), block.where, "exec")
    except SyntaxError as exc:
        return [f"{block.where}: {exc}"]
    return docs_type_report().get(block.id, [])


def check(block: Block) -> list[str]:
    tags = block.marker.tags
    return check_python(block) if block.lang in PYTHON else check_shell(block, tags)


# -- running ------------------------------------------------------------------------------------------------------


@dataclass
class Ran:
    workdir: Path
    stdout: str
    stderr: str
    namespace: dict[str, Any] | None = None


class Runner:
    """Runs blocks in fresh folders under `base`; identical blocks (and a `continue` chain's earlier blocks) run
    once per session."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.done: dict[tuple[str, ...], Ran] = {}

    def _key(self, block: Block) -> tuple[str, ...]:
        marker = block.marker
        key = (block.lang, block.text, str(marker.limit), repr(marker.given))
        if marker.cont:
            return (*key, *self._key(self._previous_python(block)))
        return key

    @staticmethod
    def _previous_python(block: Block) -> Block:
        earlier = [b for b in page_blocks(block.page) if b.lang in PYTHON and b.index < block.index]
        if not earlier:
            raise ValueError(f"{block.where}: `continue` with no Python block before it on the page")
        return earlier[-1]

    def run(self, block: Block) -> Ran:
        marker = block.marker
        if marker.kind != "run":
            raise ValueError(f"{block.where}: not a run block")
        if needs_shared(block) and not SHARED_DATA.is_dir():
            import pytest

            pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data is absent: a fresh clone)")
        key = self._key(block)
        if key not in self.done:
            self.done[key] = self._python(block) if block.lang in PYTHON else self._shell(block)
        return self.done[key]

    def workdir(self, block: Block) -> Path:
        top = Path(tempfile.mkdtemp(prefix=re.sub(r"\W", "-", block.id) + "-", dir=self.base))
        work = top / "work"
        work.mkdir()
        for name in ("bench", "examples"):
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        if SHARED_DATA.is_dir():
            shared = top / "shared" / "data"
            shared.mkdir(parents=True)
            for child in SHARED_DATA.iterdir():
                (shared / child.name).symlink_to(child.resolve())
        for name, text in named_files().items():
            (work / name).write_text(text, encoding="utf-8")
        for fixture, path in block.marker.given:
            place_fixture(fixture, work / path)
        return work

    def _shell(self, block: Block) -> Ran:
        work = self.workdir(block)
        text = block.text
        if block.lang == "console":
            text = "\n".join(logical_lines(text, "console")) + "\n"
        if block.marker.limit is not None:
            text, count = with_limit(text, block.marker.limit)
            assert count, f"{block.where}: limit={block.marker.limit}, but no command in the block takes --limit"
        script = work.parent / "block.sh"
        script.write_text(text, encoding="utf-8")
        env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", str(script)], cwd=work, env=env, capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
        assert proc.returncode == 0, (
            f"{block.where}: exit {proc.returncode}\n--- ran ---\n{text}--- stderr (end) ---\n{proc.stderr[-4000:]}"
        )
        missing = [p for p in outputs(block) if not (work / p).exists()]
        assert not missing, f"{block.where}: ran, but did not write {missing}"
        return Ran(work, proc.stdout, proc.stderr)

    def _python(self, block: Block) -> Ran:
        if block.marker.cont:
            before = self.run(self._previous_python(block))
            assert before.namespace is not None
            work, namespace = before.workdir, before.namespace
        else:
            work, namespace = self.workdir(block), {"__name__": "docs_block"}
        out, err = io.StringIO(), io.StringIO()
        with _cwd(work), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(block.text, block.where, "exec"), namespace)
        return Ran(work, out.getvalue(), err.getvalue(), namespace)


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def outputs(block: Block) -> list[str]:
    """The files the block's hardneg commands name as outputs."""
    found = []
    for command in shell_commands(block):
        if command.argv[0] != "hardneg":
            continue
        for at, word in enumerate(command.argv[:-1]):
            if word in OUTPUT_OPTIONS:
                found.append(command.argv[at + 1])
        found += [w.split("=", 1)[1] for w in command.argv if w.split("=", 1)[0] in OUTPUT_OPTIONS and "=" in w]
    return found


_RUNNER: Runner | None = None


def runner() -> Runner:
    """The session's runner (one, so that identical blocks run once whichever test asks first)."""
    global _RUNNER
    if _RUNNER is None:
        base = Path(tempfile.mkdtemp(prefix="hardneg-docs-"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)  # trained models and stores: hundreds of MB
        _RUNNER = Runner(base)
    return _RUNNER


def find_block(page: str, contains: str) -> Block:
    """The one shell or Python block of `page` (a file name: README.md, judges.md) whose text contains `contains`."""
    path = ROOT / page if page == "README.md" else DOCS / page
    found = [b for b in page_blocks(path) if b.tested and contains in b.text]
    assert len(found) == 1, f"{page}: {len(found)} blocks contain {contains!r}"
    return found[0]


# -- fixtures -----------------------------------------------------------------------------------------------------


def place_fixture(fixture: str, target: Path) -> None:
    from hardneg.data.sample import sample_beir_dir, sample_train_path

    target.parent.mkdir(parents=True, exist_ok=True)
    if fixture == "sample-train":
        data = sample_train_path().read_bytes()
        if target.name.endswith(".jsonl.gz"):
            target.write_bytes(gzip.compress(data))
        elif target.name.endswith(".jsonl"):
            target.write_bytes(data)
        else:
            raise ValueError(f"sample-train:{target.name}: name it .jsonl or .jsonl.gz")
    elif fixture == "sample-beir":
        shutil.copytree(sample_beir_dir(), target)
    elif fixture == "scifact-slice":
        if target.is_symlink():
            target.unlink()
        scifact_slice(SHARED_DATA / "scifact", target)
    elif fixture == "minilm":
        from hardneg.models import minilm_path

        target.symlink_to(Path(minilm_path()).resolve())
    else:
        raise ValueError(f"unknown fixture {fixture!r}")


def scifact_slice(scifact: Path, out: Path, queries_per_split: int = 6, other_docs: int = 120) -> Path:
    """SciFact in BEIR layout cut to a few queries of each split, their relevant docs and a seeded set of others."""
    keep_queries: set[str] = set()
    relevant: set[str] = set()
    (out / "qrels").mkdir(parents=True)
    for split in ("train", "test"):
        lines = (scifact / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        chosen: list[str] = []
        kept = [lines[0]]
        for row in lines[1:]:
            qid, docid, _ = row.split("\t")
            if qid not in chosen and len(chosen) < queries_per_split:
                chosen.append(qid)
            if qid in chosen:
                kept.append(row)
                relevant.add(docid)
        keep_queries.update(chosen)
        (out / "qrels" / f"{split}.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    with open(scifact / "queries.jsonl", encoding="utf-8") as src, open(out / "queries.jsonl", "w") as dst:
        dst.writelines(line for line in src if json.loads(line)["_id"] in keep_queries)
    with gzip.open(scifact / "corpus.jsonl.gz", "rt", encoding="utf-8") as src:
        docs = [json.loads(line) for line in src]
    others = [d for d in docs if d["_id"] not in relevant]
    chosen_docs = [d for d in docs if d["_id"] in relevant] + random.Random(0).sample(others, other_docs)
    with gzip.open(out / "corpus.jsonl.gz", "wt", encoding="utf-8") as dst:
        dst.writelines(json.dumps(d) + "\n" for d in chosen_docs)
    return out
