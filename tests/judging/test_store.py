"""The SQLite judgment store: upserts, attempts, resume sets, final verdicts, concurrent reader."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hardneg.judging.base import JudgeOutput, config_hash
from hardneg.judging.store import JudgmentStore

CFG = {"backend": "openai", "model": "gpt-4o-mini", "template": "abc"}
CFG2 = {"backend": "openai", "model": "gpt-4o", "template": "abc"}


def ok(better: list[str], worse: list[str], docids: list[str] | None = None) -> JudgeOutput:
    return JudgeOutput(
        docids=docids or ["a", "b", "c"],
        better=better,
        worse=worse,
        raw_response="<verdict>...</verdict>",
        finish_reason="stop",
        tokens_in=100,
        tokens_out=20,
        latency_s=0.5,
        template_hash="abc",
    )


def failed(reason: str = "HTTP 500") -> JudgeOutput:
    return JudgeOutput(docids=["a", "b", "c"], status="failed", reason=reason)


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


def test_final_verdicts_highest_stage_and_filters(tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q1", 1, "mini", CFG, ok([], ["a"]))
        store.put("q2", 1, "mini", CFG, ok([], []))
        store.put("q3", 1, "mini", CFG, ok(["c"], []))
        store.put("q1", 2, "big", CFG2, ok(["b"], []))
        store.put("q3", 2, "big", CFG2, failed("rate limited"))
        final = store.final_verdicts()
        assert set(final) == {"q1", "q2", "q3"}
        assert (final["q1"].stage, final["q1"].better, final["q1"].worse) == (2, ["b"], [])
        assert (final["q2"].stage, final["q2"].status, final["q2"].better) == (1, "ok", [])
        assert (final["q3"].stage, final["q3"].status, final["q3"].reason) == (2, "failed", "rate limited")
        assert final["q3"].better == [] and final["q3"].worse == []
        only1 = store.final_verdicts({1: config_hash(CFG)})
        assert {v.stage for v in only1.values()} == {1} and only1["q3"].better == ["c"]
        other = store.final_verdicts({1: "0000000000000000"})
        assert other == {}
        summary = {(s["stage"], s["judge_name"]): s for s in store.stage_summary()}
        assert summary[(1, "mini")]["records"] == 3 and summary[(1, "mini")]["flagged"] == 2
        assert summary[(2, "big")]["failed"] == 1 and summary[(2, "big")]["tokens_in"] == 100
        assert [j.query_id for j in store.iter_judgments(stage=2, status="ok")] == ["q1"]
        assert len(list(store.iter_judgments(judge_name="mini"))) == 3


def test_wal_reader_sees_committed_rows_while_writer_open(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    writer = JudgmentStore(path)
    writer.put("q1", 1, "s", CFG, ok([], []))
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with JudgmentStore(path, readonly=True) as reader:
        assert reader.count() == 1
        writer.put("q2", 1, "s", CFG, ok([], []))  # the writer is not blocked by an open reader
        assert reader.count() == 2
    writer.close()
    with JudgmentStore(path) as again:  # reopening keeps everything
        assert again.done_ids(1, config_hash(CFG)) == {"q1", "q2"}


def test_old_schema_store_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import pytest

    from hardneg.errors import ConfigError

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the first format: keys included thresholds and routing
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("CREATE TABLE judgments (query_id TEXT, stage INTEGER, config_hash TEXT)")
    for readonly in (False, True):
        with pytest.raises(ConfigError, match=r"old\.db: judgment store schema 1, but this hardneg reads schema 2"):
            JudgmentStore(path, readonly=readonly)
    with sqlite3.connect(path) as conn:  # nothing was added to it
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"meta", "judgments"}


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


def test_listwise_records_per_docid_list_and_derived_verdicts(tmp_path: Path) -> None:
    from hardneg.judging.store import StageVerdict, docids_key

    chash = config_hash(CFG)
    with JudgmentStore(tmp_path / "j.db") as store:
        store.put("q", 1, "mini", CFG, ok(["a"], [], ["a", "b"]), docset=docids_key(["a", "b"]))
        store.put("q", 1, "mini", CFG, ok([], ["c"], ["a", "b", "c"]), docset=docids_key(["a", "b", "c"]))
        assert store.count() == 2
        assert store.get("q", 1, chash, docids=["a", "b"]).better == ["a"]  # type: ignore[union-attr]
        assert store.get("q", 1, chash, docids=["b", "a"]) is None  # another order is another prompt
        # nothing derived yet: the records' own verdicts, latest first
        assert store.final_verdicts()["q"].worse == ["c"]

        def derived(view: str, better: list[str]) -> StageVerdict:
            return StageVerdict("q", 1, view, chash, "mini", ["a", "b"], "ok", "", better, [], routed=better or None)

        store.put_verdicts([derived("v1", ["a"]), derived("v2", [])])
        assert store.get_verdict("q", 1, "v1").routed == ["a"]  # type: ignore[union-attr]
        assert store.final_verdicts({1: "v1"})["q"].better == ["a"]
        assert store.final_verdicts({1: "v2"})["q"].better == []
        assert store.final_verdicts({1: chash})["q"].better == []  # a call hash reads its latest derivation
        store.set_current_run({"name": "c", "views": {1: "v1"}, "calls": {1: chash}})
        assert store.final_verdicts({1: chash})["q"].better == ["a"]  # ... or the current run's
        assert store.final_verdicts()["q"].better == ["a"]
        store.put_verdicts([], delete=[("q", 1, "v1")])
        assert store.get_verdict("q", 1, "v1") is None and store.final_verdicts() == {}
        # records no cascade derived (an import) still count beside the current run
        store.put("q9", 2, "big", CFG2, ok(["z"], []))
        assert {q: v.better for q, v in store.final_verdicts().items()} == {"q9": ["z"]}
