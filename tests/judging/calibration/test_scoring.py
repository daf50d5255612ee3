"""Calibration scoring: pair scores fused across judges."""

from __future__ import annotations

from hardneg.analysis.labels import labels_from_verdicts
from hardneg.judging.calibration import fuse_scores


def test_labels_from_verdicts_and_fusion_of_pair_scores() -> None:
    labels = labels_from_verdicts([("q1", ["a", "b", "c"], ["b"], ["c"])]).graded
    assert labels == {("q1", "a"): 0, ("q1", "b"): 2, ("q1", "c"): 1}
    fused = fuse_scores([{("q1", "a"): 0.9, ("q1", "b"): 0.1}, {("q1", "a"): 0.2, ("q1", "b"): 0.7}])
    assert fused == {("q1", "a"): 0.5, ("q1", "b"): 0.5}
