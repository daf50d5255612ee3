"""Calibration: thresholds tuned on half the queries, metrics measured on the other half."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hardneg.analysis.labels import (
    labels_from_qrels,
    labels_from_response_files,
    labels_from_store,
    labels_from_verdicts,
)
from hardneg.errors import ConfigError, InputError
from hardneg.judge.calibration import calibrate, fuse_scores, routing_threshold, split_queries


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


def test_labels_from_verdicts_and_fusion_of_pair_scores() -> None:
    labels = labels_from_verdicts([("q1", ["a", "b", "c"], ["b"], ["c"])]).graded
    assert labels == {("q1", "a"): 0, ("q1", "b"): 2, ("q1", "c"): 1}
    fused = fuse_scores([{("q1", "a"): 0.9, ("q1", "b"): 0.1}, {("q1", "a"): 0.2, ("q1", "b"): 0.7}])
    assert fused == {("q1", "a"): 0.5, ("q1", "b"): 0.5}


def test_labels_from_qrels(tmp_path: Path) -> None:
    from hardneg.data.records import Instance, Passage

    qrels = tmp_path / "beir" / "qrels" / "train.tsv"
    qrels.parent.mkdir(parents=True)
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tp\t1\nq1\tn2\t2\nq1\tn3\t0\n")
    inst = Instance("q1", "query", [Passage("p", "pos")], [Passage(d, d) for d in ("n1", "n2", "n3")])
    got = labels_from_qrels(str(qrels), instances=[inst]).graded
    assert got == {("q1", "n1"): 0, ("q1", "n2"): 1, ("q1", "n3"): 0}
    with pytest.raises(InputError):
        labels_from_qrels(str(tmp_path / "elsewhere.tsv"), instances=[inst])


@pytest.mark.shared
def test_labels_from_rlhn_responses(rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    first = labels_from_response_files([str(rlhn_stage1)])
    final = labels_from_response_files([str(rlhn_stage1), str(rlhn_stage2)])
    assert not first.skipped and not final.skipped
    assert len({q for q, _ in final.graded}) == 25 and len(final.graded) == 25 * 15
    # 17 stage-1 verdicts flag something; the 17 stage-2 rows replace them.
    flagged_1 = {q for (q, _), v in first.graded.items() if v > 0}
    assert len(flagged_1) == 17
    assert sum(src.endswith("gpt-4o.jsonl.gz") for src in final.sources.values()) == 17
    assert final.graded != first.graded


def test_cli_needs_exactly_one_label_source(tmp_path: Path, rlhn_stage1: Path) -> None:
    from typer.testing import CliRunner

    from hardneg.cli import app

    result = CliRunner().invoke(app, ["calibrate", str(rlhn_stage1), "--judge", "embedding"])
    assert result.exit_code == 2 and "exactly one label source" in result.output
    result = CliRunner().invoke(app, ["calibrate", str(rlhn_stage1), "--judge", "bm25", "--qrels", "x.tsv"])
    assert result.exit_code == 2 and "--judge bm25" in result.output


@pytest.mark.slow
@pytest.mark.shared
def test_cli_calibrates_the_embedding_judge_on_the_real_sample(
    tmp_path: Path, rlhn_stage1: Path, rlhn_stage2: Path
) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from hardneg.cli import app

    out = tmp_path / "thresholds.yaml"
    args = ["calibrate", str(rlhn_stage1), "--judge", "embedding", "--json", "-o", str(out)]
    args += ["--labels-from-responses", str(rlhn_stage1), "--labels-from-responses", str(rlhn_stage2)]
    result = CliRunner().invoke(app, ["--quiet", *args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    cal = report["calibration"]
    assert report["n_instances"] == 25 and cal["n_pairs"] == 375 and report["n_relevant"] == 23
    assert cal["t_better"] >= cal["t_worse"]
    # Held out on 12-13 queries with ~12 relevant pairs: the ranking is clearly better than chance.
    assert cal["auc"] > 0.6
    assert 0 < report["routing"]["recall_held_out"] <= 1
    saved = yaml.safe_load(out.read_text())
    assert saved["t_worse"] == cal["t_worse"] and saved["judges"][0]["model"] == "all-MiniLM-L6-v2"


@pytest.mark.shared
def test_labels_from_a_store_match_the_response_files(tmp_path: Path, rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    from hardneg.judge.importer import import_judgments
    from hardneg.judge.store import JudgmentStore

    db = tmp_path / "judgments.sqlite"
    with JudgmentStore(db) as store:
        import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
        import_judgments([rlhn_stage2], 2, "gpt-4o", store)
    final = labels_from_store(db)
    assert final.graded == labels_from_response_files([str(rlhn_stage1), str(rlhn_stage2)]).graded
    stage1 = labels_from_store(db, stage=1)
    assert stage1.graded == labels_from_response_files([str(rlhn_stage1)]).graded
    assert len(labels_from_store(db, stage=2).graded) == 17 * 15
