"""The published baselines of `hardneg experiment`: TopK-PercPos under a named teacher, and cross-encoder
distillation (`ce_distill`), from the config to a trained and evaluated model."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.data.records import Instance, Passage
from hardneg.errors import InputError
from hardneg.experiment import load_config, plan_experiment, run_experiment
from hardneg.experiment.baselines import topk_percpos
from hardneg.experiment.config import TRAINED_TEACHER
from hardneg.training.teacher import TEACHER_SCORE
from support.cross_encoder import sample_cross_encoder
from support.experiment_yaml import sample_experiment, write_yaml

TRAINING = "training: {epochs: 1, batch_size: 4, max_length: 48, negatives: 2, max_steps: 2}"


def config_text(variants: str, extra: str = "") -> str:
    body = f"mine: {{method: bm25, negatives: 4, range: 0-20}}\nvariants: {variants}\n{extra}\n{TRAINING}\n"
    return sample_experiment(body, name="baselines")


def write(tmp_path: Path, text: str) -> Path:
    return write_yaml(tmp_path, text)


def test_topk_percpos_rule() -> None:
    inst = Instance(
        "q", "query",
        [Passage("p1", "a", extra={TEACHER_SCORE: 0.8}), Passage("p2", "b", extra={TEACHER_SCORE: 0.6})],
        [Passage(f"n{i}", "n", extra={TEACHER_SCORE: s}) for i, s in enumerate([0.9, 0.58, 0.56, 0.1])],
    )  # fmt: skip
    ((kept, removed),) = list(topk_percpos([inst], 0.95))
    # 95% of the lowest positive's score (0.6) is 0.57: 0.9 and 0.58 are too close to be negatives.
    assert kept.negative_ids == ["n2", "n3"] and removed == 2
    negative = Instance(
        "q", "query", [Passage("p", "a", extra={"score": -2.0})], [Passage("n", "n", extra={"score": -2.05})]
    )
    ((kept, removed),) = list(topk_percpos([negative], 0.95, key="score"))
    # Sign-safe: the threshold for -2.0 is -2.1 (0.95 x -2.0 = -1.9 would let the closer -2.05 through).
    assert removed == 1
    ((kept, removed),) = list(topk_percpos([negative], 1.0, key="score"))
    assert removed == 0
    with pytest.raises(InputError) as info:
        list(topk_percpos([Instance("q", "x", [Passage("p", "a")], [])], 0.95, source="rows.jsonl"))
    assert info.value.problem.field == TEACHER_SCORE and info.value.problem.line == 1


def test_teachers_are_named_and_resolved(tmp_path: Path) -> None:
    folder = tmp_path / "my-ce"
    folder.mkdir()
    text = config_text(
        "[topk_percpos, ce_distill]",
        "topk_percpos: {margin: 0.9, teacher: cross-encoder:my-ce}\n"
        "ce_distill: {teacher: cross-encoder:my-ce, loss: kl_div}",
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.name == "baselines"  # the baseline sections leave the experiment's own fields alone
    assert cfg.topk_percpos["teacher"] == cfg.ce_distill["teacher"] == f"cross-encoder:{folder.resolve()}"
    plan = plan_experiment(cfg)
    steps = plan.graph.steps
    # One teacher step for both baselines: the scores are computed once, keyed by the teacher and the data.
    teachers = [s for s in steps.values() if s.kind == "teacher"]
    assert len(teachers) == 1 and teachers[0].external == {"teacher": folder.resolve()}
    assert steps["variant/topk_percpos"].inputs == {"data": teachers[0].id}
    assert steps["variant/topk_percpos"].config["margin"] == 0.9
    assert steps["train/ce_distill/seed0"].inputs == {"data": teachers[0].id}
    assert steps["train/ce_distill/seed0"].config["options"]["loss"] == "kl_div"
    assert "loss" not in steps["train/default/seed0"].config["options"]
    assert plan.variant_steps["ce_distill"] == teachers[0].id

    # Defaults: TopK-PercPos under the embedded MiniLM; ce_distill with a cross-encoder trained here.
    plan = plan_experiment(load_config(write(tmp_path, config_text("[topk_percpos, ce_distill]"))))
    steps = plan.graph.steps
    assert steps["teacher/dense"].config["teacher"] == "dense:"
    assert steps["reranker/teacher"].kind == "reranker"
    trained = next(s for s in steps.values() if s.kind == "teacher" and "teacher" in s.inputs)
    assert trained.inputs["teacher"] == "reranker/teacher" and trained.config["teacher"] == "trained"
    assert steps["train/ce_distill/seed0"].config["options"]["loss"] == "margin_mse"

    # `teacher: mining` is the old behaviour: the mining scores, no teacher step.
    plan = plan_experiment(
        load_config(write(tmp_path, config_text("[topk_percpos]", "topk_percpos: {teacher: mining}")))
    )
    assert not [s for s in plan.graph.steps.values() if s.kind == "teacher"]
    assert plan.graph.steps["variant/topk_percpos"].inputs == {"data": "combine/all"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("topk_percpos: {teacher: bm25}", "topk_percpos.teacher"),
        ("topk_percpos: {teacher: cross-encoder:missing-folder}", "topk_percpos.teacher"),
        ("topk_percpos: {teacher: 'dense:', temperature: 1}", "topk_percpos.temperature"),
        ("ce_distill: {loss: infonce}", "ce_distill.loss"),
        ("ce_distill: {teacher: 'dense:'}", "ce_distill.teacher"),
        ("ce_distill: {teacher: mining}", "ce_distill.teacher"),
        ("ce_distill: {batch_size: 0}", "ce_distill.batch_size"),
    ],
)
def test_bad_baseline_options_name_the_field(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, config_text("[topk_percpos, ce_distill]", extra)))
    assert info.value.problem.field == field
    assert info.value.problem.line is not None


def test_bad_reranker_option_fails_before_running(tmp_path: Path) -> None:
    from hardneg.errors import ConfigError

    cfg = load_config(
        write(
            tmp_path,
            config_text("[ce_distill]", f"ce_distill: {{teacher: {TRAINED_TEACHER}}}\nreranker: {{loss: hinge}}"),
        )
    )
    with pytest.raises(ConfigError):
        plan_experiment(cfg)
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_topk_percpos_under_a_cross_encoder_teacher(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """The teacher step scores with the cross-encoder named, and the variant filters on exactly those scores."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from hardneg.data.io import read_instances
    from hardneg.data.records import passage_text

    ce = sample_cross_encoder(tmp_path_factory)
    text = config_text("[topk_percpos]", f"topk_percpos: {{margin: 0.99, teacher: cross-encoder:{ce}, backend: torch}}")
    plan = plan_experiment(load_config(write(tmp_path, text)))
    # Run only what the variant needs (mining, the teacher, the filter): no training.
    for step_id in [s for s in plan.graph.steps if s.startswith(("train/", "evaluate/", "variant/default"))]:
        del plan.graph.steps[step_id]
    records = {r.id: r for r in plan.graph.execute()}
    teacher = next(r for r in records.values() if r.kind == "teacher")
    scored = list(read_instances(teacher.folder / "train.jsonl.gz"))
    model = CrossEncoder(str(ce))
    for inst in scored[:5]:
        passages = [*inst.positives, *inst.negatives]
        expected = model.predict([(inst.query, passage_text(p, with_title=True)) for p in passages])
        assert [p.extra[TEACHER_SCORE] for p in passages] == pytest.approx(expected.tolist(), abs=1e-5)
    variant = records["variant/topk_percpos"]
    kept = {i.query_id: i for i in read_instances(variant.folder / "train.jsonl.gz")}
    removed = 0
    for inst in scored:
        floor = min(p.extra[TEACHER_SCORE] for p in inst.positives)
        limit = floor - abs(floor) * 0.01
        survivors = [n.docid for n in inst.negatives if n.extra[TEACHER_SCORE] <= limit]
        removed += len(inst.negatives) - len(survivors)
        assert (kept[inst.query_id].negative_ids if inst.query_id in kept else []) == survivors
    assert variant.summary["negatives_removed"] == removed > 0


@pytest.mark.slow
def test_ce_distill_trains_and_evaluates_end_to_end(tmp_path: Path) -> None:
    """Mining, a teacher cross-encoder trained here, its scores, MarginMSE training and evaluation (a few steps)."""
    text = config_text(
        "[ce_distill]",
        "ce_distill: {teacher: cross-encoder:train, loss: margin_mse, backend: torch}\n"
        "reranker: {negatives: 3, batch_size: 8, max_length: 48, max_steps: 3}",
    )
    cfg = load_config(write(tmp_path, text))
    result = run_experiment(cfg, plots=False)
    ran = {r.id: r for r in result.records}
    assert {r.status for r in result.records} == {"ran"}
    assert ran["reranker/teacher"].summary["steps"] == 3
    teacher = next(r for r in result.records if r.kind == "teacher")
    assert teacher.summary["teacher"] == TRAINED_TEACHER and teacher.summary["pairs_scored"] > 24
    train = ran["train/ce_distill/seed0"]
    assert train.summary["steps"] == 2
    meta = (train.folder / "model" / "hardneg_train.json").read_text()
    assert '"MarginMSELoss"' in meta and '"passage teacher scores"' in meta
    assert result.results is not None
    names = [v["name"] for v in result.results["variants"]]
    assert names == ["default", "ce_distill"]
    for variant in result.results["variants"]:
        assert 0.0 <= variant["scores"]["sample"]["mean"] <= 1.0
    # A second run reuses every step, the teacher's scores included.
    again = run_experiment(cfg, plots=False)
    assert {r.status for r in again.records} == {"cached"}
