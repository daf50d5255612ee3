"""A score judge's record grows: the answer for more negatives is merged into the record of the call.

A score (pointwise) judge scores each negative on its own, so when routing later asks for more negatives of an
instance, only the new ones are sent and their scores join the record (`merge_scores`); a verdict (listwise)
judge's answer depends on the whole list shown, so another list is another record instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardneg.judging.base import config_hash
from hardneg.judging.store.records import Records
from hardneg.judging.verdicts import JudgeOutput, Judgment


def merged_output(old: Judgment, output: JudgeOutput, order: Sequence[str] | None) -> JudgeOutput:
    """The record `old` with the answer `output` for more of its negatives (see `ScoreMerge.merge_scores`)."""
    merged = old.to_output()
    extra = dict(old.extra)
    if output.status == "ok":
        scores = {**(old.scores or {}), **(output.scores or {})}
        new_ids = [d for d in output.docids if d not in set(old.docids)]
        docids = [*old.docids, *new_ids]
        if order is not None:
            rank = {d: i for i, d in enumerate(order)}
            docids.sort(key=lambda d: rank.get(d, len(rank)))
        merged.docids, merged.scores = docids, scores
        merged.better = merged.worse = None  # flags are derived again by the cascade
        merged.tokens_in += output.tokens_in
        merged.tokens_out += output.tokens_out
        merged.latency_s += output.latency_s
        if output.raw_response:
            merged.raw_response = "\n".join(t for t in (old.raw_response, output.raw_response) if t)
        extra.pop("extend_failed", None)
        extra["calls"] = int(extra.get("calls", 1)) + 1
    else:
        failed = dict(extra.get("extend_failed") or {})
        extra["extend_failed"] = {
            "attempts": int(failed.get("attempts", 0)) + 1,
            "reason": output.reason or output.status,
            "docids": list(output.docids),
        }
    merged.extra = extra
    return merged


class ScoreMerge(Records):
    """Merging a score judge's answers into its records (see the module docstring)."""

    def merge_scores(
        self,
        query_id: str,
        stage: int,
        judge_name: str,
        config: dict[str, Any],
        output: JudgeOutput,
        *,
        order: Sequence[str] | None = None,
    ) -> Judgment:
        """Add a score judge's answer for more negatives to its record of (query_id, stage, config).

        Scores are per docid, so an ok answer extends the record's docids and scores (in `order`, the instance's
        negatives, where given) and adds its tokens. A failed answer leaves the scores as they were and counts the
        failure in `extra["extend_failed"]` (attempts, reason), so the cascade can bound its retries. Without an
        ok record this is `put`. One transaction; returns the record as stored.
        """
        chash = config_hash(config)
        with self._transaction():
            old = self.get(query_id, stage, chash, docset="")
            if old is None or old.status != "ok":
                self._upsert(query_id, stage, judge_name, config, output, "", True)
            else:
                merged = merged_output(old, output, order)
                self._upsert(
                    query_id, stage, judge_name, config, merged, "", True, attempts=old.attempts + 1, force=True
                )
        found = self.get(query_id, stage, chash, docset="")
        assert found is not None
        return found
