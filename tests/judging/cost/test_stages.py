"""Stage specs read from a cascade file: the judge kind decides batch pricing; bad files are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.errors import ConfigError
from hardneg.judging.cost.stages import load_stage_specs


def test_load_stage_specs_reads_the_batch_stage(tmp_path: Path) -> None:
    config = tmp_path / "cascade.yaml"
    config.write_text(
        "stages:\n"
        "  - {name: cheap, backend: openai, params: {model: gpt-4o-mini, template: stage1}}\n"
        "  - {name: strong, backend: openai-batch, params: {model: gpt-4o, template: stage2}}\n"
    )
    specs = load_stage_specs(config)
    assert [s.batch for s in specs] == [False, True]


def test_a_cascade_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as error:
        load_stage_specs(missing)
    assert str(error.value) == f"{missing}: No such file or directory"
    broken = tmp_path / "broken.yaml"
    broken.write_text("stages: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML: "):
        load_stage_specs(broken)
