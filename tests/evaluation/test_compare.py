"""Paired comparison of runs: the known winner, seeded and sign-symmetric tests, the query overlap with the qrels
(library and CLI)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.sample import sample_beir_dir
from hardneg.errors import ConfigError
from hardneg.evaluation.compare import compare_runs
from hardneg.evaluation.metrics import write_run
from hardneg.evaluation.run import evaluate_bm25


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


def test_compare_pairs_on_the_queries_every_run_answers() -> None:
    qrels, good, bad = _synthetic(30, seed=3)
    partial = {q: docs for q, docs in good.items() if int(q[1:]) < 20}  # q20..q29 missing
    partial["extra"] = {"x": 1.0}  # a query the qrels do not judge
    result = compare_runs(qrels, {"bad": bad, "partial": partial}, metrics=["mrr@10"], iterations=200)
    assert result["queries"] == 20
    assert result["overlap"] == {
        "bad": {"qrels": 30, "run": 30, "shared": 30, "run_only": 0, "qrels_only": 0},
        "partial": {"qrels": 30, "run": 21, "shared": 20, "run_only": 1, "qrels_only": 10},
    }
    on_common = compare_runs(
        {q: r for q, r in qrels.items() if int(q[1:]) < 20}, {"bad": bad, "partial": partial}, metrics=["mrr@10"],
        iterations=200,
    )  # fmt: skip
    # The means are over the 20 shared queries: the same as comparing with qrels cut to them.
    assert result["systems"] == on_common["systems"]
    assert result["comparisons"] == on_common["comparisons"]


def test_compare_refuses_runs_that_share_no_query_with_the_qrels(tmp_path: Path) -> None:
    qrels, good, bad = _synthetic(10, seed=4)
    write_run(tmp_path / "good.trec", {f"test-{q}": docs for q, docs in good.items()})
    write_run(tmp_path / "bad.trec", bad)
    qrels_path = tmp_path / "train.tsv"
    qrels_path.write_text("".join(f"{q}\t{d}\t{r}\n" for q, docs in qrels.items() for d, r in docs.items()))
    with pytest.raises(ConfigError) as info:
        compare_runs(qrels_path, {"bad": tmp_path / "bad.trec", "good": tmp_path / "good.trec"})
    assert str(qrels_path) in str(info.value) and str(tmp_path / "good.trec") in str(info.value)


def _sample_runs(tmp_path: Path) -> tuple[Path, Path]:
    """BM25 runs of the shipped sample's test queries, the second with only some of them."""
    run = evaluate_bm25(sample_beir_dir(), "test").run
    full, part = tmp_path / "bm25.trec", tmp_path / "part.trec"
    write_run(full, run)
    write_run(part, {q: docs for q, docs in sorted(run.items())[:5]})
    return full, part


def test_cli_compare_with_qrels_of_another_split_exits_2_naming_both_files(tmp_path: Path) -> None:
    full, part = _sample_runs(tmp_path)
    train_qrels = sample_beir_dir() / "qrels" / "train.tsv"
    result = CliRunner().invoke(app, ["compare", str(train_qrels), str(full), str(part)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # the console may wrap the line
    assert str(train_qrels) in message and str(full) in message
    assert "same dataset and split" in message


def test_cli_compare_counts_a_partial_overlap_in_json(tmp_path: Path) -> None:
    full, part = _sample_runs(tmp_path)
    test_qrels = sample_beir_dir() / "qrels" / "test.tsv"
    judged = len({line.split("\t")[0] for line in test_qrels.read_text().splitlines()[1:] if line.strip()})
    result = CliRunner().invoke(app, ["compare", str(test_qrels), str(full), str(part), "--json", "--iterations", "50"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["queries"] == 5
    assert data["overlap"]["bm25.trec"] == {"qrels": judged, "run": judged, "shared": judged, "run_only": 0,
                                            "qrels_only": 0}  # fmt: skip
    assert data["overlap"]["part.trec"] == {"qrels": judged, "run": 5, "shared": 5, "run_only": 0,
                                            "qrels_only": judged - 5}  # fmt: skip
    text = CliRunner().invoke(app, ["compare", str(test_qrels), str(full), str(part), "--iterations", "50"])
    assert text.exit_code == 0
    flat = " ".join(text.stdout.split())
    assert f"part.trec: 5 of {judged} judged queries scored, {judged - 5} judged queries not in the run" in flat
    assert "compared on the 5 judged queries every run answers" in flat
