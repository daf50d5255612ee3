"""`hardneg train`: a bad training file exits 2 and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app


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


@pytest.mark.parametrize("kind", ["retriever", "reranker"])
def test_a_bad_choice_is_refused_by_the_config_before_training(tmp_path: Path, kind: str) -> None:
    from hardneg.data.sample import sample_train_path

    out = tmp_path / "m"
    args = ["--quiet", "train", kind, str(sample_train_path()), "-o", str(out), "--positives", "some"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--positives: unknown positives 'some'" in result.output, result.output
    assert not out.exists()
