"""Dense indexes (`hardneg.retrieval.index`): flat is exact; IVF and HNSW at their defaults keep recall@100
at or above 0.95 of flat's (on clustered vectors here, on SciFact in the slow test); mining takes `index`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardneg.data.beir import load_beir
from hardneg.data.records import passage_text
from hardneg.errors import ConfigError
from hardneg.mining import MineConfig
from hardneg.retrieval.dense import dense_search
from hardneg.retrieval.index import DenseIndex, default_nlist, recall_at_k


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 40 centres: neighbourhoods an index can get wrong, as real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    points = centres[rng.integers(0, 40, size=n)] + 0.6 * rng.normal(size=(n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def test_flat_is_the_exact_search() -> None:
    corpus, queries = _clustered(500, 16, 0), _clustered(20, 16, 1)
    scores, indices = DenseIndex(corpus).search(queries, 10)
    exact_scores, exact_indices = dense_search(queries, corpus, 10)
    np.testing.assert_array_equal(indices, exact_indices)
    np.testing.assert_allclose(scores, exact_scores)
    assert DenseIndex(corpus).describe() == {"index": "flat"}


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_keep_recall(kind: str) -> None:
    corpus, queries = _clustered(4000, 32, 2), _clustered(100, 32, 3)
    _, exact = dense_search(queries, corpus, 100)
    index = DenseIndex(corpus, kind)
    scores, found = index.search(queries, 100, block_size=30)
    assert found.shape == (100, 100)
    assert recall_at_k(found, exact) >= 0.95
    # Scores are the same inner products as flat's, best first.
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    row = found[0][found[0] >= 0]
    np.testing.assert_allclose(scores[0][: len(row)], corpus[row] @ queries[0], atol=1e-5)
    assert index.describe()["index"] == kind


def test_index_settings_and_bad_names() -> None:
    assert default_nlist(5183) == 132 and default_nlist(10) == 1
    assert DenseIndex(_clustered(400, 8, 4), "ivf", nlist=10, nprobe=3).describe() == {
        "index": "ivf", "nlist": 10, "nprobe": 3,
    }  # fmt: skip
    with pytest.raises(ConfigError) as info:
        DenseIndex(_clustered(10, 8, 5), "annoy")
    assert info.value.param == "index"
    for options in ({"index": "lsh"}, {"index": "ivf", "method": "bm25"}):
        with pytest.raises(ConfigError) as info:
            MineConfig(**options).check()  # type: ignore[arg-type]
        assert info.value.param == "index"


def test_recall_counts_only_real_hits() -> None:
    exact = np.array([[1, 2, 3, -1]])
    assert recall_at_k(np.array([[3, 2, 9, -1]]), exact) == pytest.approx(2 / 3)
    assert recall_at_k(np.empty((0, 4), dtype=np.int64), np.empty((0, 4), dtype=np.int64)) == 1.0


@pytest.mark.slow
@pytest.mark.shared
def test_scifact_recall_at_100(scifact_dir: Path) -> None:
    """SciFact's first 2,000 passages and its 300 test queries, embedded by MiniLM (cached): IVF and HNSW at their
    defaults find at least 95% of flat's top 100."""
    from hardneg.retrieval.embed import encode_texts
    from hardneg.retrieval.encoders import load_encoder

    data = load_beir(scifact_dir, "test")
    model = load_encoder(backend="auto")
    texts = [passage_text(p, with_title=True) for p in list(data.corpus.values())[:2000]]
    corpus = encode_texts(model, texts, batch_size=64, stage="corpus")
    queries = encode_texts(model, [data.queries[q] for q in data.qrels], batch_size=64, stage="queries")
    _, exact = dense_search(queries, corpus, 100)
    for kind in ("ivf", "hnsw"):
        _, found = DenseIndex(corpus, kind).search(queries, 100)
        assert recall_at_k(found, exact) >= 0.95, kind


@pytest.mark.slow
def test_mining_with_each_index(tmp_path: Path) -> None:
    """`hardneg mine --index`: on the sample (80 docs) every index finds what flat finds."""
    from typer.testing import CliRunner

    from hardneg.cli import app
    from hardneg.data.io import read_instances
    from hardneg.data.sample import sample_beir_dir

    mined = {}
    for kind in ("flat", "ivf", "hnsw"):
        out = tmp_path / f"{kind}.jsonl"
        args = ["--quiet", "mine", str(sample_beir_dir()), "-o", str(out), "--method", "dense", "--index", kind,
                "--cache-dir", str(tmp_path / "cache"), "-n", "5"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        mined[kind] = {i.query_id: i.negative_ids for i in read_instances(out)}
    assert mined["hnsw"] == mined["flat"]
    shared = sum(len(set(mined["ivf"][q]) & set(negs)) for q, negs in mined["flat"].items())
    assert shared >= 0.9 * sum(len(negs) for negs in mined["flat"].values())
