"""Rank fusion: per-instance normalised ranks and their (weighted) average."""

from __future__ import annotations

import pytest

from hardneg.errors import ConfigError
from hardneg.retrieval.fusion import minmax, normalized_ranks, rank_average


def test_normalized_ranks_span_zero_to_one_and_average_ties() -> None:
    ranks = normalized_ranks({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.5, "e": 0.0})
    assert ranks["b"] == 1.0
    assert ranks["e"] == 0.0
    # c and d share ranks 3 and 4 of 5: mean rank 3.5 -> (3.5 - 1) / 4
    assert ranks["c"] == ranks["d"] == pytest.approx(0.625)
    assert ranks["a"] == pytest.approx(0.25)


def test_normalized_ranks_edge_cases() -> None:
    assert normalized_ranks({}) == {}
    assert normalized_ranks({"only": 3.0}) == {"only": 0.5}
    assert normalized_ranks({"x": 1.0, "y": 1.0}) == {"x": 0.5, "y": 0.5}


def test_minmax() -> None:
    assert minmax({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert minmax({"a": 1.0, "b": 1.0}) == {"a": 0.5, "b": 0.5}


def test_rank_average_is_scale_free_and_combines_orders() -> None:
    cosines = {"a": 0.91, "b": 0.20, "c": 0.55}
    probabilities = {"a": 0.40, "b": 0.01, "c": 0.99}
    fused = rank_average([cosines, probabilities])
    assert fused == {"a": pytest.approx(0.75), "b": 0.0, "c": pytest.approx(0.75)}
    # A monotone rescaling of one judge changes nothing.
    rescaled = {d: 100 * v - 7 for d, v in cosines.items()}
    assert rank_average([rescaled, probabilities]) == fused
    assert all(0.0 <= v <= 1.0 for v in fused.values())


def test_rank_average_weights() -> None:
    first = {"a": 1.0, "b": 0.0}
    second = {"a": 0.0, "b": 1.0}
    fused = rank_average([first, second], weights=[3.0, 1.0])
    assert fused == {"a": 0.75, "b": 0.25}
    with pytest.raises(ConfigError):
        rank_average([first, second], weights=[1.0])
    with pytest.raises(ConfigError):
        rank_average([first, second], weights=[0.0, 0.0])


def test_rank_average_missing_docids_are_handled_explicitly() -> None:
    stage1 = {"a": 0.9, "b": 0.5, "c": 0.1}
    stage2 = {"a": 0.2, "b": 0.8}  # stage 2 never saw c
    skip = rank_average([stage1, stage2], missing="skip")
    assert skip["c"] == 0.0  # only stage 1's rank
    assert skip["a"] == pytest.approx(0.5) and skip["b"] == pytest.approx(0.75)
    low = rank_average([stage1, stage2], missing="min")
    assert low["c"] == 0.0 and low["a"] == skip["a"]
    stage1_only_top = {"z": 1.0, "a": 0.0}
    assert rank_average([stage1_only_top, stage2], missing="min")["z"] == pytest.approx(0.5)
    assert rank_average([stage1_only_top, stage2], missing="skip")["z"] == 1.0
    with pytest.raises(ValueError, match="missing"):
        rank_average([stage1, stage2], missing="error")


def test_rank_average_empty_inputs() -> None:
    assert rank_average([]) == {}
    assert rank_average([{}, {}]) == {}
