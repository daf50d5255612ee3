"""`hardneg evaluate` and `hardneg compare` through the CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.sample import sample_beir_dir
from hardneg.models import minilm_path


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
