"""`hardneg configs`: the cascade configs shipped with hardneg, by name (`--config NAME` on judge, clean, ...)."""

from __future__ import annotations

import sys

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import app, console, handle_errors, print_json
from hardneg.errors import ConfigError
from hardneg.judging.cascade import config_description, shipped_configs

configs_app = typer.Typer(
    help="The cascade configs shipped with hardneg: list them, or print one (`hardneg configs show NAME`).",
    invoke_without_command=True,
)
app.add_typer(configs_app, name="configs")


@configs_app.callback()
@handle_errors
def configs(
    ctx: typer.Context,
    as_json: bool = opt.as_json("Print the list as one JSON object."),
) -> None:
    """List the shipped cascade configs: a name works wherever --config takes a YAML file."""
    if ctx.invoked_subcommand is not None:
        return
    rows = [
        {"name": name, "kind": "cascade", "description": config_description(path), "path": str(path)}
        for name, path in shipped_configs().items()
    ]
    if as_json:
        print_json({"configs": rows})
        return
    for row in rows:
        console.print(f"{row['name']}: {row['description']}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        "use: --config NAME (judge, clean, judge-eval, estimate); print one: hardneg configs show NAME > my.yaml",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@configs_app.command("show")
@handle_errors
def show(name: str = typer.Argument(..., help="A shipped config's name (see `hardneg configs`).")) -> None:
    """Print a shipped config's YAML as it is (save it with `> my.yaml`, edit it, pass it with --config)."""
    shipped = shipped_configs()
    key = name if name in shipped else name.removeprefix("judge-")
    if key not in shipped:
        raise ConfigError(f"{name}: not a shipped config (known: {', '.join(shipped)})", param="name")
    sys.stdout.write(shipped[key].read_text(encoding="utf-8"))
