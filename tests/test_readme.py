"""The README's "From Python" example runs as written (on the sample that ships with hardneg)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_example() -> str:
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's From Python section has no python block"
    return blocks[0]


def test_the_example_is_short() -> None:
    lines = [line for line in _python_example().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 18


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(_python_example(), str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(old)
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed
    assert (tmp_path / "judgments.sqlite").is_file() and (tmp_path / "models" / "rlhn").is_dir()
