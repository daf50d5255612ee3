"""Encoding sharded over Ray actors (`hardneg.retrieval.sharded`, `hardneg mine --engine ray`) on a real local Ray:
the same embeddings and the same cache file as local encoding, and mining on Ray gives the same negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hardneg
from hardneg.cluster import MapStats, PoolSize, RaySession
from hardneg.data.beir import load_beir
from hardneg.data.records import passage_text
from hardneg.data.sample import sample_beir_dir
from hardneg.errors import ConfigError
from hardneg.mining import MineConfig
from hardneg.retrieval import Retriever

pytestmark = pytest.mark.slow


def test_bad_engine_options_name_their_parameter() -> None:
    for options, param in (
        ({"engine": "spark"}, "engine"),
        ({"engine": "ray", "workers": 0}, "workers"),
        ({"engine": "ray", "worker_gpus": -1.0}, "worker_gpus"),
        ({"ray_address": "127.0.0.1:6379"}, "ray_address"),  # an address with the local engine
    ):
        with pytest.raises(ConfigError) as info:
            MineConfig(**options).check()  # type: ignore[arg-type]
        assert info.value.param == param, options


def test_sharded_encoding_matches_local_and_fills_the_same_cache(ray_local: object, tmp_path: Path) -> None:
    from hardneg.retrieval.embed import embedding_cache_path, encode_texts
    from hardneg.retrieval.encoders import load_encoder
    from hardneg.retrieval.sharded import RayCompute

    data = load_beir(sample_beir_dir(), "train")
    texts = [passage_text(p, with_title=True) for p in data.corpus.values()]
    model = load_encoder(backend="auto")
    local = encode_texts(model, texts, cache_dir=tmp_path / "local")
    stats = MapStats()
    compute = RayCompute(RaySession(), PoolSize(2), rows_per_block=16, stats=stats)
    sharded = encode_texts(model, texts, cache_dir=tmp_path / "ray", compute=compute)
    np.testing.assert_allclose(sharded, local, atol=1e-5)
    assert stats.blocks == 5 and stats.rows == len(texts)
    # The file a local run reads: same name under the same folder, and a local encode now hits it.
    path = embedding_cache_path(model, texts, cache_dir=tmp_path / "ray")
    assert path.is_file() and path.name == embedding_cache_path(model, texts, cache_dir=tmp_path / "local").name
    np.testing.assert_array_equal(encode_texts(model, texts, cache_dir=tmp_path / "ray"), sharded)


def test_mining_on_ray_gives_the_same_negatives(ray_local: object, tmp_path: Path) -> None:
    options = {"method": "dense", "negatives": 8, "range_end": 30, "save_scores": True}
    local = hardneg.mine(sample_beir_dir(), cache_dir=str(tmp_path / "local"), **options)
    on_ray = hardneg.mine(sample_beir_dir(), cache_dir=str(tmp_path / "ray"), engine="ray", workers=2, **options)
    assert [i.query_id for i in on_ray] == [i.query_id for i in local]
    for a, b in zip(on_ray, local, strict=True):
        assert a.negative_ids == b.negative_ids
        expected = [p.extra["score"] for p in b.negatives]
        assert [p.extra["score"] for p in a.negatives] == pytest.approx(expected, abs=1e-5)
    # Ray is the test's own (`ray_local`): mining used it and left it running.
    import ray

    assert ray.is_initialized()


def test_a_loaded_model_cannot_go_to_the_actors(tmp_path: Path) -> None:
    from hardneg.retrieval.encoders import load_encoder

    data = load_beir(sample_beir_dir(), "train")
    with pytest.raises(ConfigError) as info:
        Retriever(data.corpus, "dense", model=load_encoder(backend="auto"), engine="ray", cache_dir=tmp_path)
    assert info.value.param == "model"
