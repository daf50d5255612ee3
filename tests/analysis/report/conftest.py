"""A small judgment store for the report's tests: two stages with tokens, a parse error at stage 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.judging.base import JudgeOutput
from hardneg.judging.store import JudgmentStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "j.db"
    store = JudgmentStore(path)
    docids = [f"d{i}" for i in range(10)]
    for q in range(12):  # stage 1 flags 7 of 12 queries; stage 2 keeps 3 of those 7 and fails one
        better = docids[: q % 3] if q < 7 else []
        worse = [docids[9]] if q < 7 else []
        store.put(
            f"q{q}",
            1,
            "mini",
            {"model": "gpt-4o-mini"},
            JudgeOutput(docids, better=better, worse=worse, tokens_in=3800, tokens_out=950),
        )
    for q in range(7):
        out = JudgeOutput(docids, better=[docids[0]] if q < 3 else [], worse=[], tokens_in=4000, tokens_out=1100)
        if q == 6:
            out = JudgeOutput(docids, status="parse_error", reason="no <verdict> section")
        store.put(f"q{q}", 2, "big", {"model": "gpt-4o"}, out)
    store.close()
    return path
