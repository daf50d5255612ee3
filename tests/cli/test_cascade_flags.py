"""`--stage1` / `--stage2` flags become a two-stage cascade config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.errors import ConfigError


def test_two_stage_config_from_flags(tmp_path: Path) -> None:
    from hardneg.cli.cascade_flags import config_from_flags

    cfg = config_from_flags("openai:gpt-4o-mini", "openai-batch:gpt-4o")
    s1, s2 = cfg.stages
    assert (s1.backend, s1.params, s1.mode, s1.route) == (
        "openai",
        {"model": "gpt-4o-mini", "template": "stage1"},
        "verdict",
        "any",
    )
    assert (s2.backend, s2.params["model"], s2.params["template"], s2.candidates) == (
        "openai-batch",
        "gpt-4o",
        "stage2",
        "all",
    )
    custom = tmp_path / "fig6.txt"
    custom.write_text("{query} {positives} {documents}", encoding="utf-8")
    assert config_from_flags("openai:m", "openai:n", str(custom)).stages[1].params["template"] == str(custom)
    with pytest.raises(ConfigError, match="unknown judge backend 'gpt'"):
        config_from_flags("gpt:4o")
