"""The pairs a researcher reads first: a seeded sample of flagged (query, negative) pairs, and the unflagged negatives
the first stage scored highest ("close"), each with its texts, every stage's score and verdict, and a human grade."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hardneg.analysis.report.flags import flagged_docids
from hardneg.data.io import read_instances


def _stage_verdicts(store: Any) -> dict[int, dict[str, Any]]:
    """{stage: {query_id: verdict}} of the store's current run (empty without one)."""
    run = store.current_run()
    views = dict(run["views"]) if run else {}
    return {k: {v.query_id: v for v in store.iter_verdicts(stage=k, view_hash=view)} for k, view in views.items()}


def _choose(
    verdicts: dict[str, Any], first_stage: dict[str, Any], *, per_kind: int, seed: int, tags: str
) -> list[tuple[str, str, str]]:
    """(kind, query_id, docid): up to `per_kind` flagged pairs (seeded sample) and `per_kind` close ones."""
    flagged = sorted((q, d) for q, v in verdicts.items() if v.status == "ok" for d in flagged_docids(v, tags))
    flagged = sorted(random.Random(seed).sample(flagged, min(per_kind, len(flagged))))
    close: list[tuple[float, str, str]] = []
    for qid, v in first_stage.items():
        final = verdicts.get(qid)
        if v.status != "ok" or not v.raw_scores or final is None or final.status != "ok":
            continue
        flags = flagged_docids(final, tags)
        close.extend((-score, qid, d) for d, score in v.raw_scores.items() if d not in flags)
    return [("flagged", q, d) for q, d in flagged] + [("close", q, d) for _, q, d in sorted(close)[:per_kind]]


def _stage_cells(by_stage: dict[int, dict[str, Any]], qid: str, docid: str) -> list[dict[str, Any]]:
    """Every stage's score and verdict on one pair, "not judged" where the stage did not see it."""
    stages = []
    for k in sorted(by_stage):
        v = by_stage[k].get(qid)
        if v is None or docid not in v.docids:
            stages.append({"stage": k, "score": None, "verdict": "not judged"})
            continue
        label = "better" if docid in v.better else "worse" if docid in v.worse else "—"
        score = (v.raw_scores or {}).get(docid, (v.scores or {}).get(docid))
        stages.append({"stage": k, "score": score, "verdict": label if v.status == "ok" else v.status})
    return stages


def collect_pairs(
    store: Any,
    instances: str | Path | Any,
    *,
    verdicts: dict[str, Any],
    grades: dict[tuple[str, str], float] | None = None,
    per_kind: int = 30,
    seed: int = 0,
    tags: str = "both",
) -> list[dict[str, Any]]:
    """What a researcher reads first: a seeded sample of the flagged (query, negative) pairs, and the unflagged
    negatives the first stage scored highest ("close"), each with the query, the positive and the negative side by
    side, every stage's score and verdict, and the human grade when `grades` are given (a testbed's qrels)."""
    by_stage = _stage_verdicts(store)
    chosen = _choose(verdicts, by_stage.get(1, {}), per_kind=per_kind, seed=seed, tags=tags)
    wanted = {q for _, q, _ in chosen}
    source = read_instances(instances) if isinstance(instances, str | Path) else instances
    texts = {inst.query_id: inst for inst in source if inst.query_id in wanted}
    rows = []
    for kind, qid, docid in chosen:
        inst = texts.get(qid)
        if inst is None or docid not in set(inst.negative_ids):
            continue
        rows.append(
            {
                "kind": kind,
                "query_id": qid,
                "docid": docid,
                "query": inst.query,
                "positive": inst.positives[0].text if inst.positives else "",
                "negative": inst.negative(docid).text,
                "stages": _stage_cells(by_stage, qid, docid),
                "grade": None if grades is None else grades.get((qid, docid)),
            }
        )
    return rows
