"""Mining on tiny hand-made BEIR folders: self-id exclusion, skips, dense/hybrid paths, CLI and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.beir import load_beir
from hardneg.data.io import read_instances
from hardneg.data.records import passage_text
from hardneg.errors import ConfigError
from hardneg.mine import MineConfig, MineReport, mine_beir, mine_instances, parse_range
from hardneg.retrieval import Retriever, embedding_cache_path, encode_texts, load_encoder

DOCS = {
    "a1": ("Cats", "Cats are small domesticated carnivores that purr and hunt mice."),
    "a2": ("", "Dogs are loyal animals; a dog barks and fetches sticks."),
    "a3": ("Mice", "Mice are small rodents that cats hunt at night."),
    "a4": ("", "Stock markets crash when investors panic and sell shares."),
    "a5": ("", "Interest rates set by central banks move stock markets."),
    "a6": ("", "Cats and dogs can live together when raised as pets."),
    "a7": ("", "Small carnivores such as cats hunt mice and birds."),
    "a8": ("", "Farmers markets sell fresh vegetables every week."),
    "q1": ("", "Cats should be kept indoors: they hunt mice and small birds."),  # also a query id (ArguAna)
}
QUERIES = {
    "q1": "Cats should be kept indoors: they hunt mice and small birds.",
    "q2": "why do stock markets crash",
    "q3": "do dogs bark",
    "q4": "a query whose qrels are all zero",
}
QRELS = [("q1", "a1", 1), ("q1", "a4", 0), ("q2", "a4", 2), ("q2", "a5", 1), ("q3", "a2", 1), ("q4", "a6", 0)]


def make_beir(folder: Path, qrels: list[tuple[str, str, int]] = QRELS) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as handle:
        for docid, (title, text) in DOCS.items():
            handle.write(json.dumps({"_id": docid, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as handle:
        for qid, text in QUERIES.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with open(folder / "qrels" / "train.tsv", "w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    return folder


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_beir(tmp_path / "tinyset")


def test_parse_range() -> None:
    assert parse_range("10-100") == (10, 100)
    assert parse_range(" 0 - 5 ") == (0, 5)
    for bad in ("10", "100-10", "a-b", "5-5"):
        with pytest.raises(ConfigError):
            parse_range(bad)


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


@pytest.mark.slow
def test_encode_cache_hit_and_damaged_cache(tmp_path: Path) -> None:
    model = load_encoder()
    texts = ["first text", "second, longer text about retrieval", "third"]
    first = encode_texts(model, texts, cache_dir=tmp_path, prefix="q: ")
    path = embedding_cache_path(model, texts, prefix="q: ", cache_dir=tmp_path)
    assert path.is_file()
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    # Prove the second call reads the file: put known values there.
    marker = np.full_like(first, 0.5)
    np.save(path, marker)
    assert np.array_equal(encode_texts(model, texts, cache_dir=tmp_path, prefix="q: "), marker)
    # Another prefix or max length is another key.
    assert embedding_cache_path(model, texts, prefix="", cache_dir=tmp_path) != path
    assert embedding_cache_path(model, texts, prefix="q: ", max_length=32, cache_dir=tmp_path) != path
    # A damaged file (wrong shape) is recomputed.
    np.save(path, np.zeros((1, 3), dtype=np.float32))
    np.testing.assert_allclose(encode_texts(model, texts, cache_dir=tmp_path, prefix="q: "), first, atol=1e-5)


def test_cli_json_report(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl.gz"
    result = CliRunner().invoke(
        app, ["mine", str(tiny), "--split", "train", "-o", str(out), "--negatives", "2", "--subset", "toy", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["instances"] == 3
    assert report["skipped"]["no_positive"] == 1
    assert report["queries"] == 4
    assert report["negatives_per_instance"]["max"] <= 2
    assert set(report["removed"]) >= {"positive", "self_id", "relative_margin", "absolute_margin"}
    with gzip.open(out, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 3 and {r["subset"] for r in rows} == {"toy"}


def test_cli_missing_split_and_broken_corpus(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["mine", str(tiny), "--split", "dev", "-o", str(out)])
    assert result.exit_code == 2
    assert "dev.tsv" in result.stderr and "split" in result.stderr
    assert not out.exists()

    with open(tiny / "corpus.jsonl", "a") as handle:
        handle.write('{"_id": "bad", "text": \n')
    result = runner.invoke(app, ["mine", str(tiny), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{tiny / 'corpus.jsonl'}:{len(DOCS) + 1}:" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".rows.jsonl*"))  # no temp file left behind

    result = runner.invoke(app, ["mine", str(tiny), "-o", str(out), "--range", "50-10"])
    assert result.exit_code == 2 and "--range" in result.stderr


def test_too_few_negatives_is_counted(tiny: Path) -> None:
    data = load_beir(tiny, "train")
    report = MineReport()
    # Only a4, a5 and a8 share a term with q2; ranks 3+ hold just one non-positive doc (a8) at most.
    config = MineConfig(method="bm25", negatives=5, min_negatives=2, range_start=0, range_end=3)
    rows = {i.query_id for i in mine_instances(data.corpus, data.queries, data.qrels, config, report=report)}
    assert "q2" not in rows
    assert report.skipped["too_few_negatives"] >= 1
    assert report.instances + sum(report.skipped.values()) == report.queries
