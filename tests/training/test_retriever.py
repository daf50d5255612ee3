"""Short real training runs on SciFact train (BM25-mined negatives), evaluated end to end on a small BEIR slice."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.beir import load_beir
from hardneg.data.io import write_instances
from hardneg.data.records import Instance
from hardneg.evaluation.metrics import read_run
from hardneg.models import minilm_path
from hardneg.retrieval.bm25 import bm25_search

pytestmark = [pytest.mark.slow, pytest.mark.shared]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, scifact_dir: Path) -> Path:
    """A 16-instance training file (BM25 negatives) and a small BEIR slice of SciFact test (20 queries)."""
    root = tmp_path_factory.mktemp("train_e2e")
    train = load_beir(scifact_dir, "train")
    qids = sorted(train.qrels)[:16]
    corpus = list(train.corpus.values())
    hits = bm25_search(corpus, [train.queries[q] for q in qids], 12)[1]
    instances = []
    for qid, row in zip(qids, hits, strict=True):
        positives = [train.corpus[d] for d, r in train.qrels[qid].items() if r > 0 and d in train.corpus]
        pos_ids = {p.docid for p in positives}
        negatives = [corpus[i] for i in row if i >= 0 and corpus[i].docid not in pos_ids][:6]
        instances.append(Instance(qid, train.queries[qid], positives, negatives, "scifact"))
    write_instances(root / "train.jsonl", instances)

    test = load_beir(scifact_dir, "test")
    test_qids = sorted(test.qrels)[:20]
    keep = {d for q in test_qids for d in test.qrels[q]}
    others = sorted(set(test.corpus) - keep)
    keep |= set(random.Random(0).sample(others, 150))
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    with open(beir / "corpus.jsonl", "w") as out:
        for docid in sorted(keep):
            p = test.corpus[docid]
            out.write(json.dumps({"_id": docid, "title": p.title, "text": p.text}) + "\n")
    with open(beir / "queries.jsonl", "w") as out:
        for qid in test_qids:
            out.write(json.dumps({"_id": qid, "text": test.queries[qid]}) + "\n")
    with open(beir / "qrels" / "test.tsv", "w") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid in test_qids:
            for docid, label in test.qrels[qid].items():
                out.write(f"{qid}\t{docid}\t{label}\n")
    return root


def _encoder_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    # A cross-encoder keeps the encoder under "bert."; the bi-encoder has no prefix.
    return {k.removeprefix("bert."): v for k, v in tensors.items()}


def _changed(folder: Path) -> int:
    import torch

    base = _encoder_weights(Path(minilm_path()))
    trained = _encoder_weights(folder)
    common = [k for k in base if k in trained and base[k].shape == trained[k].shape]
    assert len(common) > 50, "the trained model does not share the base model's layout"
    return sum(1 for k in common if not torch.equal(base[k], trained[k]))


def test_train_retriever_and_reranker_then_evaluate(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hardneg.training.reranker import RerankerConfig, train_reranker

    monkeypatch.setenv("HARDNEG_CACHE", str(workdir / "cache"))  # embedding cache of this test only
    runner = CliRunner()
    retriever = workdir / "retriever"
    result = runner.invoke(
        app,
        ["--quiet", "train", "retriever", str(workdir / "train.jsonl"), "-o", str(retriever), "--negatives", "3",
         "--batch-size", "8", "--max-length", "32", "--lr", "5e-5", "--query-prefix", "q: ", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["steps"] == 2 and report["sampling"]["instances"] == 16
    assert _changed(retriever) > 10
    meta = json.loads((retriever / "hardneg_train.json").read_text())
    assert meta["config"]["query_prefix"] == "q: " and len(meta["train_sha256"]) == 64
    assert meta["loss"] == "CachedMultipleNegativesRankingLoss" and meta["scale"] == pytest.approx(20.0)
    assert not (workdir / ".retriever.trainer").exists()

    reranker = workdir / "reranker"
    out = train_reranker(
        workdir / "train.jsonl", reranker,
        RerankerConfig(loss="listwise", negatives=3, batch_size=4, max_length=48, lr=5e-5, max_steps=2, quiet=True),
    )  # fmt: skip
    assert out.steps == 2 and out.metadata["loss"] == "GroupSoftmaxLoss"
    assert _changed(reranker) > 10

    run_file = workdir / "reranked.run"
    result = runner.invoke(
        app,
        ["--quiet", "evaluate", str(retriever), str(workdir / "beir"), "--reranker", str(reranker),
         "--rerank-top", "10", "--max-length", "64", "--save-run", str(run_file), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["queries"] == 20
    assert {"ndcg@10", "recall@100", "mrr@10"} <= set(scores) and {"ndcg@10", "mrr@10"} <= set(scores["first_stage"])
    # The trained retriever still retrieves: far above a random ranking of ~170 documents.
    assert scores["first_stage"]["ndcg@10"] > 0.3
    assert 0.0 < scores["ndcg@10"] <= 1.0
    run = read_run(run_file)
    assert len(run) == 20 and all(len(docs) == 100 for docs in run.values())
    assert list((workdir / "cache" / "embeddings").glob("*.npy"))  # corpus and queries were cached

    bm25_file = workdir / "bm25.run"
    result = runner.invoke(
        app, ["--quiet", "evaluate", "--bm25", str(workdir / "beir"), "--save-run", str(bm25_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["compare", str(workdir / "beir" / "qrels" / "test.tsv"), str(bm25_file), str(run_file), "--iterations",
         "200", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)
    assert comparison["baseline"] == "bm25.run" and len(comparison["comparisons"]) == 3
    assert all(c["wins"] + c["losses"] + c["ties"] == 20 for c in comparison["comparisons"])


def test_plain_loss_and_lora_paths_train(workdir: Path) -> None:
    """The plain (uncached) InfoNCE loss, and LoRA + last-token pooling (on MiniLM: no small decoder offline)."""
    from sentence_transformers import SentenceTransformer

    from hardneg.training.retriever import RetrieverConfig, train_retriever

    cached = train_retriever(
        workdir / "train.jsonl", workdir / "cached",
        RetrieverConfig(
            negatives=2, batch_size=8, max_length=32, cached_loss=False, max_steps=1, warmup=0,
            quiet=True,
        ),
    )  # fmt: skip
    assert cached.metadata["loss"] == "MultipleNegativesRankingLoss" and cached.steps == 1
    assert _changed(workdir / "cached") > 10

    lora = train_retriever(
        workdir / "train.jsonl", workdir / "lora",
        RetrieverConfig(
            negatives=2, batch_size=4, max_length=32, lora=True, lora_r=4, lr=1e-3, max_steps=1, warmup=0, quiet=True
        ),
    )  # fmt: skip
    assert lora.steps == 1
    # The adapters are merged into the saved weights: a plain sentence-transformers load, last-token pooling.
    model = SentenceTransformer(str(workdir / "lora"))
    assert model[1].pooling_mode == "lasttoken"
    assert _changed(workdir / "lora") > 0
    assert model.encode(["a query"]).shape == (1, 384)
