"""Judgment records: upserts, attempts and the retry bound, and one record per docid list for a listwise judge."""

from __future__ import annotations

from pathlib import Path

from hardneg.judging.base import JudgeOutput, config_hash
from hardneg.judging.store import JudgmentStore
from hardneg.judging.store.records import docids_key
from support.store_outputs import CFG, CFG2, failed, ok, put_two_stages


def test_put_get_roundtrip(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        out = ok(["b"], ["c"])
        out.scores = {"a": 0.1, "b": 0.9, "c": 0.5}
        out.extra = {"note": 1}
        store.put("q1", 1, "stage1", CFG, out)
        got = store.get("q1", 1, config_hash(CFG))
        assert got is not None
        assert (got.query_id, got.stage, got.judge_name, got.backend, got.model) == (
            "q1",
            1,
            "stage1",
            "openai",
            "gpt-4o-mini",
        )
        assert got.params == CFG and got.template_hash == "abc" and got.docids == ["a", "b", "c"]
        assert (got.better, got.worse, got.scores, got.extra) == (["b"], ["c"], out.scores, {"note": 1})
        assert (got.tokens_in, got.tokens_out, got.latency_s, got.status, got.attempts) == (100, 20, 0.5, "ok", 1)
        assert got.flagged == ["b", "c"]
        assert got.created_at <= got.updated_at
        assert store.get("q1", 2, config_hash(CFG)) is None
        assert store.get("q1", 1, config_hash(CFG2)) is None
        assert got.to_output().better == ["b"]


def test_failures_count_attempts_and_retry_bound(tmp_path: Path) -> None:
    chash = config_hash(CFG)
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q1", 1, "s1", CFG, failed("timeout"))
        store.put("q2", 1, "s1", CFG, ok([], []))
        assert store.done_ids(1, chash, 3) == {"q2"}
        store.put("q1", 1, "s1", CFG, JudgeOutput(docids=["a"], status="parse_error", reason="no <verdict> section"))
        rec = store.get("q1", 1, chash)
        assert rec is not None and rec.status == "parse_error" and rec.attempts == 2
        assert rec.reason == "no <verdict> section"
        assert store.done_ids(1, chash, 3) == {"q2"}
        store.put("q1", 1, "s1", CFG, failed())
        assert store.done_ids(1, chash, 3) == {"q1", "q2"}  # failed too often: given up
        assert store.done_ids(1, chash, 4) == {"q2"}
        # a success after failures replaces the failure; a failure never replaces a success
        store.put("q1", 1, "s1", CFG, ok(["a"], []))
        store.put("q1", 1, "s1", CFG, failed())
        rec = store.get("q1", 1, chash)
        assert rec is not None and rec.status == "ok" and rec.better == ["a"] and rec.attempts == 4
        assert store.count() == 2


def test_records_are_counted_listed_and_summed_per_stage(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        put_two_stages(store)
        assert (store.count(), store.count(stage=2), store.count(config_hash=config_hash(CFG))) == (5, 2, 3)
        summary = {(s["stage"], s["judge_name"]): s for s in store.stage_summary()}
        assert summary[(1, "mini")]["records"] == 3 and summary[(1, "mini")]["flagged"] == 2
        assert summary[(2, "big")]["failed"] == 1 and summary[(2, "big")]["tokens_in"] == 100
        assert [j.query_id for j in store.iter_judgments(stage=2, status="ok")] == ["q1"]
        assert len(list(store.iter_judgments(judge_name="mini"))) == 3
        assert [j.query_id for j in store.iter_judgments(config_hash=config_hash(CFG2))] == ["q1", "q3"]


def test_listwise_records_per_docid_list(tmp_path: Path) -> None:
    chash = config_hash(CFG)
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q", 1, "mini", CFG, ok(["a"], [], ["a", "b"]), docset=docids_key(["a", "b"]))
        store.put("q", 1, "mini", CFG, ok([], ["c"], ["a", "b", "c"]), docset=docids_key(["a", "b", "c"]))
        assert store.count() == 2
        assert store.get("q", 1, chash, docids=["a", "b"]).better == ["a"]  # type: ignore[union-attr]
        assert store.get("q", 1, chash, docids=["b", "a"]) is None  # another order is another prompt
        assert store.get("q", 1, chash).worse == ["c"]  # type: ignore[union-attr]  # without a list: the latest
