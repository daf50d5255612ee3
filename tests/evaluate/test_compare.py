"""Paired comparison of runs: the known winner, seeded and sign-symmetric tests."""

from __future__ import annotations

import random

import pytest

from hardneg.errors import ConfigError
from hardneg.evaluate.compare import compare_runs


def _synthetic(n: int, seed: int) -> tuple[dict, dict, dict]:
    rng = random.Random(seed)
    qrels = {f"q{i}": {f"rel{i}": 1} for i in range(n)}
    good, bad = {}, {}
    for i in range(n):
        # The good system usually puts the relevant document first, the bad one usually third.
        good_rank = 1 if rng.random() < 0.8 else 4
        bad_rank = 3 if rng.random() < 0.8 else 1
        for name, rank, run in (("g", good_rank, good), ("b", bad_rank, bad)):
            docs = {f"{name}{i}x{j}": 10.0 - j for j in range(1, 10)}
            docs[f"rel{i}"] = 10.0 - rank + 0.5
            run[f"q{i}"] = docs
    return qrels, good, bad


def test_compare_finds_the_known_winner() -> None:
    qrels, good, bad = _synthetic(60, seed=1)
    result = compare_runs(qrels, {"bad": bad, "good": good}, metrics=["mrr@10", "recall@100"], iterations=2000)
    mrr, recall = result["comparisons"]
    assert result["baseline"] == "bad" and result["queries"] == 60
    assert mrr["metric"] == "mrr@10" and mrr["delta"] > 0.3
    assert mrr["wins"] > mrr["losses"]
    assert mrr["wins"] + mrr["losses"] + mrr["ties"] == 60
    assert mrr["t_pvalue"] < 0.001 and mrr["permutation_pvalue"] < 0.01
    # Both systems retrieve every relevant document: no difference at all in recall.
    assert recall["ties"] == 60 and recall["t_pvalue"] == 1.0 and recall["permutation_pvalue"] == 1.0


def test_compare_is_seeded_and_symmetric_in_sign() -> None:
    qrels, good, bad = _synthetic(40, seed=2)
    first = compare_runs(qrels, {"good": good, "bad": bad}, metrics=["mrr@10"], iterations=500, seed=7)
    again = compare_runs(qrels, {"good": good, "bad": bad}, metrics=["mrr@10"], iterations=500, seed=7)
    assert first == again
    assert first["comparisons"][0]["delta"] < 0 and first["comparisons"][0]["losses"] > first["comparisons"][0]["wins"]
    with pytest.raises(ConfigError):
        compare_runs(qrels, {"only": good})
