"""Calibrating pointwise judges: thresholds tuned on one half of the queries, measured on the other."""

from hardneg.judging.calibration.scoring import (
    CALIBRATION_JUDGES,
    build_scoring_judges,
    fuse_scores,
    run_calibration,
    score_instances,
)
from hardneg.judging.calibration.thresholds import (
    CalibrationResult,
    RoutingResult,
    calibrate,
    routing_threshold,
    split_queries,
    tune_threshold,
)

__all__ = [
    "CALIBRATION_JUDGES",
    "CalibrationResult",
    "RoutingResult",
    "build_scoring_judges",
    "calibrate",
    "fuse_scores",
    "routing_threshold",
    "run_calibration",
    "score_instances",
    "split_queries",
    "tune_threshold",
]
