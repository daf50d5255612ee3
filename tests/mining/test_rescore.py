"""Mining with a cross-encoder (`rescore`) and the absolute score cuts (`min_score` / `max_score`).

Fast tests use a deterministic stand-in scorer (`support.cross_encoder.StubScorer`) on the shipped sample; the
slow ones a real cross-encoder trained on the sample in seconds, on the sample and on SciFact train.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import hardneg
from hardneg.cli import app
from hardneg.data.beir import BeirData, load_beir
from hardneg.data.records import passage_text
from hardneg.data.sample import sample_beir_dir
from hardneg.errors import ConfigError
from hardneg.mining import MineConfig, MineReport, mine_instances
from hardneg.retrieval import Retriever
from support.cross_encoder import StubScorer, sample_cross_encoder


@pytest.fixture(scope="module")
def sample() -> BeirData:
    return load_beir(sample_beir_dir(), "train")


def _mine(data: BeirData, scorer: object | None = None, **options: object) -> tuple[list, MineReport]:
    report = MineReport()
    config = MineConfig(**{"negatives": 50, "range_end": 40, "save_scores": True, **options})  # type: ignore[arg-type]
    rows = list(mine_instances(data.corpus, data.queries, data.qrels, config, report=report, rescorer=scorer))
    return rows, report


def _text(data: BeirData, docid: str) -> str:
    return passage_text(data.corpus[docid], with_title=True)


def test_rescoring_orders_by_the_cross_encoder(sample: BeirData) -> None:
    scorer = StubScorer()
    plain, _ = _mine(sample)
    rescored, report = _mine(sample, scorer)
    assert report.rescorer == "stub" and report.rescored == scorer.pairs > 0
    assert [i.query_id for i in rescored] == [i.query_id for i in plain]
    changed = 0
    for before, after in zip(plain, rescored, strict=True):
        # Same candidates (every retrieved doc is within the depth), in the cross-encoder's order.
        assert set(after.negative_ids) == set(before.negative_ids)
        expected = sorted(before.negative_ids, key=lambda d: -scorer.value(_text(sample, d)))
        assert after.negative_ids == expected
        changed += after.negative_ids != before.negative_ids
        for p in after.negatives + after.positives:
            assert p.extra["score"] == pytest.approx(1 / (1 + np.exp(-scorer.value(_text(sample, p.docid)))), abs=1e-6)
        # The first stage's score and rank are kept beside the cross-encoder's.
        first = {p.docid: p for p in before.negatives}
        for p in after.negatives:
            assert p.extra["retrieval_score"] == first[p.docid].extra["score"]
            assert p.extra["retrieval_rank"] == first[p.docid].extra["rank"]
        ranks = [p.extra["rank"] for p in after.negatives]
        assert ranks == sorted(ranks)
    assert changed > len(plain) // 2


def test_a_positive_never_gets_through(sample: BeirData) -> None:
    # The cross-encoder puts every positive at the very bottom: they land inside the window, and are still excluded.
    positives = {d for labels in sample.qrels.values() for d, label in labels.items() if label > 0}
    scorer = StubScorer({_text(sample, d): -10.0 for d in positives})
    rows, report = _mine(sample, scorer, negatives=3, range_start=0, range_end=40)
    _plain, plain_report = _mine(sample, None, negatives=3, range_start=0, range_end=40)
    assert report.removed["positive"] == plain_report.removed["positive"] > 0
    for inst in rows:
        assert not set(inst.negative_ids) & set(inst.positive_ids)
        assert not set(inst.negative_ids) & {d for d, v in sample.qrels[inst.query_id].items() if v > 0}
        assert all(p.extra["score"] == pytest.approx(1 / (1 + np.exp(10.0)), abs=1e-6) for p in inst.positives)


def test_margins_use_the_cross_encoders_positive_scores(sample: BeirData) -> None:
    scorer = StubScorer()
    rows, report = _mine(sample, scorer, relative_margin=0.0)
    assert report.removed["relative_margin"] > 0
    for inst in rows:
        floor = min(p.extra["score"] for p in inst.positives)
        assert all(n.extra["score"] <= floor for n in inst.negatives)


def test_rescoring_depth_bounds_the_list(sample: BeirData) -> None:
    scorer = StubScorer()
    rows, report = _mine(sample, scorer, range_end=5, rescore="unused", rescore_depth=8)
    # Per query: at most 8 retrieved documents plus any positive outside them.
    positives = sum(len(inst.positives) for inst in rows)
    assert report.rescored <= 8 * report.queries + positives
    assert all(p.extra["rank"] <= 5 for inst in rows for p in inst.negatives)


@pytest.mark.parametrize("rescore", [False, True])
def test_cuts_count_what_they_remove(sample: BeirData, rescore: bool) -> None:
    # Without cuts every candidate is kept (50 negatives allowed from 40 ranks): the cuts' counts can be predicted.
    base, _ = _mine(sample, StubScorer() if rescore else None)
    scores = sorted(p.extra["score"] for inst in base for p in inst.negatives)
    # Cut halfway between two distinct saved (rounded) scores, so rounding cannot move a candidate across a cut.
    distinct = sorted(set(scores))
    low = (distinct[len(distinct) // 4 - 1] + distinct[len(distinct) // 4]) / 2
    high = (distinct[3 * len(distinct) // 4] + distinct[3 * len(distinct) // 4 + 1]) / 2
    expected_min = sum(1 for s in scores if s < low)
    expected_max = sum(1 for s in scores if s > high)
    rows, report = _mine(sample, StubScorer() if rescore else None, min_score=low, max_score=high)
    assert report.removed["min_score"] == expected_min > 0
    assert report.removed["max_score"] == expected_max > 0
    kept = [p.extra["score"] for inst in rows for p in inst.negatives]
    assert all(low <= s <= high for s in kept)
    assert len(kept) == len(scores) - expected_min - expected_max
    # An instance left with no negative is skipped and counted, as for any filter.
    assert report.skipped["too_few_negatives"] == len(base) - len(rows)


def test_bad_options_name_their_parameter() -> None:
    cases = [
        ({"rescore_depth": 50}, "rescore_depth"),  # no cross-encoder to rescore with
        ({"rescore": "ce", "range_end": 100, "rescore_depth": 50}, "rescore_depth"),
        ({"min_score": 0.9, "max_score": 0.1}, "min_score"),
        ({"max_score": float("nan")}, "max_score"),
        ({"rescore": "ce", "rescore_max_length": 4}, "rescore_max_length"),
    ]
    for options, param in cases:
        with pytest.raises(ConfigError) as info:
            MineConfig(**options).check()  # type: ignore[arg-type]
        assert info.value.param == param, options
    with pytest.raises(ConfigError) as info:
        hardneg.mine(sample_beir_dir(), rescore="/no/such/cross-encoder")
    assert info.value.param == "rescore"


def test_cli_flags_map_to_the_parameters(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    args = ["--quiet", "mine", str(sample_beir_dir()), "-o", str(out), "--rescore-depth", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--rescore-depth" in result.stderr and not out.exists()
    result = CliRunner().invoke(app, ["--quiet", "mine", str(sample_beir_dir()), "-o", str(out), "--min-score", "2",
                                      "--max-score", "1"])  # fmt: skip
    assert result.exit_code == 2 and "--min-score" in result.stderr


# ------------------------------------------------------------------------------------------- a real cross-encoder


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_cross_encoder(tmp_path_factory)


@pytest.mark.slow
def test_cli_rescore_with_a_trained_cross_encoder(cross_encoder: Path, tmp_path: Path) -> None:
    """`hardneg mine --rescore`: the order and the saved scores are the cross-encoder's own (torch predict)."""
    from sentence_transformers.cross_encoder import CrossEncoder

    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(
        app,
        ["--quiet", "mine", str(sample_beir_dir()), "-o", str(out), "--rescore", str(cross_encoder), "--range", "0-20",
         "--rescore-depth", "30", "-n", "5", "--save-scores", "--backend", "torch", "--min-score", "0.0001", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rescorer"] == "torch" and report["rescored"] > 0
    assert report["config"]["rescore"] == str(cross_encoder) and report["config"]["rescore_depth"] == 30
    assert {"min_score", "max_score"} <= set(report["removed"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    data = load_beir(sample_beir_dir(), "train")
    model = CrossEncoder(str(cross_encoder))
    for row in rows:
        passages = row["positive_passages"] + row["negative_passages"]
        expected = model.predict(
            [(row["query"], passage_text(data.corpus[p["docid"]], with_title=True)) for p in passages]
        )
        assert [p["score"] for p in passages] == pytest.approx(expected.tolist(), abs=1e-5)
        negatives = [p["score"] for p in row["negative_passages"]]
        assert negatives == sorted(negatives, reverse=True)
        assert all("retrieval_score" in p and "retrieval_rank" in p for p in passages)
        assert not {p["docid"] for p in row["negative_passages"]} & {p["docid"] for p in row["positive_passages"]}


@pytest.mark.slow
@pytest.mark.shared
def test_rescore_scifact(cross_encoder: Path, scifact_dir: Path, tmp_path: Path) -> None:
    """SciFact train, 40 queries, BM25 then the cross-encoder under ONNX Runtime (exported into a temp cache)."""
    from hardneg.retrieval.cross_encoder import load_cross_encoder

    data = load_beir(scifact_dir, "train")
    qrels = {q: data.qrels[q] for q in sorted(data.qrels)[:40]}
    scorer = load_cross_encoder(cross_encoder, backend="onnx", cache_dir=tmp_path / "onnx")
    torch_scorer = load_cross_encoder(cross_encoder, backend="torch")
    config = MineConfig(range_end=20, rescore=str(cross_encoder), rescore_depth=25, negatives=8, save_scores=True)
    retriever = Retriever(data.corpus, "bm25")  # one BM25 index for the three runs
    report = MineReport()
    rows = list(
        mine_instances(data.corpus, data.queries, qrels, config, report=report, rescorer=scorer, retriever=retriever)
    )
    assert report.rescorer == "onnx" and report.instances == len(rows) > 30
    plain_config = MineConfig(range_end=20, negatives=8, save_scores=True)
    plain = {i.query_id: i for i in mine_instances(data.corpus, data.queries, qrels, plain_config, retriever=retriever)}
    moved = 0
    for inst in rows:
        assert not set(inst.negative_ids) & {d for d, v in qrels[inst.query_id].items() if v > 0}
        pairs = [(inst.query, passage_text(data.corpus[d], with_title=True)) for d in inst.negative_ids]
        # The saved scores are the cross-encoder's (ONNX and torch agree), and they set the order.
        expected = torch_scorer.activate(torch_scorer.logits(pairs))
        assert [p.extra["score"] for p in inst.negatives] == pytest.approx(expected.tolist(), abs=1e-4)
        assert [p.extra["score"] for p in inst.negatives] == sorted((p.extra["score"] for p in inst.negatives),
                                                                     reverse=True)  # fmt: skip
        moved += inst.negative_ids != plain[inst.query_id].negative_ids
    assert moved > len(rows) // 2
    # A cut on the cross-encoder's scale counts what it removes.
    median = float(np.median([p.extra["score"] for inst in rows for p in inst.negatives]))
    cut = MineReport()
    config.min_score = median
    kept = list(
        mine_instances(data.corpus, data.queries, qrels, config, report=cut, rescorer=scorer, retriever=retriever)
    )
    assert cut.removed["min_score"] > 0
    assert all(p.extra["score"] >= median for inst in kept for p in inst.negatives)
