"""Fixtures for the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.judging.importer import import_judgments
from hardneg.judging.store import JudgmentStore


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, rlhn_stage1: Path, rlhn_stage2: Path) -> Path:
    """A store with the real rlhn-sample's verdicts imported (GPT-4o-mini at stage 1, GPT-4o at stage 2); one per
    test module."""
    path = tmp_path_factory.mktemp("cli") / "judgments.db"
    with JudgmentStore(path) as store:
        import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
        import_judgments([rlhn_stage2], 2, "gpt-4o", store)
    return path
