"""A score judge's record grows: answers for more negatives are merged into it, failures are counted."""

from __future__ import annotations

from pathlib import Path

from hardneg.judging.base import JudgeOutput, config_hash
from hardneg.judging.store import JudgmentStore


def test_merge_scores_extends_a_score_record_and_bounds_failures(tmp_path: Path) -> None:
    cfg = {"backend": "embedding", "model": "minilm", "stage": 1}
    chash = config_hash(cfg)
    order = ["a", "b", "c", "d"]
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q", 1, "emb", cfg, JudgeOutput(["c", "a"], scores={"c": 0.3, "a": 0.9}, tokens_in=5))
        failed_ext = JudgeOutput(["d"], status="failed", reason="HTTP 503")
        rec = store.merge_scores("q", 1, "emb", cfg, failed_ext, order=order)
        assert rec.status == "ok" and rec.scores == {"c": 0.3, "a": 0.9} and rec.attempts == 2
        assert rec.extra["extend_failed"] == {"attempts": 1, "reason": "HTTP 503", "docids": ["d"]}
        more = JudgeOutput(["d", "b"], scores={"d": 0.1, "b": 0.5}, tokens_in=3)
        rec = store.merge_scores("q", 1, "emb", cfg, more, order=order)  # docids in the instance's order
        assert rec.docids == ["a", "b", "c", "d"] and rec.scores == {"a": 0.9, "b": 0.5, "c": 0.3, "d": 0.1}
        assert rec.tokens_in == 8 and rec.attempts == 3 and "extend_failed" not in rec.extra
        assert store.count() == 1 and store.get("q", 1, chash) == rec
        # no ok record yet: merging is putting
        rec = store.merge_scores("q2", 1, "emb", cfg, JudgeOutput(["a"], scores={"a": 0.2}))
        assert rec.docids == ["a"] and rec.attempts == 1
