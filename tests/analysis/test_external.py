"""Published judgments (TREC qrels and run files) scored on a testbed's pairs equal a hand computation."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.analysis import testbed as testbeds
from hardneg.analysis.external import parse_external, read_external
from hardneg.analysis.judge_eval import JudgeEvalReport, StageEval, Target, _panels, choose_cut, evaluate_judges
from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError, InputError

# two queries, four negatives each; grades >= 1 are false negatives: a, b (q1) and e (q2)
GRADES = {
    ("q1", "a"): 2, ("q1", "b"): 1, ("q1", "c"): 0, ("q1", "d"): 0,
    ("q2", "e"): 1, ("q2", "f"): 0, ("q2", "g"): 0, ("q2", "h"): 0,
}  # fmt: skip
# the qrels file lacks (q2, h) and holds a pair outside the testbed; grades: a 2, b 0, c 1, d 0, e 3, f 0, g 0
QRELS = "q1 0 a 2\nq1 0 b 0\nq1 0 c 1\nq1 0 d 0\n\n# a comment\nq2 0 e 3\nq2 0 f 0\nq2 0 g 0\nq9 0 z 1\n"
# the run file lacks (q1, b)
RUN = "".join(
    f"{q} Q0 {d} {rank} {score} bm25\n"
    for rank, (q, d, score) in enumerate(
        [("q1", "a", 0.9), ("q1", "c", 0.5), ("q1", "d", 0.1), ("q2", "g", 0.6), ("q2", "e", 0.45),
         ("q2", "h", 0.4), ("q2", "f", 0.3)], start=1,
    )
)  # fmt: skip


def small_testbed() -> testbeds.Testbed:
    instances = []
    for qid in ("q1", "q2"):
        negatives = [Passage(d, f"text of {d}") for (q, d) in GRADES if q == qid]
        instances.append(Instance(qid, f"query {qid}", [Passage(f"{qid}-pos", "the answer")], negatives))
    return testbeds.Testbed(instances, dict(GRADES), 1, {"dataset": "hand"})


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "judge.qrels").write_text(QRELS)
    (tmp_path / "judge.run").write_text(RUN)
    return tmp_path / "judge.qrels", tmp_path / "judge.run"


def test_read_external_tells_the_kind_from_the_columns(files: tuple[Path, Path]) -> None:
    qrels, run = files
    q = read_external("people", qrels)
    assert q.kind == "qrels" and q.values[("q2", "e")] == 3 and len(q.values) == 8
    r = read_external("bm25", run)
    assert r.kind == "run" and r.values[("q2", "e")] == 0.45 and len(r.values) == 7
    assert parse_external("gpt4o = a/b.txt") == ("gpt4o", Path("a/b.txt"))
    for bad in ("nofile", "=x", "name="):
        with pytest.raises(ConfigError) as raised:
            parse_external(bad)
        assert raised.value.param == "external"


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("q1 0 a\n", 1, "-"),  # 3 columns: neither kind
        ("q1 0 a 1\nq1 Q0 b 1 0.3 run\n", 2, "-"),  # a run line in a qrels file
        ("q1 0 a 1\nq1 0 b high\n", 2, "grade"),
        ("q1 Q0 a 1 x run\n", 1, "score"),
        ("q1 0 a 1\nq1 0 a 0\n", 2, "docid"),  # a pair twice
    ],
)
def test_bad_external_files_name_the_line(tmp_path: Path, text: str, line: int, field: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        read_external("x", path)
    assert (raised.value.problem.path, raised.value.problem.line, raised.value.problem.field) == (
        str(path),
        line,
        field,
    )
    with pytest.raises(InputError, match="no such file"):
        read_external("x", tmp_path / "missing.txt")


def test_externals_scored_by_hand_with_coverage_and_shared_pairs(files: tuple[Path, Path]) -> None:
    qrels, run = files
    report = evaluate_judges(small_testbed(), external={"people": qrels, "bm25": run}, target="recall>=0.5")
    people, bm25 = report.stages
    # qrels on its 7 pairs: flags a, c, e against truths a, b, e: tp 2 (a, e), fp 1 (c), fn 1 (b), tn 3
    assert people.coverage == {"pairs": 8, "found": 7, "missing": 1, "in_file": 8}
    m = people.metrics
    assert (m.pairs, m.flagged, m.relevant) == (7, 3, 3)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)
    assert m.kappa == pytest.approx((5 / 7 - 25 / 49) / (1 - 25 / 49))  # observed 5/7, chance (3*3 + 4*4)/49
    assert people.roc_auc is None and people.cut is None  # labels only
    # run on its 7 pairs: positives a 0.9, e 0.45; negatives c .5, d .1, g .6, h .4, f .3
    assert bm25.coverage == {"pairs": 8, "found": 7, "missing": 1, "in_file": 7} and bm25.metrics is None
    assert bm25.roc_auc == pytest.approx((5 + 3) / 10)  # a above all 5 negatives, e above 3 of them
    assert bm25.pr_auc == pytest.approx((1 / 1 + 2 / 4) / 2)  # a at rank 1, e at rank 4
    scores = {p: v for p, v in read_external("bm25", run).values.items()}
    labels = small_testbed().labels()
    expected = choose_cut(scores, labels, Target("recall", 0.5), queries={"q1", "q2"})
    assert bm25.cut == expected  # the same query split as every judge
    # the pairs both cover: a, c, d (q1) and e, f, g (q2)
    assert report.shared is not None and report.shared["pairs"] == 6 and report.shared["false_negatives"] == 2
    people_s, bm25_s = report.shared_stages
    assert people_s.metrics.flagged == 3 and people_s.metrics.precision == pytest.approx(2 / 3)
    assert people_s.metrics.recall == 1.0  # b, the false negative the labels missed, is not a shared pair
    assert bm25_s.roc_auc == pytest.approx((4 + 2) / 8) and bm25_s.pr_auc == pytest.approx((1 + 2 / 4) / 2)
    as_json = report.to_dict()
    assert as_json["shared"]["stages"][1]["roc_auc"] == bm25_s.roc_auc and "predictions" not in as_json["stages"][0]
    # --min-grade: a qrels grade >= 2 is a flag: a and e
    strict = evaluate_judges(small_testbed(), external=[f"people={qrels}"], min_grade=2)
    assert strict.stages[0].metrics.precision == 1.0 and strict.stages[0].metrics.recall == pytest.approx(2 / 3)
    assert strict.shared is None  # one judge: nothing to share


def test_external_names_and_configs_are_checked(files: tuple[Path, Path]) -> None:
    qrels, _ = files
    with pytest.raises(ConfigError) as raised:
        evaluate_judges(small_testbed(), external=[f"a={qrels}", f"a={qrels}"])
    assert raised.value.param == "external"
    with pytest.raises(ConfigError) as raised:
        evaluate_judges(small_testbed())
    assert raised.value.param == "configs"
    with pytest.raises(ConfigError) as raised:
        evaluate_judges(small_testbed(), ["embedding"])
    assert raised.value.param == "store"


def test_routed_stages_get_their_own_panel() -> None:
    report = JudgeEvalReport({"dataset": "hand"}, labels=small_testbed().labels())
    first = StageEval("c", "1", "cheap", "embedding", None, scores=dict.fromkeys(GRADES, 0.5))
    second = StageEval("c", "2", "big", "openai", None, scores={("q1", "a"): 0.9, ("q1", "c"): 0.2})
    report.stages = [first, second]
    (title, main, base), (routed_title, routed, routed_base) = _panels(report)
    assert main == [first] and "same 8" in title and base == pytest.approx(3 / 8)
    assert routed == [second] and routed_title.startswith("routed pairs only") and routed_base == 0.5
