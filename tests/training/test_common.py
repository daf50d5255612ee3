"""Pieces shared by the trainers: their common options, micro-batches, Trainer logs as lines, and nothing left
behind by a failure."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from hardneg.data.io import read_instances, write_instances
from hardneg.data.sample import sample_train_path
from hardneg.errors import ConfigError
from hardneg.training.common import TrainingJob, fit_and_save, log_line, micro_batches, run_training
from hardneg.training.data import SamplingStats
from hardneg.training.reranker import RerankerConfig
from hardneg.training.retriever import RetrieverConfig


@pytest.mark.parametrize("config_class", [RetrieverConfig, RerankerConfig])
def test_both_trainers_check_the_shared_options_when_made_naming_the_field(config_class: type) -> None:
    for options, param in (
        ({"max_length": 4}, "max_length"),
        ({"batch_size": 0}, "batch_size"),
        ({"mini_batch_size": 0}, "mini_batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"precision": "fp8"}, "precision"),
        ({"positives": "some"}, "positives"),
        ({"epochz": 1}, "epochz"),
    ):
        with pytest.raises(ConfigError) as info:
            config_class(**options)
        assert info.value.param == param, options
    with pytest.raises(ConfigError, match="'fp8'; expected one of auto, fp32, bf16, fp16"):
        config_class(precision="fp8")
    # Still plain dataclasses: the CLI reads their fields and defaults.
    assert {f.name: f.default for f in dataclasses.fields(config_class)}["max_length"] == 256
    config = dataclasses.replace(config_class(), negatives=3)
    assert dataclasses.asdict(config)["negatives"] == 3
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(config, negatives=-1)
    assert info.value.param == "negatives"
    config.max_length = 2  # changed in place: `check` validates the values it has now
    with pytest.raises(ConfigError) as info:
        config.check()
    assert info.value.param == "max_length"


def test_each_trainer_keeps_its_own_defaults_and_takes_a_path_for_a_model() -> None:
    assert (RetrieverConfig().batch_size, RerankerConfig().batch_size) == (32, 16)
    assert RetrieverConfig(base_model=Path("models/e5")).base_model == "models/e5"


def test_the_model_folder_and_the_options_are_refused_before_the_data_is_read(tmp_path: Path) -> None:
    def never(job: TrainingJob, config: RetrieverConfig) -> Any:
        raise AssertionError("trained")

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("x")
    with pytest.raises(ConfigError) as info:
        run_training(never, tmp_path / "missing.jsonl", tmp_path / "taken", RetrieverConfig(), overwrite=False,
                     progress=None)  # fmt: skip
    assert info.value.param == "output_dir"
    config = RetrieverConfig()
    config.negatives = -1
    with pytest.raises(ConfigError) as info:
        run_training(never, tmp_path / "missing.jsonl", tmp_path / "new", config, overwrite=False, progress=None)
    assert info.value.param == "negatives"


def test_micro_batches_split_a_step_into_equal_passes() -> None:
    assert micro_batches(16, 16) == (16, 1)
    assert micro_batches(32, 16) == (16, 2)
    assert micro_batches(20, 16) == (10, 2)
    assert micro_batches(17, 16) == (1, 17)  # a prime: one row per pass, still equal passes
    assert micro_batches(4, 100) == (4, 1)


def test_trainer_logs_become_lines_with_numbers_not_a_dict_of_strings() -> None:
    logs = {"loss": "1.23456", "learning_rate": 1.8e-05, "grad_norm": 3.5, "epoch": 0.38}
    assert log_line(logs, 10, 26) == "training: step 10/26, loss 1.235, learning rate 1.8e-05, grad norm 3.5"
    summary = {"train_runtime": "138.9", "train_samples_per_second": "0.019", "train_loss": 1.1}
    assert log_line(summary, 26, 26) == "training: 26 steps in 138.9 s, mean loss 1.1"


class _FailingTrainer:
    """Stands in for a sentence-transformers trainer whose training loop fails mid-way."""

    def __init__(self, *, args: Any, **kwargs: Any) -> None:
        self.args = args
        Path(args.output_dir, "checkpoint-1").mkdir(parents=True)  # what a Trainer may write before failing

    def remove_callback(self, callback: Any) -> None:
        pass

    def add_callback(self, callback: Any) -> None:
        pass

    def train(self) -> None:
        raise RuntimeError("injected failure in the training loop")


def test_a_failed_training_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformerTrainingArguments

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(RuntimeError, match="injected"):
        fit_and_save(
            kind="retriever", trainer_base=_FailingTrainer, args_class=SentenceTransformerTrainingArguments,
            model=None, dataset=[], loss=None, config=RetrieverConfig(max_steps=1, quiet=True),
            job=TrainingJob([], {}, models / "default", None, False), sampling=SamplingStats(), metadata={},
        )  # fmt: skip
    assert list(models.iterdir()) == []  # no models/.default.trainer/, no temp model folder
    assert list(scratch_root.iterdir()) == []  # the trainer's scratch is gone too


@pytest.mark.slow
def test_quiet_training_writes_nothing_but_the_result(tmp_path: Path) -> None:
    """`hardneg --quiet train retriever|reranker --json`: stderr empty, stdout the JSON object alone."""
    train = tmp_path / "train.jsonl"
    write_instances(train, list(read_instances(sample_train_path()))[:8])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    common = ["--max-length", "16", "--batch-size", "4", "--max-steps", "1", "--negatives", "2", "--json"]
    for kind in ("retriever", "reranker"):
        folder = tmp_path / kind
        done = subprocess.run(
            [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet", "train", kind, str(train),
             "-o", str(folder), *common],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert json.loads(done.stdout)["steps"] == 1
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_release_instances_lets_the_job_go_and_leaves_the_users_list(sample_train) -> None:
    from pathlib import Path

    from hardneg.data.io import read_instances
    from hardneg.training.common import TrainingJob, release_instances

    mine = list(read_instances(sample_train))
    job = TrainingJob(mine, {}, Path("unused"), None, False)
    release_instances(job)
    assert job.instances == [] and len(mine) == 24
