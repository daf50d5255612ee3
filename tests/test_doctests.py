"""The `>>>` examples in the library's docstrings run, as written, on the shipped sample (in a temp folder)."""

from __future__ import annotations

import doctest
import importlib
import os
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts)
    for path in (SRC / "hardneg").rglob("*.py")
    if ">>> " in path.read_text(encoding="utf-8")
)


def test_the_examples_are_found() -> None:
    assert "hardneg.judging.run" in MODULES and "hardneg.pipeline" in MODULES  # the finder cannot go blind


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path) -> None:
    module = importlib.import_module(name)
    here = Path.cwd()
    os.chdir(tmp_path)  # an example that writes a file writes it here
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    finally:
        os.chdir(here)
    assert result.attempted > 0, f"{name}: no example found"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (see the output above)"
