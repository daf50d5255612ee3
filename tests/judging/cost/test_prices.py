"""Prices: the built-in table, a table of your own, and the USD of real usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.errors import ConfigError
from hardneg.judging.cost.prices import PriceTable, cost_of


def test_prices(tmp_path: Path) -> None:
    table = PriceTable.default()
    assert cost_of((1_000_000, 1_000_000), "gpt-4o-mini-2024-07-18", table) == pytest.approx(0.75)
    assert cost_of({"prompt_tokens": 1_000_000, "completion_tokens": 0}, "gpt-4o", table, batch=True) == 1.25
    custom = tmp_path / "prices.yaml"
    custom.write_text("date: 2030-01\nmy-model: {input: 1.0, output: 2.0, batch_discount: 0.5}\n")
    loaded = PriceTable.load(custom)
    assert loaded.get("my-model").output == 2.0 and loaded.has("gpt-4o") and loaded.date == "2030-01"
    with pytest.raises(ConfigError, match="no price for model"):
        loaded.get("unknown-model")
    (tmp_path / "bad.json").write_text('{"m": {"input": "x"}}')
    with pytest.raises(ConfigError, match="numeric"):
        PriceTable.load(tmp_path / "bad.json")


def test_a_price_file_that_cannot_be_read_is_named_as_a_price_table(tmp_path: Path) -> None:
    latin = tmp_path / "prices.yaml"
    latin.write_bytes(b"caf\xe9: {input: 1, output: 1}\n")
    with pytest.raises(ConfigError) as error:
        PriceTable.load(latin)
    assert str(error.value) == f"price table {latin}: not UTF-8 text (byte 0xe9)"
