"""`collect_pairs`: a seeded sample of the flagged pairs and the closest unflagged ones, each with its texts, every
stage's score and verdict, and the human grade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.analysis.report.pairs import collect_pairs
from hardneg.data.io import write_instances
from hardneg.data.records import Instance, Passage
from hardneg.judging.verdicts import FinalVerdict, StageVerdict


def _stage(qid: str, stage: int, docids: list[str], **fields: Any) -> StageVerdict:
    values: dict[str, Any] = {"status": "ok", "reason": "", "better": [], "worse": [], **fields}
    return StageVerdict(qid, stage, f"view{stage}", "call", "judge", docids, **values)


class FakeStore:
    """The two things `collect_pairs` reads: the current run's views, and each view's verdicts."""

    def __init__(self, verdicts: list[StageVerdict]) -> None:
        self.verdicts = verdicts

    def current_run(self) -> dict[str, Any]:
        return {"views": {1: "view1", 2: "view2"}}

    def iter_verdicts(self, stage: int, view_hash: str) -> list[StageVerdict]:
        return [v for v in self.verdicts if v.stage == stage and v.view_hash == view_hash]


# q1: stage 1 flags n1 (better) and n2 (worse), stage 2 sees n1 only and keeps it; q2: nothing flagged;
# q3: stage 1 failed
STORE = FakeStore(
    [
        _stage("q1", 1, ["n1", "n2", "n3"], better=["n1"], worse=["n2"], raw_scores={"n1": 0.9, "n2": 0.8, "n3": 0.7}),
        _stage("q2", 1, ["m1", "m2"], raw_scores={"m1": 0.95, "m2": 0.1}),
        _stage("q3", 1, ["k1"], status="failed", reason="timeout"),
        _stage("q1", 2, ["n1"], better=["n1"], scores={"n1": 0.6}),
    ]
)
FINAL = {
    "q1": FinalVerdict("q1", 2, better=["n1"], worse=["n2"]),
    "q2": FinalVerdict("q2", 1, better=[], worse=[]),
    "q3": FinalVerdict("q3", 1, better=[], worse=[], status="failed"),
}
INSTANCES = [
    Instance("q1", "query one", [Passage("p1", "positive one")], [Passage(d, f"text {d}") for d in ("n1", "n2", "n3")]),
    Instance("q2", "query two", [], [Passage(d, f"text {d}") for d in ("m1", "m2")]),
    Instance("q3", "query three", [Passage("p3", "p")], [Passage("k1", "text k1")]),
]


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["query_id"], r["docid"]) for r in rows]


def test_flagged_then_closest_unflagged_with_every_stage() -> None:
    rows = collect_pairs(STORE, INSTANCES, verdicts=FINAL)
    assert _keys(rows) == [
        ("flagged", "q1", "n1"),
        ("flagged", "q1", "n2"),
        ("close", "q2", "m1"),  # by the first stage's score, highest first
        ("close", "q1", "n3"),
        ("close", "q2", "m2"),
    ]
    n1, n2, m1 = rows[0], rows[1], rows[2]
    assert n1["stages"] == [
        {"stage": 1, "score": 0.9, "verdict": "better"},
        {"stage": 2, "score": 0.6, "verdict": "better"},  # no raw scores: the scores thresholds saw
    ]
    assert n2["stages"][0] == {"stage": 1, "score": 0.8, "verdict": "worse"}
    assert n2["stages"][1] == {"stage": 2, "score": None, "verdict": "not judged"}
    assert m1["stages"][0] == {"stage": 1, "score": 0.95, "verdict": "—"}
    assert (n1["query"], n1["positive"], n1["negative"]) == ("query one", "positive one", "text n1")
    assert m1["positive"] == ""  # an instance without positives
    assert all(r["grade"] is None for r in rows)


def test_tags_better_leaves_worse_negatives_among_the_close() -> None:
    rows = collect_pairs(STORE, INSTANCES, verdicts=FINAL, tags="better")
    assert _keys(rows) == [
        ("flagged", "q1", "n1"),
        ("close", "q2", "m1"),
        ("close", "q1", "n2"),
        ("close", "q1", "n3"),
        ("close", "q2", "m2"),
    ]


def test_a_seeded_sample_of_each_kind_with_grades() -> None:
    grades = {("q1", "n1"): 2, ("q1", "n2"): 0, ("q2", "m1"): 1}
    one = collect_pairs(STORE, INSTANCES, verdicts=FINAL, per_kind=1, seed=3, grades=grades)
    assert one == collect_pairs(STORE, INSTANCES, verdicts=FINAL, per_kind=1, seed=3, grades=grades)
    (flagged, close) = one
    assert flagged["kind"] == "flagged" and (flagged["query_id"], flagged["docid"]) in {("q1", "n1"), ("q1", "n2")}
    assert _keys([close]) == [("close", "q2", "m1")] and close["grade"] == 1
    assert flagged["grade"] == grades[(flagged["query_id"], flagged["docid"])]


def test_pairs_the_instances_lack_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    q1 = INSTANCES[0]
    write_instances(path, [Instance("q1", q1.query, q1.positives, q1.negatives[:1])])  # n1 only; no q2
    assert _keys(collect_pairs(STORE, path, verdicts=FINAL)) == [("flagged", "q1", "n1")]


def test_a_store_without_a_current_run_shows_no_stages() -> None:
    class NoRun(FakeStore):
        def current_run(self) -> None:  # type: ignore[override]
            return None

    rows = collect_pairs(NoRun([]), INSTANCES, verdicts=FINAL)
    assert _keys(rows) == [("flagged", "q1", "n1"), ("flagged", "q1", "n2")]  # nothing is close without scores
    assert all(r["stages"] == [] for r in rows)
