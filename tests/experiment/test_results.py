"""Result tables from per-query scores: means over seeds, deltas, paired significance, files and plots."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

from hardneg.experiment.evaluation import paired_significance
from hardneg.experiment.prune import pruning_markdown, pruning_table
from hardneg.experiment.results import VariantScores, build_results, results_csv, results_markdown, write_results


def per_query(seed: int, shift: float, n: int = 60) -> dict[str, float]:
    rng = random.Random(seed)
    return {f"q{i}": min(1.0, max(0.0, rng.random() * 0.8 + shift)) for i in range(n)}


def variant(name: str, shift: float, seeds: list[int]) -> VariantScores:
    scores = VariantScores(name=name, treatment=name.split("-")[0], verdicts=None, train={"instances": 10})
    for test in ("a", "b"):
        for seed in seeds:
            pq = per_query(seed * 7 + (test == "b"), shift)
            scores.per_query.setdefault(test, {})[seed] = pq
            scores.metric.setdefault(test, {})[seed] = sum(pq.values()) / len(pq)
    return scores


def test_build_results_deltas_and_significance(tmp_path: Path) -> None:
    seeds = [0, 1]
    variants = [variant("default", 0.0, seeds), variant("rlhn-cascade", 0.15, seeds), variant("remove-x", 0.0, seeds)]
    results = build_results(
        name="t",
        metric="ndcg@10",
        alpha=0.05,
        seeds=seeds,
        test_sets=["a", "b"],
        variants=variants,
        significance=paired_significance,
    )
    by_name = {v["name"]: v for v in results["variants"]}
    base, better, same = by_name["default"], by_name["rlhn-cascade"], by_name["remove-x"]
    expected_a = (variants[0].metric["a"][0] + variants[0].metric["a"][1]) / 2
    assert abs(base["scores"]["a"]["mean"] - expected_a) < 1e-12
    assert base["scores"]["a"]["std"] > 0
    assert abs(better["delta"]["average"] - (better["average"]["mean"] - base["average"]["mean"])) < 1e-12
    assert better["delta"]["a"] > 0.1
    # A clear shift on every query is significant; identical scores are not.
    assert better["significance"]["a"]["significant"] is True
    assert better["significance"]["a"]["n_queries"] == 60
    assert same["significance"]["a"]["significant"] is False
    assert base["significance"] == {}

    md = results_markdown(results)
    assert "| rlhn-cascade |" in md and "*" in md and "±" in md
    rows = list(csv.DictReader(io.StringIO(results_csv(results))))
    assert {r["seed"] for r in rows} == {"0", "1", "mean"}
    assert len(rows) == 3 * 3 * 3  # variants x (a, b, average) x (seed 0, seed 1, mean)

    paths = write_results(results, tmp_path)
    assert json.loads(paths["json"].read_text())["schema"] == "hardneg-experiment/1"
    assert (tmp_path / "plots" / "scores.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plots" / "delta.png").is_file()


def test_pruning_table_suggests_drop_only_when_average_rises() -> None:
    seeds = [0]
    variants = [
        variant("prune-all", 0.1, seeds),
        variant("prune-without-x", 0.2, seeds),  # leaving x out helps everywhere: drop x
        variant("prune-without-y", 0.0, seeds),  # leaving y out hurts: keep y
    ]
    results = build_results(
        name="p",
        metric="ndcg@10",
        alpha=0.05,
        seeds=seeds,
        test_sets=["a", "b"],
        variants=variants,
        significance=paired_significance,
        baseline="prune-all",
    )
    table = pruning_table(results, ["x", "y"], 0.005)
    assert table["suggested_drop"] == ["x"]
    assert table["suggested_keep"] == ["y"]
    row_x = table["rows"][0]
    assert row_x["improved"] == ["a", "b"] and row_x["reduced"] == []
    assert table["rows"][1]["reduced"] == ["a", "b"]
    md = pruning_markdown(table)
    assert "| without x |" in md and "drop" in md


def test_results_json_is_readable_by_the_report(tmp_path: Path) -> None:
    from hardneg.analysis.report import read_results

    results = build_results(
        name="t",
        metric="ndcg@10",
        alpha=0.05,
        seeds=[0],
        test_sets=["a", "b"],
        variants=[variant("default", 0.0, [0]), variant("rlhn-cascade", 0.1, [0])],
        significance=paired_significance,
    )
    write_results(results, tmp_path, plots=False)
    runs = read_results(tmp_path)
    assert set(runs) == {"default", "rlhn-cascade"}
    assert runs["rlhn-cascade"]["average/ndcg@10"] == pytest.approx(results["variants"][1]["average"]["mean"])
