"""`hardneg train`: a bad training file exits 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.sample import sample_beir_dir
from hardneg.models import minilm_path


@pytest.mark.slow
def test_bad_training_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "q1", "query": "x", "positive_passages": "oops"}\n')
    result = CliRunner().invoke(app, ["--quiet", "train", "retriever", str(bad), "-o", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--loss", "contrastive"], "--loss"),
        (["--teacher", "cross-encoder:/no/such"], "--teacher"),  # a teacher needs a distillation loss
        (["--loss", "margin_mse", "--teacher-backend", "gpu"], "--teacher-backend"),
    ],
)
def test_distillation_flags_are_checked_before_training(tmp_path: Path, args: list[str], flag: str) -> None:
    from hardneg.data.sample import sample_train_path

    out = tmp_path / "m"
    result = CliRunner().invoke(app, ["--quiet", "train", "retriever", str(sample_train_path()), "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    assert flag in result.output and not out.exists()


def test_evaluate_takes_bm25_as_the_model_as_python_does() -> None:
    beir = str(sample_beir_dir())
    as_word = CliRunner().invoke(app, ["--quiet", "evaluate", "bm25", beir, "--json"])
    as_flag = CliRunner().invoke(app, ["--quiet", "evaluate", "--bm25", beir, "--json"])
    assert as_word.exit_code == 0 and as_flag.exit_code == 0, as_word.output
    word, flag = json.loads(as_word.stdout), json.loads(as_flag.stdout)
    assert word["ndcg@10"] == flag["ndcg@10"] > 0.5 and word["queries"] == flag["queries"] == 8


def test_evaluate_refuses_a_reranker_that_is_not_a_cross_encoder() -> None:
    """A bi-encoder (MiniLM) loaded as a CrossEncoder would rerank with a randomly initialised head."""
    beir = str(sample_beir_dir())
    for folder, says in ((minilm_path(), "not a cross-encoder"), (beir, "no config.json")):
        result = CliRunner().invoke(app, ["--quiet", "evaluate", "--bm25", beir, "--reranker", str(folder)])
        assert result.exit_code == 2 and "--reranker" in result.output and says in result.output, result.output
