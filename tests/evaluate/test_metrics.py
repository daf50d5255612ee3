"""Metrics against hand-computed values (trec_eval semantics), run/qrels files, paired comparison."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from hardneg.errors import ConfigError, InputError
from hardneg.evaluate.compare import compare_runs
from hardneg.evaluate.metrics import evaluate_run, read_qrels, read_run, trec_order, write_run


def log2(x: float) -> float:
    return math.log(x, 2)


def test_ndcg_linear_gain_and_ties_by_docid_descending() -> None:
    # a, b, d tie at 1.0: trec_eval orders ties by docid descending -> d, b, a, then c.
    qrels = {"q1": {"a": 1, "b": 0, "c": 2}}
    run = {"q1": {"a": 1.0, "b": 1.0, "d": 1.0, "c": 0.5}}
    assert [d for d, _ in trec_order(run["q1"])] == ["d", "b", "a", "c"]
    dcg = 1 / log2(4) + 2 / log2(5)  # a at rank 3 (gain 1), c at rank 4 (gain 2): linear gain
    idcg = 2 / log2(2) + 1 / log2(3)
    out = evaluate_run(qrels, run, metrics=["ndcg@10", "mrr@10", "mrr@2", "recall@100", "recall@2"])
    assert out["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-6)
    assert out["mrr@10"] == pytest.approx(1 / 3)
    assert out["mrr@2"] == 0.0  # the top 2 (d, b) hold no relevant document
    assert out["recall@100"] == 1.0
    assert out["recall@2"] == 0.0
    assert out["queries"] == 1


def test_graded_labels_use_linear_not_exponential_gain() -> None:
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"b": 2.0, "a": 1.0}}
    linear = (1 + 2 / log2(3)) / (2 + 1 / log2(3))
    exponential = (1 + 3 / log2(3)) / (3 + 1 / log2(3))
    value = evaluate_run(qrels, run, metrics=["ndcg@10"])["ndcg@10"]
    assert value == pytest.approx(linear, abs=1e-6)
    assert value != pytest.approx(exponential, abs=1e-3)


def test_tie_break_decides_mrr() -> None:
    run = {"q": {"x": 1.0, "y": 1.0}}
    assert evaluate_run({"q": {"x": 1}}, run, metrics=["mrr@10"])["mrr@10"] == 0.5
    assert evaluate_run({"q": {"y": 1}}, run, metrics=["mrr@10"])["mrr@10"] == 1.0


def test_identical_ids_ignored_by_default() -> None:
    qrels = {"q1": {"d1": 1}}
    run = {"q1": {"q1": 5.0, "d1": 1.0}}
    assert evaluate_run(qrels, run, metrics=["mrr@10"])["mrr@10"] == 1.0
    assert evaluate_run(qrels, run, metrics=["mrr@10"], ignore_identical_ids=False)["mrr@10"] == 0.5


def test_missing_query_scores_zero_and_unjudged_query_is_skipped() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 0}}
    run = {"q1": {"d1": 1.0}, "q3": {"d3": 1.0}}
    out = evaluate_run(qrels, run, metrics=["ndcg@10", "recall@100"])
    assert out["queries"] == 2  # q3 has no relevant document
    assert out["ndcg@10"] == 0.5
    assert out["per_query"]["q2"] == {"ndcg@10": 0.0, "recall@100": 0.0}


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, metrics=["ndcg"])
    with pytest.raises(ConfigError):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, metrics=["bleu@4"])


def test_run_file_round_trip(tmp_path: Path) -> None:
    run = {"q1": {"d1": 0.5, "d2": 1.25, "d3": 1.25}, "q2": {"d9": -3.0}}
    path = tmp_path / "runs" / "a.run"
    write_run(path, run, tag="sys")
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["q1", "Q0", "d3", "1", "1.25", "sys"]  # tie: docid descending
    assert lines[1].split()[2] == "d2"
    assert read_run(path) == run
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.run"]  # no temp file left behind


def test_bad_run_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.run"
    path.write_text("q1 Q0 d1 1 0.5 x\nq1 Q0 d2 2 high x\n")
    with pytest.raises(InputError) as info:
        read_run(path)
    assert info.value.problem.line == 2 and info.value.problem.field == "score"
    path.write_text("q1 Q0 d1 1 0.5\n")
    with pytest.raises(InputError) as info:
        read_run(path)
    assert info.value.problem.line == 1


def test_qrels_beir_and_trec_formats(tmp_path: Path) -> None:
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 1\nq1 0 d2 0\n")
    assert read_qrels(beir) == read_qrels(trec) == {"q1": {"d1": 1, "d2": 0}}
    trec.write_text("q1 0 d1\n")  # three columns are read as BEIR: 'd1' is not a label
    with pytest.raises(InputError):
        read_qrels(trec)


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
