"""MineConfig helpers: the rank range."""

from __future__ import annotations

import pytest

from hardneg.errors import ConfigError
from hardneg.mining import parse_range


def test_parse_range() -> None:
    assert parse_range("10-100") == (10, 100)
    assert parse_range(" 0 - 5 ") == (0, 5)
    for bad in ("10", "100-10", "a-b", "5-5"):
        with pytest.raises(ConfigError):
            parse_range(bad)
