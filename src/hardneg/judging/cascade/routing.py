"""What a stage's stored judgments mean under a cascade: call identities, view keys, thresholds, fusion, routing.

Nothing here calls a judge: a verdict is derived from a stored record, so changing thresholds, fusion or routing
costs no call.
"""

from __future__ import annotations

import math
from typing import Any

from hardneg.judging.base import Judge
from hardneg.judging.cascade.config import StageConfig
from hardneg.judging.verdicts import Judgment, StageVerdict
from hardneg.retrieval.fusion import rank_average

# The settings applied when reading a stage's records: they never change a call, only the verdicts derived.
POST_PROCESSING = (
    "mode",
    "t_better",
    "t_worse",
    "fuse",
    "min_raw_score",
    "candidates",
    "route",
    "route_top",
    "route_min_score",
)


def call_key(stage_number: int, stage: StageConfig, judge: Judge) -> dict[str, Any]:
    """What a judge call depends on: the judge's own config (backend, model, template, generation parameters,
    prompt format) and the stage number; never thresholds, fusion or routing. Its hash keys the records."""
    return {"backend": stage.backend, "model": judge.model_name, "judge": judge.config(), "stage": stage_number}


def view_key(stage: StageConfig, call_hash: str, upstream_view: str | None) -> dict[str, Any]:
    """What a stage's derived verdicts depend on: its records, its post-processing and the view above it."""
    return {"call": call_hash, "upstream": upstream_view, **{name: getattr(stage, name) for name in POST_PROCESSING}}


# --- routing ------------------------------------------------------------------------------------------------
def routed_on(stage: StageConfig, record: Judgment | StageVerdict | None) -> list[str] | None:
    """The negatives `stage` passes on to the next stage for this record, or None if the instance stops here."""
    if record is None or record.status != "ok":
        return None
    scores = record.scores or {}
    flagged = record.flagged
    threshold = stage.route_threshold
    if stage.route == "any":
        go = bool(flagged)
    elif stage.route == "better":
        go = bool(record.better)
    else:
        go = any(s >= threshold for s in scores.values())  # type: ignore[operator]
    if not go:
        return None
    if stage.route_top is not None or stage.route_min_score is not None:
        ranked = sorted(record.docids, key=lambda d: -scores.get(d, -math.inf))
        keep = set(ranked)
        if stage.route_top is not None:
            keep &= set(ranked[: max(1, math.ceil(stage.route_top * len(ranked)))])
        if stage.route_min_score is not None:
            keep &= {d for d in ranked if scores.get(d, -math.inf) >= stage.route_min_score}
        passed = [d for d in record.docids if d in keep]
    elif threshold is not None:
        passed = [d for d in record.docids if scores.get(d, -math.inf) >= threshold]
    elif stage.route == "better":
        passed = list(record.better or [])
    else:
        passed = flagged
    return passed or None


# --- deriving verdicts --------------------------------------------------------------------------------------
def _verdict_from_scores(
    stage: StageConfig, docids: list[str], scores: dict[str, float], raw: dict[str, float]
) -> tuple[list[str], list[str]]:
    t_better, t_worse = stage.t_better, stage.t_worse
    gate = stage.min_raw_score
    eligible = [d for d in docids if gate is None or raw[d] >= gate]
    better = [d for d in eligible if scores[d] >= t_better]  # type: ignore[operator]
    worse = [d for d in eligible if t_worse <= scores[d] < t_better]  # type: ignore[operator]
    return better, worse


def _fuse(scores: dict[str, float], earlier: list[dict[str, float]]) -> dict[str, float]:
    """Rank-average this stage's scores with earlier stages' (ranks taken within the instance).

    Earlier stages keep every negative they scored, so a negative's earlier rank is its rank among all the
    instance's negatives, as in calibration (`hardneg.judging.calibration.fuse_scores`).
    """
    fused = rank_average([*earlier, scores])
    return {d: float(fused[d]) for d in scores}


def derive_verdict(
    stage: StageConfig,
    stage_number: int,
    view_hash: str,
    record: Judgment,
    docids: list[str],
    earlier: list[dict[str, float]],
) -> StageVerdict:
    """A stage's verdict on `docids` of one instance from its stored record: thresholds, fusion (with the earlier
    stages' raw scores) and routing applied. No call is made; a record that failed gives a failed verdict."""
    base: dict[str, Any] = {
        "query_id": record.query_id,
        "stage": stage_number,
        "view_hash": view_hash,
        "config_hash": record.config_hash,
        "judge_name": record.judge_name,
        "docids": list(docids),
    }
    if record.status != "ok":
        return StageVerdict(**base, status=record.status, reason=record.reason, better=[], worse=[])
    if stage.mode == "verdict":
        if record.better is None or record.worse is None:
            reason = "listwise stage: the judge returned no better/worse verdict"
            return StageVerdict(**base, status="failed", reason=reason, better=[], worse=[])
        scores = {d: record.scores[d] for d in docids if d in record.scores} if record.scores else None
        verdict = StageVerdict(**base, status="ok", reason="", better=list(record.better), worse=list(record.worse))
        verdict.scores = scores
    else:
        stored = record.scores or {}
        missing = [d for d in docids if d not in stored]
        if missing:
            why = (record.extra.get("extend_failed") or {}).get("reason") or "not judged"
            reason = f"no score for {len(missing)} routed negative(s): {why}"
            return StageVerdict(**base, status="failed", reason=reason, better=[], worse=[])
        raw = {d: float(stored[d]) for d in docids}
        used = _fuse(raw, earlier) if stage.fuse == "rank-average" and earlier else raw
        better, worse = _verdict_from_scores(stage, list(docids), used, raw)
        verdict = StageVerdict(**base, status="ok", reason="", better=better, worse=worse, scores=used, raw_scores=raw)
    verdict.routed = routed_on(stage, verdict)
    return verdict
