"""The CLI reference, generated from the Typer app: every verb's help, arguments and options as markdown.

Used two ways: as an MkDocs hook (`hooks:` in mkdocs.yml), which adds the page `cli.md` to the site at build
time, so the page is never hand-copied and never stale; and as a script, `python scripts/cli_reference.py
[OUT.md]`, which prints (or writes) the same markdown.
"""

from __future__ import annotations

import sys
from typing import Any

PAGE = "cli.md"


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")  # Typer ships its own click: no isinstance on click's classes


def _arg_name(param: Any) -> str:
    return str(getattr(param, "metavar", None) or param.name).upper()


def _type_name(param: Any) -> str:
    """The option's value type, from click's `type` or (Typer's own click) the annotation Typer read."""
    if getattr(param, "type", None) is not None:
        return str(param.type.name)
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        return "text"
    if getattr(annotation, "__module__", "") == "builtins" or isinstance(annotation, type):
        return str(annotation.__name__)
    text = str(annotation)
    for prefix in ("typing.", "pathlib.", "collections.abc."):
        text = text.replace(prefix, "")
    return text


def _option_row(param: Any) -> str:
    names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    if getattr(param, "is_flag", False) and not param.secondary_opts:
        kind = "flag"
    else:
        kind = _type_name(param) if not param.multiple else f"{_type_name(param)}, repeatable"
    default = param.default
    if callable(default) or default is None or default == () or (getattr(param, "is_flag", False) and default is False):
        shown = ""
    else:
        shown = f"`{default}`"
    help_text = " ".join((getattr(param, "help", None) or "").split()).replace("|", "\\|")
    return f"| {names} | {kind} | {shown} | {help_text} |"


def _command(lines: list[str], command: Any, path: list[str]) -> None:
    title = " ".join(path)
    lines.append(f"{'#' * min(len(path) + 1, 4)} `{title}`\n")
    help_text = (command.help or command.short_help or "").strip()
    if help_text:
        lines.append(help_text.replace("\b\n", "") + "\n")
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    usage = " ".join([title, "[OPTIONS]", *(_arg_name(p) for p in arguments)])
    if _is_group(command):
        usage += " COMMAND"
    lines.append(f"```text\n{usage}\n```\n")
    if arguments:
        lines.append("| argument | required |\n|---|---|")
        lines.extend(f"| `{_arg_name(p)}` | {'yes' if p.required else 'no'} |" for p in arguments)
        lines.append("")
    if options:
        lines.append("| option | type | default | help |\n|---|---|---|---|")
        lines.extend(_option_row(p) for p in options)
        lines.append("")
    if _is_group(command):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not sub.hidden:
                _command(lines, sub, [*path, name])


def render() -> str:
    """The whole reference, one section per verb (sub-commands nested), from `hardneg.cli.app`."""
    import typer

    from hardneg.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# CLI reference\n",
        "Generated from the Typer app (`hardneg.cli.app`) by `scripts/cli_reference.py` each time the site is built:",
        "what `hardneg VERB --help` says, as tables. The guides on the other pages show the verbs in use.\n",
    ]
    _command(lines, root, ["hardneg"])
    return "\n".join(lines).rstrip("\n") + "\n"


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated page to the site (nothing is written into docs/)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files


if __name__ == "__main__":
    text = render()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
