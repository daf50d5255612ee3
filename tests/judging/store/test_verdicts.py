"""Stage verdicts: kept per view, dropped when stale, `pending` rows carry no verdict, a score record's flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.judging.base import JudgeOutput, config_hash
from hardneg.judging.store import PENDING, JudgmentStore, StageVerdict
from support.store_outputs import CFG


def derived(view: str, better: list[str], *, status: Any = "ok", query_id: str = "q") -> StageVerdict:
    """A listwise stage's verdict on ["a", "b"] under `view`, routing on what it flags."""
    chash = config_hash(CFG)
    return StageVerdict(query_id, 1, view, chash, "mini", ["a", "b"], status, "", better, [], routed=better or None)


def test_derived_verdicts_are_kept_per_view_and_dropped_when_stale(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put_verdicts([derived("v1", ["a"]), derived("v2", [])])
        v1 = store.get_verdict("q", 1, "v1")
        assert v1 is not None and v1.routed == ["a"] and v1.docids == ["a", "b"] and v1.scores is None
        assert store.get_verdict("q", 1, "v2").routed is None  # type: ignore[union-attr]
        assert [v.view_hash for v in store.iter_verdicts(stage=1)] == ["v1", "v2"]
        assert [v.view_hash for v in store.iter_verdicts(view_hash="v2")] == ["v2"]
        store.put_verdicts([derived("v2", ["b"])], delete=[("q", 1, "v1")])  # one transaction
        assert store.get_verdict("q", 1, "v1") is None
        assert store.get_verdict("q", 1, "v2").better == ["b"]  # type: ignore[union-attr]


def test_pending_rows_carry_no_verdict(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put_verdicts([derived("v1", [], status=PENDING), derived("v1", ["a"], query_id="q2")])
        assert store.get_verdict("q", 1, "v1") is None
        assert [v.query_id for v in store.iter_verdicts(stage=1)] == ["q2"]
        assert [v.query_id for v in store.iter_verdicts(stage=1, include_pending=True)] == ["q", "q2"]


def test_a_score_verdict_writes_its_flags_to_the_record(tmp_path: Path) -> None:
    cfg = {"backend": "embedding", "model": "minilm", "stage": 1}
    chash = config_hash(cfg)
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q", 1, "emb", cfg, JudgeOutput(["a", "b"], scores={"a": 0.9, "b": 0.1}))
        assert store.get("q", 1, chash).better is None  # type: ignore[union-attr]  # no derivation yet
        scores = {"a": 0.9, "b": 0.1}
        verdict = StageVerdict("q", 1, "v", chash, "emb", ["a", "b"], "ok", "", ["a"], [], scores, scores)
        store.put_verdicts([verdict])
        record = store.get("q", 1, chash)
        assert record is not None and (record.better, record.worse) == (["a"], [])
