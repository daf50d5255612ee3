"""Every shell and Python block of README.md and docs/*.md runs as written, or is checked where it cannot run
(tests/docs/harness.py says how); every inline `hardneg ...` / `python bench/...` command names real verbs and
options."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs import harness


def _marks(block: harness.Block) -> list[pytest.MarkDecorator]:
    try:
        marker = block.marker
    except ValueError:
        return []  # the test fails and says why
    marks = []
    if marker.kind == "run" or block.lang in harness.PYTHON:
        marks.append(pytest.mark.slow)  # runs hardneg, or mypy
    if harness.needs_shared(block):
        marks.append(pytest.mark.shared)
    return marks


BLOCKS = [pytest.param(block, id=block.id, marks=_marks(block)) for block in harness.tested_blocks()]


@pytest.mark.parametrize("block", BLOCKS)
def test_block(block: harness.Block) -> None:
    marker = block.marker  # a block without a marker fails here, naming the marker to add
    if marker.kind == "run":
        harness.runner().run(block)
    else:
        problems = harness.check(block)
        assert not problems, f"{block.where} (check {','.join(marker.tags)}):\n" + "\n".join(problems)


def test_markers_sit_only_on_shell_and_python_blocks() -> None:
    misplaced = [b.where for b in harness.all_blocks() if b.marker_text is not None and not b.tested]
    assert not misplaced, f"docs-test markers on blocks that are never run (yaml, text, ...): {misplaced}"


def test_the_docs_have_blocks_of_every_handling() -> None:
    kinds = {(b.lang in harness.PYTHON, b.marker.kind) for b in harness.tested_blocks()}
    assert kinds >= {(False, "run"), (False, "check"), (True, "run"), (True, "check")}, kinds


@pytest.mark.parametrize("page", harness.PAGES, ids=lambda page: page.name)
def test_inline_commands_name_real_verbs_and_options(page: Path) -> None:
    problems = [f"`{span}`: {p}" for span in harness.inline_commands(page) for p in harness.check_inline(span)]
    assert not problems, f"{page.relative_to(harness.ROOT)}:\n" + "\n".join(problems)
