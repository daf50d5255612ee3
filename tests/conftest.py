"""Fixtures shared by the whole suite.

Real data lives in ../shared/data beside the checkout (CI has it; a user's fresh clone may not):
tests that need it use these fixtures and skip with a clear reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HARDNEG_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is absent: a fresh clone)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def rlhn_stage1() -> Path:
    """25 FiQA instances judged by GPT-4o-mini (reference-implementation rows)."""
    return _need(SHARED_DATA / "rlhn-sample" / "fiqa.stage_1.gpt-4o-mini.jsonl.gz")


@pytest.fixture(scope="session")
def rlhn_stage2() -> Path:
    """The 17 routed FiQA instances judged by GPT-4o."""
    return _need(SHARED_DATA / "rlhn-sample" / "fiqa.stage_2.gpt-4o.jsonl.gz")


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    return _need(SHARED_DATA / "scifact")


@pytest.fixture(scope="session")
def arguana_dir() -> Path:
    return _need(SHARED_DATA / "arguana")
