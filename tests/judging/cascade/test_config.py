"""Cascade configs: validation errors name the field; the shipped default config and its calibrated thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

import support.lexical_judges  # noqa: F401 (registers the `lexical` backend the configs name)
from hardneg.errors import ConfigError
from hardneg.judging.cascade import load_cascade, parse_config

REPO = Path(__file__).resolve().parents[3]


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stages\.0: t_better \(0.1\) must be >= t_worse"):
        parse_config({"stages": [{"name": "a", "backend": "lexical", "t_better": 0.1, "t_worse": 0.5}]})
    with pytest.raises(ConfigError, match="t_better is required"):
        parse_config({"stages": [{"name": "a", "backend": "embedding"}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.route: .*'any', 'better' or 'score>=T'"):
        parse_config({"stages": [{"name": "a", "backend": "openai", "route": "maybe"}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.route_top"):
        parse_config({"stages": [{"name": "a", "backend": "lexical", "t_better": 1, "route_top": 1.5}]})
    with pytest.raises(ConfigError, match=r"stages\.0\.tbetter: Extra inputs"):
        parse_config({"stages": [{"name": "a", "backend": "lexical", "t_better": 1, "tbetter": 2}]})
    with pytest.raises(ConfigError, match="needs a score stage"):
        parse_config(
            {"stages": [{"name": "a", "backend": "openai", "route_top": 0.5}, {"name": "b", "backend": "openai"}]}
        )
    with pytest.raises(ConfigError, match="first stage sees every negative"):
        parse_config({"stages": [{"name": "a", "backend": "openai", "candidates": "routed"}]})
    with pytest.raises(ConfigError, match="stage names must be unique"):
        parse_config({"stages": [{"name": "a", "backend": "openai"}, {"name": "a", "backend": "openai"}]})
    with pytest.raises(ConfigError, match="stages: "):
        parse_config({"stages": []})
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - name: a\n    backend: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: bad YAML"):
        load_cascade(bad)
    good = tmp_path / "good.yaml"
    good.write_text("stages:\n  - {name: a, backend: openai, params: {model: gpt-4o-mini}}\n", encoding="utf-8")
    cfg = load_cascade(good)
    assert cfg.stages[0].mode == "verdict" and cfg.max_attempts == 3


def test_shipped_default_config_is_valid() -> None:
    from hardneg.judging.cascade import default_config_path, load_default_config

    assert default_config_path().is_file()
    (stage,) = load_default_config().stages  # the embedding judge alone: the LLM lost on held-out human labels
    assert (stage.backend, stage.candidates, stage.params["score"]) == ("embedding", "all", "reference")


def test_default_config_uses_the_calibrated_thresholds() -> None:
    from hardneg.judging import defaults
    from hardneg.judging.cascade import load_default_config

    (stage,) = load_default_config().stages
    assert (stage.t_better, stage.t_worse) == defaults.thresholds("embedding")
    assert defaults.HELD_OUT["embedding"]["n_pairs"] == 100  # measured on the held-out half, not the tuning one


def test_the_llm_example_uses_the_gpt4o_calibration() -> None:
    from hardneg.judging import defaults

    s1, s2 = load_cascade(REPO / "examples" / "judge-local-llm.yaml").stages
    assert (s1.backend, s1.route_top, s2.backend, s2.candidates, s2.fuse, s2.params["model"]) == (
        "embedding", 0.5, "llm-pointwise", "routed", "rank-average", "qwen2.5-coder-1.5b",
    )  # fmt: skip
    assert (s1.t_better, s1.t_worse) == tuple(defaults.FIQA_GPT4O["embedding"].values())
    assert s1.route_threshold == defaults.FIQA_GPT4O_ROUTE_MIN_SCORE
    assert (s2.t_better, s2.t_worse) == defaults.thresholds("llm-pointwise", fused=True)
    # the LLM's own cut gates the fused flags
    assert s2.min_raw_score == defaults.FIQA_GPT4O["llm-pointwise"]["t_worse"]
