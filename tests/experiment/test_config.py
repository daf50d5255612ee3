"""Config checks: every error names the file, the line and the field; the CLI exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import hardneg.cli.experiment_cmds  # noqa: F401 (registers the verbs)
from hardneg.cli import app
from hardneg.data.sample import sample_beir_dir, sample_train_path
from hardneg.errors import InputError
from hardneg.experiment.config import load_config

BASE = """\
name: tiny
output: out
train:
  - name: sample
    beir: {beir}
    split: train
variants: [default, rlhn]
verdicts: [stage1, cascade]
judge:
  stages:
    - {{name: emb, backend: embedding, t_better: 0.9}}
evaluate:
  - name: sample
    beir: {beir}
    split: test
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_valid_config_expands_variants(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE.format(beir=sample_beir_dir())))
    assert [v.name for v in cfg.variants] == ["default", "rlhn-stage1", "rlhn-cascade"]
    assert cfg.output == (tmp_path / "out").resolve()
    assert cfg.seeds == [0]
    assert cfg.needs_judge


def test_default_is_always_added(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace("[default, rlhn]", "[hn_remove, topk_percpos]")
    cfg = load_config(write(tmp_path, text))
    assert cfg.variants[0].name == "default"
    assert "topk_percpos" in [v.name for v in cfg.variants]


def test_unknown_variant_names_field_and_line(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace("[default, rlhn]", "[default, relabel]")
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    assert info.value.problem.field == "variants[1]"
    assert info.value.problem.line == 7
    assert "relabel" in info.value.problem.message


def test_missing_dataset_folder(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace(f"beir: {sample_beir_dir()}\n    split: test", "beir: nowhere")
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    assert info.value.problem.field == "evaluate[0].beir"
    assert info.value.problem.line == 14


def test_missing_train_section(tmp_path: Path) -> None:
    text = "\n".join(line for line in BASE.format(beir=sample_beir_dir()).splitlines()[:1]) + "\nevaluate: []\n"
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    assert info.value.problem.field == "train"


def test_bad_split_and_unknown_keys(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace("split: train", "split: dev")
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    assert info.value.problem.field == "train[0].split"
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, BASE.format(beir=sample_beir_dir()) + "epochs: 3\n"))
    assert info.value.problem.field == "epochs"


@pytest.mark.parametrize(
    ("change", "field", "line", "says"),
    [
        (("split: train", "split: train\n    max_queries: 0"), "train[0].max_queries", 7, "greater than or equal to 1"),
        (("split: train", "split: train\n    subset: x"), "train[0].subset", 7, "unknown field (known: beir, file"),
        (("[stage1, cascade]", "[stage1, stage3]"), "verdicts[1]", 8, "unknown value 'stage3'; expected one of"),
        (("name: tiny", "name: tiny\nseeds: [1, 1]"), "seeds", 2, "a seed is listed twice"),
        (("name: tiny", "name: tiny\nevaluation: {alpha: 5}"), "evaluation.alpha", 2, "less than 1"),
        (("name: tiny", "name: tiny\npath: elsewhere"), "path", 2, "unknown field (known: ce_distill, engine"),
    ],
)
def test_each_problem_names_its_field_and_line(
    tmp_path: Path, change: tuple[str, str], field: str, line: int, says: str
) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace(*change)
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    assert (info.value.problem.field, info.value.problem.line) == (field, line)
    assert says in info.value.problem.message


def test_sections_stay_the_mappings_given(tmp_path: Path) -> None:
    """The sections enter the steps' cache keys: validating them adds no key and changes no value."""
    text = BASE.format(beir=sample_beir_dir()).replace("[default, rlhn]", "[default, topk_percpos]")
    text += "evaluation: {metric: ndcg@10, k_values: [10]}\ntopk_percpos: {margin: 0.9}\ntraining: {epochs: 2}\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg.evaluation == {"metric": "ndcg@10", "k_values": [10]} and cfg.alpha == 0.05
    assert cfg.topk_percpos == {"margin": 0.9, "teacher": "dense:"}  # the teacher of a listed baseline is resolved
    assert cfg.training == {"epochs": 2} and cfg.ce_distill == {} and cfg.prune == {}
    assert cfg.raw["training"] == {"epochs": 2} and "output" in cfg.raw and cfg.path == (tmp_path / "exp.yaml")


def test_relabel_variants_need_a_judge(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir())
    text = text.replace("judge:\n  stages:\n    - {name: emb, backend: embedding, t_better: 0.9}\n", "")
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    assert info.value.problem.field == "judge"


def test_ready_file_source(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace(
        f"beir: {sample_beir_dir()}\n    split: train", f"file: {sample_train_path()}"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.train[0].file == sample_train_path().resolve()


def test_cli_exit_2_names_the_field(tmp_path: Path) -> None:
    text = BASE.format(beir=sample_beir_dir()).replace("[default, rlhn]", "[default, bogus]")
    path = write(tmp_path, text)
    result = CliRunner().invoke(app, ["experiment", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "variants[1]" in result.output
    assert "bogus" in result.output
    result = CliRunner().invoke(app, ["prune", str(path)])
    assert result.exit_code == 2


def test_plan_has_one_model_per_variant_and_seed(tmp_path: Path) -> None:
    from hardneg.experiment import plan_experiment

    text = BASE.format(beir=sample_beir_dir()).replace("name: tiny", "name: tiny\nseeds: [0, 1, 2]")
    text = text.replace("[default, rlhn]", "[default, rlhn, topk_percpos]")
    plan = plan_experiment(load_config(write(tmp_path, text)))
    ids = list(plan.graph.steps)
    trains = [i for i in ids if i.startswith("train/")]
    assert len(trains) == 4 * 3  # default, rlhn-stage1, rlhn-cascade, topk_percpos x 3 seeds
    assert "train/rlhn-stage1/seed2" in trains
    assert len([i for i in ids if i.startswith("evaluate/")]) == 4 * 3
    # topk_percpos needs mining scores: mining is asked to save them.
    assert plan.graph.steps["mine/sample"].config["options"]["save_scores"] is True
    # The seed is part of the training step's key, so each seed is its own cached model.
    assert plan.graph.steps["train/default/seed0"].config["seed"] == 0
    assert plan.graph.steps["train/default/seed1"].config["seed"] == 1
    # Nothing ran: the plan is only a graph.
    assert not (tmp_path / "out").exists()


def test_bad_training_option_fails_before_running(tmp_path: Path) -> None:
    from hardneg.errors import ConfigError
    from hardneg.experiment import plan_experiment

    text = BASE.format(beir=sample_beir_dir()) + "training: {epochz: 1}\n"
    with pytest.raises(ConfigError, match=r"training\.epochz"):
        plan_experiment(load_config(write(tmp_path, text)))
    assert not (tmp_path / "out").exists()


def test_engine_is_checked_and_stays_out_of_the_step_keys(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from hardneg.experiment import plan_experiment

    base = BASE.format(beir=sample_beir_dir())
    local = plan_experiment(load_config(write(tmp_path, base)))
    sized = base.replace("t_better: 0.9}", "t_better: 0.9, workers: 4, batch_size: 8}")
    ray = load_config(write(tmp_path, "engine: ray\nray_address: 127.0.0.1:6379\n" + sized))
    assert (ray.engine, ray.ray_address) == ("ray", "127.0.0.1:6379")
    on_ray = plan_experiment(ray)
    # the same results on both engines and at any pool size: every cached step is shared
    for step in ("mine/sample", "judge/cascade"):
        assert on_ray.graph.steps[step].config == local.graph.steps[step].config
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, "engine: spark\n" + base))
    assert info.value.problem.field == "engine" and "local, ray" in str(info.value)
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, "ray_address: 127.0.0.1:6379\n" + base))
    assert info.value.problem.field == "ray_address"


@pytest.mark.slow
def test_the_judge_step_runs_on_ray(ray_local: object, tmp_path: Path) -> None:
    """The experiment's judge step on the Ray engine stores what the local engine stores."""
    from hardneg.data.io import read_instances, write_instances
    from hardneg.experiment.runner import TRAIN_FILE, _judge_step
    from hardneg.experiment.steps import StepContext
    from hardneg.judging import JudgmentStore

    data = tmp_path / "data"
    data.mkdir()
    write_instances(data / TRAIN_FILE, read_instances(sample_train_path()))
    cascade = {"name": "emb", "stages": [{"name": "emb", "backend": "embedding", "t_better": 0.6, "workers": 2}]}
    found = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        out.mkdir()
        ctx = StepContext(out, {"data": data}, {}, {}, tmp_path, lambda _: None)
        run = _judge_step(cascade, tmp_path / f"{engine}.sqlite", {"engine": engine, "ray_address": None})
        summary = run(ctx)
        assert summary["report"]["stages"][0]["judged_now"] == 24
        with JudgmentStore(tmp_path / f"{engine}.sqlite", readonly=True) as store:
            found[engine] = {(j.query_id, j.config_hash): j.scores for j in store.iter_judgments()}
        found[engine + " verdicts"] = (out / "verdicts.cascade.jsonl").read_text()
    assert found["ray"] == found["local"]
    assert found["ray verdicts"] == found["local verdicts"]
