"""What models cost per token: a dated price table, and the USD of real usage.

Prices change: the shipped table (`DEFAULT_PRICES`, dated in `PRICES_DATE`) is a starting point. Pass your own
table (a JSON or YAML file: `{model: {input: USD per 1M tokens, output: ..., batch_discount: 0.5}}`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError
from hardneg.judging.cost.files import read_text

PRICES_DATE = "2025-06"
PRICES_NOTE = (
    f"OpenAI list prices in USD per 1M tokens as noted in {PRICES_DATE}; prices change: "
    "check https://openai.com/api/pricing and pass your own table with --prices."
)
# USD per 1M tokens. Batch API: 50% off both input and output.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60, "batch_discount": 0.5},
    "gpt-4o": {"input": 2.50, "output": 10.00, "batch_discount": 0.5},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60, "batch_discount": 0.5},
    "gpt-4.1": {"input": 2.00, "output": 8.00, "batch_discount": 0.5},
}


@dataclass(frozen=True, slots=True)
class Price:
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens
    batch_discount: float = 0.5  # fraction taken off with the Batch API

    def cost(self, tokens_in: int, tokens_out: int, *, batch: bool = False) -> float:
        usd = (tokens_in * self.input + tokens_out * self.output) / 1e6
        return usd * (1.0 - self.batch_discount) if batch else usd


class PriceTable:
    """Model name -> price. A dated snapshot (`date`); names match exactly, then by the longest prefix
    (so 'gpt-4o-mini-2024-07-18' uses 'gpt-4o-mini')."""

    def __init__(self, prices: Mapping[str, Mapping[str, float]], *, date: str = "", source: str = "") -> None:
        self.prices: dict[str, Price] = {}
        for model, row in prices.items():
            try:
                self.prices[str(model)] = Price(
                    input=float(row["input"]),
                    output=float(row["output"]),
                    batch_discount=float(row.get("batch_discount", 0.5)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"price table {source or '(given)'}: model {model!r} needs numeric 'input' and 'output' "
                    f"(USD per 1M tokens): {exc}"
                ) from None
        self.date = date
        self.source = source

    @classmethod
    def default(cls) -> PriceTable:
        return cls(DEFAULT_PRICES, date=PRICES_DATE, source="built-in")

    @classmethod
    def load(cls, path: str | Path, *, merge_default: bool = True) -> PriceTable:
        """A JSON or YAML file `{model: {input, output, batch_discount}}`, optionally with a top-level `date`
        and the models under `prices`. Models not in the file keep their default price unless merge_default
        is False."""
        path = Path(path)
        text = read_text(path, "price table")
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # json.JSONDecodeError / yaml.YAMLError
            raise ConfigError(f"price table {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"price table {path}: expected a mapping of model -> prices")
        date = str(data.pop("date", "")) if "date" in data else ""
        rows = data.get("prices", data)
        if not isinstance(rows, dict):
            raise ConfigError(f"price table {path}: 'prices' must be a mapping of model -> prices")
        merged: dict[str, Mapping[str, float]] = dict(DEFAULT_PRICES) if merge_default else {}
        merged.update(rows)
        return cls(merged, date=date or (PRICES_DATE if merge_default else ""), source=str(path))

    def get(self, model: str) -> Price:
        if model in self.prices:
            return self.prices[model]
        matches = [name for name in self.prices if model.startswith(name)]
        if not matches:
            known = ", ".join(sorted(self.prices))
            raise ConfigError(f"no price for model {model!r} (known: {known}); add it to a --prices file")
        return self.prices[max(matches, key=len)]

    def has(self, model: str) -> bool:
        return model in self.prices or any(model.startswith(name) for name in self.prices)


def cost_of(
    usage: Mapping[str, int] | tuple[int, int] | Any,
    model: str,
    price_table: PriceTable | None = None,
    *,
    batch: bool = False,
) -> float:
    """USD for real usage: a `(prompt, completion)` pair, a mapping with `prompt_tokens` /
    `completion_tokens` (or `tokens_in` / `tokens_out`), or a JudgeOutput."""
    if isinstance(usage, tuple):
        tokens_in, tokens_out = usage
    elif isinstance(usage, Mapping):
        tokens_in = int(usage.get("prompt_tokens", usage.get("tokens_in", 0)))
        tokens_out = int(usage.get("completion_tokens", usage.get("tokens_out", 0)))
    else:
        tokens_in, tokens_out = int(usage.tokens_in), int(usage.tokens_out)
    return (price_table or PriceTable.default()).get(model).cost(tokens_in, tokens_out, batch=batch)
