"""Distilling a cross-encoder into the retriever (`RetrieverConfig(loss="margin_mse" | "kl_div")`) and teacher
scores of training instances (`hardneg.training.teacher`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hardneg
from hardneg.data.io import read_instances
from hardneg.data.records import Instance, Passage, passage_text
from hardneg.data.sample import sample_beir_dir, sample_train_path
from hardneg.errors import ConfigError
from hardneg.training.common import group_columns
from hardneg.training.data import build_examples
from hardneg.training.retriever import RetrieverConfig, teacher_spec
from hardneg.training.teacher import TEACHER_LOGIT, TEACHER_SCORE, Teacher, parse_teacher, score_instances
from support.cross_encoder import sample_cross_encoder


def scored(qid: str, pos: float, negs: list[float], key: str = TEACHER_LOGIT) -> Instance:
    return Instance(
        qid, f"query {qid}",
        [Passage(f"{qid}-p", "pos", extra={key: pos})],
        [Passage(f"{qid}-n{i}", f"neg {i}", extra={key: v}) for i, v in enumerate(negs)],
    )  # fmt: skip


def test_examples_carry_the_teacher_scores_of_the_passages_they_picked() -> None:
    instances = [scored("a", 5.0, [1.0, 2.0, 3.0, 4.0]), scored("b", 9.0, [-1.0], key=TEACHER_SCORE)]
    per_epoch, _ = build_examples(instances, negatives=2, epochs=2, seed=0, teacher_scores=True)
    values = {"neg 0": 1.0, "neg 1": 2.0, "neg 2": 3.0, "neg 3": 4.0}
    for examples in per_epoch:
        for example in examples:
            assert example.scores is not None and len(example.scores) == 3
            if example.query_id == "a":
                assert example.scores == [5.0, *(values[n] for n in example.negatives)]
            else:  # one negative, drawn twice; teacher_score is used when there is no logit
                assert example.scores == [9.0, -1.0, -1.0]
    columns = group_columns(per_epoch, 2, label=True)
    assert list(columns) == ["query", "positive", "negative_1", "negative_2", "label"]
    assert len(columns["label"]) == 4 and all(len(row) == 3 for row in columns["label"])


def test_missing_teacher_scores_and_bad_options_name_their_parameter() -> None:
    bare = Instance("q", "query", [Passage("p", "pos")], [Passage("n", "neg")])
    with pytest.raises(ConfigError) as info:
        build_examples([bare], negatives=1, epochs=1, seed=0, teacher_scores=True)
    assert info.value.param == "teacher"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"loss": "contrastive"}, "loss"),
        ({"teacher": "models/ce"}, "teacher"),  # a teacher without a distillation loss
        ({"loss": "margin_mse", "cached_loss": True}, "cached_loss"),
        ({"loss": "kl_div", "negatives": 0}, "negatives"),
        ({"loss": "kl_div", "teacher": "cross-encoder:"}, "teacher"),
        ({"loss": "margin_mse", "teacher_backend": "gpu"}, "teacher_backend"),
    ]
    for options, param in cases:  # checked when made
        with pytest.raises(ConfigError) as info:
            RetrieverConfig(**options)
        assert info.value.param == param, options


def test_teacher_specs() -> None:
    assert parse_teacher(None) == parse_teacher("") == parse_teacher("dense:") == Teacher("dense")
    assert parse_teacher("dense:/models/e5") == Teacher("dense", "/models/e5")
    assert parse_teacher("cross-encoder:/m/ce").spec == "cross-encoder:/m/ce"
    assert teacher_spec("models/ce") == Teacher("cross-encoder", "models/ce")  # a bare folder: a cross-encoder
    for bad in ("bm25:", "cross-encoder:", "gpt-4o"):
        with pytest.raises(ConfigError) as info:
            parse_teacher(bad)
        assert info.value.param == "teacher"


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_cross_encoder(tmp_path_factory)


@pytest.mark.slow
def test_teacher_scores_are_the_named_models(cross_encoder: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    from hardneg.retrieval.encoders import load_encoder

    instances = list(read_instances(sample_train_path()))[:6]
    ce = score_instances(instances, f"cross-encoder:{cross_encoder}", backend="torch")
    model = CrossEncoder(str(cross_encoder))
    for inst in ce:
        passages = [*inst.positives, *inst.negatives]
        pairs = [(inst.query, passage_text(p, with_title=True)) for p in passages]
        np.testing.assert_allclose([p.extra[TEACHER_SCORE] for p in passages], model.predict(pairs), atol=1e-5)
        assert all(TEACHER_LOGIT in p.extra for p in passages)
    dense = score_instances(instances, "dense:", use_cache=False)
    encoder = load_encoder(device="cpu")
    for inst in dense:
        passages = [*inst.positives, *inst.negatives]
        q = encoder.encode([inst.query], normalize_embeddings=True)[0]
        d = encoder.encode([passage_text(p, with_title=True) for p in passages], normalize_embeddings=True)
        np.testing.assert_allclose([p.extra[TEACHER_SCORE] for p in passages], d @ q, atol=1e-4)
        assert not any(TEACHER_LOGIT in p.extra for p in passages)


@pytest.mark.slow
def test_margin_mse_and_kl_train_and_evaluate(cross_encoder: Path, tmp_path: Path) -> None:
    """A few steps of each distillation loss from Python, then nDCG on the sample's test queries."""
    margin = hardneg.train_retriever(
        sample_train_path(), tmp_path / "margin_mse",
        RetrieverConfig(loss="margin_mse", teacher=str(cross_encoder), negatives=3, batch_size=4, max_length=48,
                        max_steps=2, teacher_backend="torch", quiet=True),
    )  # fmt: skip
    meta = json.loads((tmp_path / "margin_mse" / "hardneg_train.json").read_text())
    assert margin.steps == 2 and meta["loss"] == "MarginMSELoss"
    assert meta["teacher"] == f"cross-encoder:{cross_encoder}" and meta["config"]["loss"] == "margin_mse"
    assert margin.train_loss is not None and np.isfinite(margin.train_loss)

    # Scores already on the passages (what the experiment caches): no teacher needed.
    prescored = score_instances(read_instances(sample_train_path()), f"cross-encoder:{cross_encoder}", backend="torch")
    kl = hardneg.train_retriever(
        prescored, tmp_path / "kl",
        RetrieverConfig(loss="kl_div", negatives=3, batch_size=4, max_length=48, max_steps=2, quiet=True),
    )  # fmt: skip
    assert kl.metadata["loss"] == "DistillKLDivLoss" and kl.metadata["teacher"] == "passage teacher scores"
    result = hardneg.evaluate(kl.output_dir, sample_beir_dir(), split="test")
    assert 0.0 < result.metrics["ndcg@10"] <= 1.0
