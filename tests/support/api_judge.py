"""Helpers for the API-judge tests (fixtures in tests/judging/conftest.py): the served model's name and small
real instances a 135M model answers fast."""

from __future__ import annotations

from pathlib import Path

from hardneg.data.io import read_instances
from hardneg.data.records import Instance

KEY_ENV = "HARDNEG_TEST_API_KEY"
MODEL = "local-judge"


def small_instances(rlhn_stage1: Path, n: int, negatives: int = 3, chars: int = 120) -> list[Instance]:
    """The first n real FiQA instances, cut short (few negatives, short texts) so a 135M model answers fast."""
    out = []
    for instance in read_instances(rlhn_stage1):
        instance.negatives = instance.negatives[:negatives]
        instance.positives = instance.positives[:1]
        for passage in instance.positives + instance.negatives:
            passage.text = passage.text[:chars]
        instance.extra = {}
        out.append(instance)
        if len(out) == n:
            break
    return out
