"""`hardneg estimate`: tokens and cost of a judging cascade before any call is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hardneg.cli.common import app, console, handle_errors, print_json, print_table, progress
from hardneg.judging.cascade import load_cascade
from hardneg.judging.cost.estimation import estimate as run_estimate
from hardneg.judging.cost.prices import PriceTable
from hardneg.judging.cost.stages import stage_specs_from_config


def print_estimate(result: Any, file: Path, routing_rate: float) -> None:
    """The estimate as a table, one row per stage (for `estimate` and `judge --estimate`)."""
    grid = Table(title=f"{file}: {result.instances} instances (tokens: {result.tokenizer}); nothing was called")
    for column in ("stage", "model", "template", "instances", "calls", "prompt tok", "output tok", "USD", "USD max"):
        grid.add_column(column, justify="left" if column in ("stage", "model", "template") else "right")
    for s in result.stages:
        grid.add_row(
            s.name + (" (batch)" if s.batch else ""),
            s.model,
            s.template,
            f"{s.instances:,.0f}",
            f"{s.calls:,.0f}",
            f"{s.prompt_tokens:,.0f}",
            f"{s.output_tokens:,.0f}",
            f"{s.cost_usd:,.2f}",
            f"{s.cost_upper_usd:,.2f}",
        )
    grid.add_row("total", "", "", "", "", "", "", f"{result.cost_usd:,.2f}", f"{result.cost_upper_usd:,.2f}")
    print_table(grid)
    console.print(
        f"Stage k>1 sees {routing_rate:g} of the stage before (`hardneg estimate --routing-rate`); output tokens are "
        "assumed per template (USD max: every call writes max_tokens); local judges cost 0 here; judgments already "
        f"in a store are not subtracted. Prices: {result.prices_source}, {result.prices_date}. " + result.note,
        markup=False,
        highlight=False,
    )


@app.command()
@handle_errors
def estimate(
    file: Path = typer.Argument(..., help="Training file to judge (.jsonl, .jsonl.gz, .parquet, datasets folder)."),
    config: Path = typer.Option(
        ..., "--config", help="Cascade YAML or a shipped config's name (the one `hardneg judge` will run)."
    ),
    prices: Path | None = typer.Option(None, "--prices", help="Price table (JSON/YAML: model -> input/output USD/1M)."),
    routing_rate: float = typer.Option(
        0.7, "--routing-rate", min=0.0, max=1.0, help="Share passed to each next stage."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N instances."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Estimate prompt/output tokens and USD per stage, rendering the real templates. Nothing is called."""

    cascade = load_cascade(config)  # the same validation as `hardneg judge`
    specs = stage_specs_from_config(cascade.model_dump())
    table = PriceTable.load(prices) if prices else PriceTable.default()
    with progress() as bar:
        task = bar.add_task("rendering prompts", total=limit)
        result = run_estimate(
            file,
            specs,
            price_table=table,
            routing_rate=routing_rate,
            limit=limit,
            progress=lambda n: bar.update(task, completed=n),
        )
    if as_json:
        print_json(result.to_dict())
        return
    print_estimate(result, file, routing_rate)
