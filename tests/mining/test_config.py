"""MineConfig: checked when made (pydantic), naming the field; the rank range."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hardneg.errors import ConfigError
from hardneg.mining import MineConfig, mine_config, parse_range


def test_parse_range() -> None:
    assert parse_range("10-100") == (10, 100)
    assert parse_range(" 0 - 5 ") == (0, 5)
    for bad in ("10", "100-10", "a-b", "5-5"):
        with pytest.raises(ConfigError):
            parse_range(bad)


def test_mine_config_is_checked_when_made_naming_the_field() -> None:
    for options, param in (
        ({"method": "splade"}, "method"),
        ({"negatives": 0}, "negatives"),
        ({"range_start": 10, "range_end": 10}, "range_end"),  # a rule across two fields names the one to change
        ({"negatives": 5, "min_negatives": 6}, "min_negatives"),
        ({"relative_margin": 1.0}, "relative_margin"),
        ({"min_positive_score": 0}, "min_positive_score"),
        ({"method": "bm25", "index": "hnsw"}, "index"),
        ({"batch_size": 0}, "batch_size"),
        ({"negativs": 3}, "negativs"),  # an unknown field is refused, not ignored
    ):
        with pytest.raises(ConfigError) as info:
            MineConfig(**options)  # type: ignore[arg-type]
        assert info.value.param == param, options
    with pytest.raises(ConfigError, match="unknown sampling 'all'; expected one of top, random"):
        MineConfig(sampling="all")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="a zero label means judged non-relevant"):
        MineConfig(min_positive_score=0)


def test_mine_config_stays_a_dataclass_and_check_sees_changes_made_in_place() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(MineConfig)}
    assert (defaults["negatives"], defaults["range_end"], defaults["relative_margin"]) == (30, 100, None)
    config = mine_config(negatives=5, min_negatives=2)
    assert dataclasses.asdict(config)["negatives"] == 5
    with pytest.raises(ConfigError) as info:
        mine_config(config, negatives=1)  # min_negatives 2 > negatives 1
    assert info.value.param == "min_negatives"
    with pytest.raises(ConfigError) as info:
        mine_config(negativs=1)
    assert info.value.param == "negativs" and "known:" in info.value.detail
    config.negatives = 0
    with pytest.raises(ConfigError) as info:
        config.check()
    assert info.value.param == "negatives"
    assert MineConfig(cache_dir=Path("cache")).cache_dir == "cache"  # a Path is taken as its text
