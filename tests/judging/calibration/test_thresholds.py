"""Calibration: thresholds tuned on half the queries, metrics measured on the other half."""

from __future__ import annotations

import random

import pytest

from hardneg.errors import ConfigError
from hardneg.judging.calibration import calibrate, routing_threshold, split_queries


def _synthetic(n_queries: int = 40, per_query: int = 12, seed: int = 1) -> tuple[dict, dict]:
    """Scores in [0, 1); label 2 at >= 0.8, 1 in [0.6, 0.8), else 0: the right thresholds are known."""
    rng = random.Random(seed)
    scores, labels = {}, {}
    for q in range(n_queries):
        for d in range(per_query):
            s = rng.random()
            scores[(f"q{q}", f"d{d}")] = s
            labels[(f"q{q}", f"d{d}")] = 2 if s >= 0.8 else 1 if s >= 0.6 else 0
    return scores, labels


def test_split_is_by_query_seeded_and_disjoint() -> None:
    ids = [f"q{i}" for i in range(11)]
    tune, held = split_queries(ids, 0.5, seed=3)
    assert tune.isdisjoint(held) and tune | held == set(ids)
    assert len(held) in (5, 6)
    assert split_queries(reversed(ids), 0.5, seed=3) == (tune, held)  # order of input does not matter
    assert split_queries(ids, 0.5, seed=4) != (tune, held)
    with pytest.raises(ConfigError):
        split_queries(["only"], 0.5)
    with pytest.raises(ConfigError):
        split_queries(ids, 1.0)


def test_calibrate_recovers_known_thresholds() -> None:
    scores, labels = _synthetic()
    result = calibrate(scores, labels, seed=0)
    # The tuned cut is the lowest relevant score of the tuning half: just at or above 0.6 (resp. 0.8).
    assert 0.6 <= result.t_worse < 0.65
    assert 0.8 <= result.t_better < 0.85
    assert result.t_better >= result.t_worse
    assert result.auc == 1.0
    assert result.kappa > 0.95 and result.precision == 1.0 and result.recall > 0.95
    assert result.n_pairs == len(labels)
    held = result.held_out_metrics
    assert held["n_queries_tune"] + held["n_queries_held_out"] == 40
    assert held["better"]["auc"] == 1.0 and held["better"]["kappa"] > 0.9
    better = calibrate(scores, labels, target="better")
    assert better.kappa == held["better"]["kappa"] and better.target == "better"


def test_calibrate_with_noise_measures_on_held_out_half() -> None:
    scores, labels = _synthetic()
    rng = random.Random(7)
    noisy = {p: s + rng.gauss(0, 0.15) for p, s in scores.items()}
    result = calibrate(noisy, labels, objective="f1")
    assert 0.45 < result.t_worse < 0.75
    assert 0.8 < result.auc < 1.0
    assert 0.0 < result.kappa < 0.95
    assert result.held_out_metrics["tune_relevant"]["n_pairs"] + result.held_out_metrics["relevant"]["n_pairs"] == (
        len(labels)
    )
    strict = calibrate(noisy, labels, objective="recall@precision", min_precision=0.9)
    assert strict.held_out_metrics["tune_relevant"]["precision"] >= 0.9
    stricter = calibrate(noisy, labels, objective="recall@precision", min_precision=0.99)
    assert stricter.t_worse >= strict.t_worse
    assert stricter.held_out_metrics["tune_relevant"]["recall"] <= strict.held_out_metrics["tune_relevant"]["recall"]


def test_binary_labels_give_one_threshold() -> None:
    scores, labels = _synthetic()
    binary = {p: min(v, 1) for p, v in labels.items()}
    result = calibrate(scores, binary)
    assert result.t_better == result.t_worse
    assert "better" not in result.held_out_metrics
    with pytest.raises(ConfigError, match="graded"):
        calibrate(scores, binary, target="better")


def test_calibrate_rejects_bad_input() -> None:
    scores, labels = _synthetic(n_queries=4)
    with pytest.raises(ConfigError, match="labels must be"):
        calibrate(scores, {**labels, ("q0", "d0"): 5})
    with pytest.raises(ConfigError, match="no scored pair"):
        calibrate({("x", "y"): 0.5}, labels)
    with pytest.raises(ConfigError, match="one class"):
        calibrate(scores, dict.fromkeys(labels, 0))


def test_routing_threshold_keeps_the_asked_recall() -> None:
    scores, labels = _synthetic()
    full = routing_threshold(scores, labels, recall=1.0)
    assert 0.6 <= full.threshold < 0.65 and full.recall_tune == 1.0
    assert full.recall_held_out > 0.95
    assert 0.3 < full.routed_share_held_out < 0.5  # about the 40% of scores >= 0.6
    half = routing_threshold(scores, labels, recall=0.5)
    assert half.threshold > full.threshold and 0.5 <= half.recall_tune < 0.6
