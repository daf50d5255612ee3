"""Mining: on a tiny hand-made BEIR folder (self-id exclusion, skips, dense/hybrid paths, too few negatives),
then on the real SciFact train split (skipped when ../shared/data is absent)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from hardneg.data.beir import BeirData, load_beir, load_qrels
from hardneg.data.io import read_instances
from hardneg.data.records import passage_text
from hardneg.mining import MineConfig, MineReport, mine_beir, mine_instances
from hardneg.retrieval import Retriever, embedding_cache_path, encode_texts, load_encoder


def test_bm25_self_id_positives_and_skips(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    report = mine_beir(tiny, "train", out, MineConfig(method="bm25", negatives=10, save_scores=True))
    rows = {inst.query_id: inst for inst in read_instances(out)}
    assert report.queries == 4
    assert report.skipped["no_positive"] == 1  # q4: all-zero qrels
    assert "q4" not in rows
    assert set(rows) == {"q1", "q2", "q3"}
    assert report.instances == 3
    assert report.skipped["too_few_negatives"] == 0
    # The query's own id is a corpus doc retrieved first (identical text) and must never be a negative.
    assert "q1" not in rows["q1"].negative_ids
    assert report.removed["self_id"] >= 1
    # A labelled-zero doc (a4 for q1) may be a negative; a positive never is.
    for qid, inst in rows.items():
        assert inst.subset == "tinyset"
        assert not set(inst.negative_ids) & set(inst.positive_ids)
        assert len(set(inst.negative_ids)) == len(inst.negative_ids)
        ranks = [p.extra["rank"] for p in inst.negatives]
        assert ranks == sorted(ranks)
        scores = [p.extra["score"] for p in inst.negatives]
        assert scores == sorted(scores, reverse=True)
        # bm25 only returns documents sharing a term with the query
        assert all(s > 0 for s in scores), qid
    assert rows["q2"].positive_ids == ["a4", "a5"]
    assert all("score" in p.extra for p in rows["q2"].positives)


def test_min_positive_score_excludes_partly_relevant(tiny: Path, tmp_path: Path) -> None:
    report = MineReport()
    data = load_beir(tiny, "train")
    config = MineConfig(method="bm25", negatives=10, min_positive_score=2)
    rows = {i.query_id: i for i in mine_instances(data.corpus, data.queries, data.qrels, config, report=report)}
    # Only q2 has a label >= 2; its label-1 doc a5 is neither positive nor negative.
    assert set(rows) == {"q2"}
    assert rows["q2"].positive_ids == ["a4"]
    assert "a5" not in rows["q2"].negative_ids
    assert report.skipped["no_positive"] == 3


@pytest.mark.slow
def test_dense_and_hybrid_tiny(tiny: Path, tmp_path: Path) -> None:
    data = load_beir(tiny, "train")
    model = load_encoder()
    for method in ("dense", "hybrid"):
        config = MineConfig(method=method, negatives=3, save_scores=True, cache_dir=str(tmp_path / "emb"))
        retriever = Retriever(data.corpus, method, model=model, cache_dir=tmp_path / "emb")
        report = MineReport()
        rows = list(mine_instances(data.corpus, data.queries, data.qrels, config, report=report, retriever=retriever))
        assert [r.query_id for r in rows] == ["q1", "q2", "q3"], method
        for inst in rows:
            assert len(inst.negatives) == 3
            assert inst.query_id not in inst.negative_ids
            assert not set(inst.negative_ids) & set(inst.positive_ids)
            # cosine scores of normalised embeddings
            assert all(-1.0 <= p.extra["score"] <= 1.0 for p in inst.negatives + inst.positives)
            if method == "hybrid":
                assert all(p.extra["fused_score"] > 0 for p in inst.negatives)
        # q2 is about stock markets: its positives are the two finance docs, so the best negative is not one.
        assert rows[1].positive_ids == ["a4", "a5"]

    # Dense scores match a direct computation with the same model.
    texts = [passage_text(p, with_title=True) for p in data.corpus.values()]
    emb = encode_texts(model, texts, cache_dir=tmp_path / "emb")
    direct = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(emb, direct, atol=1e-5)


def test_too_few_negatives_is_counted(tiny: Path) -> None:
    data = load_beir(tiny, "train")
    report = MineReport()
    # Only a4, a5 and a8 share a term with q2; ranks 3+ hold just one non-positive doc (a8) at most.
    config = MineConfig(method="bm25", negatives=5, min_negatives=2, range_start=0, range_end=3)
    rows = {i.query_id for i in mine_instances(data.corpus, data.queries, data.qrels, config, report=report)}
    assert "q2" not in rows
    assert report.skipped["too_few_negatives"] >= 1
    assert report.instances + sum(report.skipped.values()) == report.queries


# -- the real SciFact train split (BM25; dense once, with its embedding cache) -------------------------------


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


@pytest.mark.slow
@pytest.mark.shared
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


@pytest.mark.slow
@pytest.mark.shared
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


@pytest.mark.slow
@pytest.mark.shared
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


@pytest.mark.slow
@pytest.mark.shared
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


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.timeout(900)
def test_dense_scifact_and_cache_hit(scifact: BeirData, tmp_path: Path) -> None:
    cache = tmp_path / "emb"
    queries = dict(list(scifact.queries.items())[:100])
    qrels = {q: scifact.qrels[q] for q in queries}
    # A 1,000-document slice of the corpus (the 100 queries' judged docs and a seeded sample of the rest): what
    # the test proves does not need all 5,183 abstracts encoded, which takes minutes on 2 cores without a cache.
    judged = {d for q in qrels.values() for d in q}
    rest = sorted(d for d in scifact.corpus if d not in judged)
    keep = judged | set(random.Random(0).sample(rest, 1000 - len(judged)))
    scifact = BeirData({d: p for d, p in scifact.corpus.items() if d in keep}, scifact.queries, scifact.qrels)
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
