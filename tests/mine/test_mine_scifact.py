"""Mining the real SciFact train split (BM25; dense once, with its embedding cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardneg.data.beir import BeirData, load_beir, load_qrels
from hardneg.data.io import read_instances
from hardneg.data.records import passage_text
from hardneg.mine import MineConfig, MineReport, mine_beir, mine_instances
from hardneg.retrieval import Retriever, embedding_cache_path, encode_texts

pytestmark = [pytest.mark.slow, pytest.mark.shared]


@pytest.fixture(scope="module")
def scifact(scifact_dir: Path) -> BeirData:
    return load_beir(scifact_dir, "train")


@pytest.fixture(scope="module")
def bm25(scifact: BeirData) -> Retriever:
    return Retriever(scifact.corpus, "bm25")


def run(
    data: BeirData, retriever: Retriever, n_queries: int | None = None, **options: object
) -> tuple[list, MineReport]:
    qrels = dict(list(data.qrels.items())[:n_queries]) if n_queries else data.qrels
    report = MineReport()
    config = MineConfig(method="bm25", **options)  # type: ignore[arg-type]
    rows = list(mine_instances(data.corpus, data.queries, qrels, config, report=report, retriever=retriever))
    return rows, report


def test_bm25_train_file(scifact_dir: Path, tmp_path: Path) -> None:
    qrels = load_qrels(scifact_dir, "train")
    # Every SciFact train query has at least one positive label, so none may be skipped.
    assert len(qrels) == 809 and all(any(v > 0 for v in labels.values()) for labels in qrels.values())
    out = tmp_path / "scifact.train.jsonl"
    report = mine_beir(scifact_dir, "train", out, MineConfig(method="bm25", negatives=30))
    rows = list(read_instances(out))
    assert report.instances == len(rows) == 809
    assert sum(report.skipped.values()) == 0
    assert {r.subset for r in rows} == {"scifact"}
    for row in rows:
        positives = {d for d, v in qrels[row.query_id].items() if v > 0}
        assert set(row.positive_ids) == positives
        assert not set(row.negative_ids) & positives
        assert len(set(row.negative_ids)) == len(row.negative_ids) <= 30
    assert report.removed["positive"] > 0  # positives are retrieved in SciFact's top-100, then dropped
    per = report.to_dict()["negatives_per_instance"]
    assert per["max"] == 30 and per["min"] >= 1


def test_range_skips_top_ranks(scifact: BeirData, bm25: Retriever) -> None:
    rows, _ = run(scifact, bm25, 100, range_start=10, range_end=100, negatives=20, save_scores=True)
    first = list(scifact.qrels)[:100]
    top = bm25.search({q: scifact.queries[q] for q in first}, 10)
    for row in rows:
        assert not set(row.negative_ids) & {d for d, _ in top[row.query_id]}
        assert all(11 <= p.extra["rank"] <= 100 for p in row.negatives)
    full, _ = run(scifact, bm25, 100, range_start=0, range_end=100, negatives=20)
    # Without the skip, most instances start inside the top 10.
    assert sum(set(r.negative_ids) & {d for d, _ in top[r.query_id]} != set() for r in full) > 50


def test_random_sampling_seeds(scifact: BeirData, bm25: Retriever) -> None:
    a, _ = run(scifact, bm25, 50, sampling="random", seed=1, negatives=5)
    b, _ = run(scifact, bm25, 50, sampling="random", seed=1, negatives=5)
    c, _ = run(scifact, bm25, 50, sampling="random", seed=2, negatives=5)
    top, _ = run(scifact, bm25, 50, sampling="top", negatives=5)
    ids = lambda rows: [r.negative_ids for r in rows]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    assert ids(a) != ids(top)
    # Random picks come from the whole range, in rank order.
    assert all(len(r.negatives) == 5 for r in a)


def test_margins_remove_what_they_should(scifact: BeirData, bm25: Retriever) -> None:
    base, _ = run(scifact, bm25, 100, negatives=100, save_scores=True)
    rel, rel_report = run(scifact, bm25, 100, negatives=100, save_scores=True, relative_margin=0.1)
    ab, ab_report = run(scifact, bm25, 100, negatives=100, save_scores=True, absolute_margin=2.0)
    assert rel_report.removed["relative_margin"] > 0 and ab_report.removed["absolute_margin"] > 0
    by_id = {r.query_id: r for r in base}
    for rows, limit in ((rel, lambda p: 0.9 * p), (ab, lambda p: p - 2.0)):
        for row in rows:
            floor = min(p.extra["score"] for p in row.positives)
            expected = [n.docid for n in by_id[row.query_id].negatives if n.extra["score"] <= limit(floor) + 1e-6]
            assert row.negative_ids == expected
    # The window (100) is never larger than --negatives, so the report's count is exactly the difference.
    kept = sum(len(r.negatives) for r in rel)
    assert sum(len(r.negatives) for r in base) - kept == rel_report.removed["relative_margin"]
    # Positives not retrieved still get an exact score (so the margin is right for them too).
    assert any(p.extra["rank"] is None for r in base for p in r.positives)
    assert all(isinstance(p.extra["score"], float) for r in base for p in r.positives)


@pytest.mark.timeout(900)
def test_dense_scifact_and_cache_hit(scifact: BeirData, tmp_path: Path) -> None:
    cache = tmp_path / "emb"
    queries = dict(list(scifact.queries.items())[:100])
    qrels = {q: scifact.qrels[q] for q in queries}
    config = MineConfig(
        method="dense", negatives=10, range_start=5, range_end=50, save_scores=True, cache_dir=str(cache)
    )
    report = MineReport()
    rows = list(mine_instances(scifact.corpus, queries, qrels, config, report=report))
    assert len(rows) == 100
    for row in rows:
        assert not set(row.negative_ids) & {d for d, v in qrels[row.query_id].items() if v > 0}
        assert all(6 <= p.extra["rank"] <= 50 for p in row.negatives)
    texts = [passage_text(p, with_title=True) for p in scifact.corpus.values()]
    # Second build with the same encoder backend: corpus embeddings from cache.
    retriever = Retriever(scifact.corpus, "dense", cache_dir=cache, backend=config.backend)
    path = embedding_cache_path(retriever.model, texts, cache_dir=cache)
    assert path.is_file()
    cached = np.load(path)
    assert cached.shape == (len(texts), 384)
    again = list(mine_instances(scifact.corpus, queries, qrels, config, retriever=retriever))
    assert [r.to_row() for r in again] == [r.to_row() for r in rows]
    # A cache hit returns the stored array without running the model.
    assert np.array_equal(encode_texts(retriever.model, texts, cache_dir=cache), cached)
