"""Metrics against hand-computed values (trec_eval semantics), run/qrels files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hardneg.errors import ConfigError, InputError
from hardneg.evaluation.metrics import evaluate_run, query_overlap, read_qrels, read_run, trec_order, write_run


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


def test_means_cover_the_judged_queries_the_run_answers() -> None:
    # BEIR's rule: q2 (judged, not in the run) is counted but not scored; q3 has no relevant document and q4 no
    # qrels at all, so neither is scored; q5 is answered with nothing but its own id, removed: it scores 0.
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 0}, "q5": {"d5": 1}}
    run = {"q1": {"d1": 1.0}, "q3": {"d3": 1.0}, "q4": {"d4": 1.0}, "q5": {"q5": 2.0}}
    out = evaluate_run(qrels, run, metrics=["ndcg@10", "recall@100"])
    assert out["queries"] == 2
    assert sorted(out["per_query"]) == ["q1", "q5"]
    assert out["ndcg@10"] == 0.5 and out["per_query"]["q5"] == {"ndcg@10": 0.0, "recall@100": 0.0}
    assert out["overlap"].to_dict() == {"qrels": 3, "run": 4, "shared": 2, "run_only": 2, "qrels_only": 1}


def test_query_overlap_counts_both_sides() -> None:
    overlap = query_overlap({"a": {"x": 1}, "b": {"y": 2}, "c": {"z": 0}}, ["b", "c", "d"])
    assert (overlap.qrels, overlap.run, overlap.shared, overlap.run_only, overlap.qrels_only) == (2, 3, 1, 2, 1)
    assert overlap.qrels_only_example == "a" and overlap.run_only_example == "c"


def test_disjoint_run_and_qrels_is_an_error_naming_both() -> None:
    qrels = {"train1": {"d1": 1}, "train2": {"d2": 1}}
    run = {"test1": {"d1": 1.0}}
    with pytest.raises(ConfigError) as info:
        evaluate_run(qrels, run, qrels_name="qrels/train.tsv", run_name="runs/a.trec")
    message = str(info.value)
    assert "qrels/train.tsv" in message and "runs/a.trec" in message and "'test1'" in message
    assert info.value.param == "qrels"
    with pytest.raises(ConfigError, match="no query with a relevant document"):
        evaluate_run({"q": {"d": 0}}, {"q": {"d": 1.0}})


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
