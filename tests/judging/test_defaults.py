"""The calibrated defaults and the operating point per treatment: the treatment picks the shipped default judge's
cut, a config's own cut wins, and `cut_in_force` says which cut it is (figures only for the shipped judge)."""

from __future__ import annotations

import pytest

from hardneg.errors import ConfigError
from hardneg.judging import defaults
from hardneg.judging.cascade import load_default_config
from hardneg.judging.cascade.config import cut_in_force, parse_config
from hardneg.relabeling.treatments import TREATMENTS


def test_every_treatment_has_an_operating_point_that_fits_what_it_does() -> None:
    assert set(defaults.TREATMENT_POINTS) == set(TREATMENTS)
    for relabels in ("rlhn", "rlhn+filter", "default"):  # a wrong positive costs more than a lost negative
        assert defaults.TREATMENT_POINTS[relabels] == "precision-first"
    for removes in ("remove", "hn_remove"):
        assert defaults.TREATMENT_POINTS[removes] == "recall-first"
    precision_first, recall_first = (
        defaults.OPERATING_POINTS["precision-first"],
        defaults.OPERATING_POINTS["recall-first"],
    )
    # the objectives held where the cuts were chosen (the tuning half); the figures are the held-out half's
    assert precision_first["tune_precision"] >= 0.7 and recall_first["tune_recall"] >= 0.8
    assert recall_first["cut"] < precision_first["cut"]
    assert precision_first["n_pairs"] == recall_first["n_pairs"] == 100
    assert defaults.thresholds("embedding") == (precision_first["cut"], precision_first["cut"])


def test_the_default_config_carries_the_calibrated_operating_points() -> None:
    config = load_default_config()
    (stage,) = config.stages
    assert stage.t_better == defaults.OPERATING_POINTS["precision-first"]["cut"]  # `judge` and unlisted treatments
    for name, point in config.operating_points.items():
        assert point.t_better == point.t_worse == defaults.OPERATING_POINTS[name]["cut"]
        assert all(defaults.TREATMENT_POINTS[t] == name for t in point.treatments)
    assert {t for p in config.operating_points.values() for t in p.treatments} == set(TREATMENTS)


@pytest.mark.parametrize(
    ("treatment", "point"),
    [("rlhn", "precision-first"), ("rlhn+filter", "precision-first"), ("default", "precision-first"),
     ("remove", "recall-first"), ("hn_remove", "recall-first")],
)  # fmt: skip
def test_the_treatment_picks_the_default_judges_cut(treatment: str, point: str) -> None:
    config, name = load_default_config().for_treatment(treatment)
    assert name == point
    (stage,) = config.stages
    assert stage.t_better == stage.t_worse == defaults.OPERATING_POINTS[point]["cut"]
    cut = cut_in_force(config, name)
    assert cut["calibrated"] and cut["operating_point"] == point and cut["objective"] == defaults.OBJECTIVES[point]
    assert cut["held_out"]["precision"] == defaults.OPERATING_POINTS[point]["precision"]
    assert cut["held_out"]["recall"] == defaults.OPERATING_POINTS[point]["recall"]


def test_a_config_with_its_own_cut_keeps_it_whatever_the_treatment() -> None:
    own = parse_config({"stages": [{"name": "cos", "backend": "embedding", "params": {"score": "reference"},
                                    "t_better": 0.75}]})  # fmt: skip
    for treatment in TREATMENTS:
        config, name = own.for_treatment(treatment)
        assert name is None and config.stages[0].t_better == 0.75
    cut = cut_in_force(own)
    assert not cut["calibrated"] and cut["held_out"] is None and cut["t_better"] == 0.75


def test_a_configs_own_operating_points_are_used_but_not_called_calibrated() -> None:
    config = parse_config({
        "stages": [{"name": "cos", "backend": "embedding", "t_better": 0.9}],
        "operating_points": {"strict": {"treatments": ["rlhn"], "t_better": 0.8, "t_worse": 0.7}},
    })  # fmt: skip
    strict, name = config.for_treatment("rlhn")
    assert name == "strict" and (strict.stages[0].t_better, strict.stages[0].t_worse) == (0.8, 0.7)
    assert config.stages[0].t_better == 0.9  # the config itself is unchanged
    unlisted, none = config.for_treatment("remove")
    assert none is None and unlisted.stages[0].t_better == 0.9
    cut = cut_in_force(strict, name)
    assert cut["operating_point"] == "strict" and not cut["calibrated"] and cut["held_out"] is None


def test_a_calibrated_cut_on_another_judge_is_not_given_the_default_judges_figures() -> None:
    cut = defaults.OPERATING_POINTS["precision-first"]["cut"]
    other = parse_config({"stages": [{"name": "cos", "backend": "embedding", "params": {"score": "max"},
                                      "t_better": cut}]})  # fmt: skip
    assert not cut_in_force(other)["calibrated"]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ({"a": {"treatments": ["rlhn"], "t_better": 0.5}, "b": {"treatments": ["rlhn"], "t_better": 0.4}},
         "rlhn is already in a"),
        ({"a": {"treatments": ["relabel-all"], "t_better": 0.5}}, "unknown treatment"),
        ({"a": {"treatments": ["rlhn"], "t_better": 0.5, "t_worse": 0.6}}, "must be >= t_worse"),
        ({"a": {"treatments": [], "t_better": 0.5}}, "operating_points.a.treatments"),
    ],
)  # fmt: skip
def test_bad_operating_points_are_refused_naming_the_field(points: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="operating_points") as err:
        parse_config({"stages": [{"name": "cos", "backend": "embedding", "t_better": 0.9}], "operating_points": points})
    assert message in str(err.value)


def test_operating_points_need_a_score_stage_last() -> None:
    with pytest.raises(ConfigError, match="operating_points"):
        parse_config({
            "stages": [{"name": "list", "backend": "llm-listwise"}],
            "operating_points": {"a": {"treatments": ["rlhn"], "t_better": 0.5}},
        })  # fmt: skip
