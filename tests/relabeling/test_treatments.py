"""Treatments on hand-built instances whose answer is known, keyed by docid whatever the order."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError, InputError
from hardneg.judging.verdicts import FinalVerdict
from hardneg.relabeling import RelabelOptions, RelabelReport, relabel_instances
from support.relabel_cases import make, verdict


def run(
    instances: list[Instance], verdicts: list[FinalVerdict], **opts: object
) -> tuple[dict[str, Instance], RelabelReport]:
    options = RelabelOptions(**opts)  # type: ignore[arg-type]
    report = RelabelReport(options)
    out = list(relabel_instances(instances, {v.query_id: v for v in verdicts}, options, report=report))
    return {inst.query_id: inst for inst in out}, report


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_rlhn_moves_flagged_by_docid_whatever_the_order(seed: int | None) -> None:
    inst = make("q1", shuffle_seed=seed)
    out, report = run([inst], [verdict("q1", better=[4], worse=[1, 5])], treatment="rlhn", tags="both")
    got = out["q1"]
    assert got.positive_ids == ["q1-p0"] + [d for d in inst.negative_ids if d in {"q1-n1", "q1-n4", "q1-n5"}]
    assert sorted(got.negative_ids) == ["q1-n0", "q1-n2", "q1-n3"]
    # the passages keep their text and extra fields, and the remaining negatives keep their order
    moved = {p.docid: p for p in got.positives}
    assert moved["q1-n4"].text == "negative 4 of q1" and moved["q1-n4"].extra == {"score": 4.0}
    assert got.negative_ids == [d for d in inst.negative_ids if d in {"q1-n0", "q1-n2", "q1-n3"}]
    assert got.extra == {"note": "q1"}
    total = report.total
    assert (total.changed, total.negatives_moved, total.flags, total.flagged_instances) == (1, 3, 3, 1)
    assert total.positives_after == 4 and total.negatives_after == 3


def test_tags_better_ignores_worse() -> None:
    out, report = run([make("q1")], [verdict("q1", better=[4], worse=[1, 5])], treatment="rlhn", tags="better")
    assert out["q1"].positive_ids == ["q1-p0", "q1-n4"]
    assert report.total.negatives_moved == 1
    # only worse flagged + tags better: clean, unchanged
    out, report = run([make("q2")], [verdict("q2", better=[], worse=[2])], treatment="rlhn", tags="better")
    assert out["q2"].negative_ids == make("q2").negative_ids and report.total.kept == 1


def test_hn_remove_deletes_only_flagged() -> None:
    out, report = run([make("q1", shuffle_seed=7)], [verdict("q1", [0], [3])], treatment="hn_remove")
    assert sorted(out["q1"].negative_ids) == ["q1-n1", "q1-n2", "q1-n4", "q1-n5"]
    assert out["q1"].positive_ids == ["q1-p0"]
    assert report.total.negatives_removed == 2 and report.total.negatives_moved == 0


def test_remove_drops_flagged_instances_only() -> None:
    instances = [make("q1"), make("q2"), make("q3")]
    out, report = run(instances, [verdict("q1", [1], []), verdict("q2", [], [])], treatment="remove")
    assert set(out) == {"q2", "q3"}
    assert report.total.dropped["flagged"] == 1 and report.total.unjudged == 1 and report.total.kept == 2


def test_default_is_unchanged_but_counts_flags() -> None:
    instances = [make("q1"), make("q2")]
    out, report = run(instances, [verdict("q1", [1, 2], [3]), verdict("q2", list(range(6)), [])], treatment="default")
    assert [i.to_row() for i in out.values()] == [i.to_row() for i in instances]
    assert report.total.flags == 9 and report.total.flagged_instances == 2 and report.total.dropped_total == 0


def test_max_flags_drops_ambiguous() -> None:
    inst = make("q1", negs=12)
    flags = verdict("q1", list(range(9)), [])
    out, report = run([inst], [flags], treatment="rlhn")  # default K = 8: 9 flags is ambiguous
    assert out == {} and report.total.dropped["ambiguous"] == 1
    out, _ = run([inst], [flags], treatment="rlhn", max_flags=9)
    assert len(out["q1"].positives) == 10
    out, _ = run([inst], [flags], treatment="rlhn", max_flags=None)
    assert len(out["q1"].negatives) == 3
    # K counts the lists chosen by `tags`: 5 better + 5 worse is ambiguous only with both
    five_five = verdict("q1", [0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    assert run([inst], [five_five], treatment="hn_remove", tags="both")[0] == {}
    assert len(run([inst], [five_five], treatment="hn_remove", tags="better")[0]["q1"].negatives) == 7


def test_min_negatives_drops_instances_left_empty() -> None:
    inst = make("q1", negs=3)
    v = verdict("q1", [0, 1], [2])
    out, report = run([inst], [v], treatment="hn_remove")
    assert out == {} and report.total.dropped["too_few_negatives"] == 1
    out, report = run([inst], [v], treatment="rlhn", min_negatives=0)
    assert out["q1"].negatives == [] and len(out["q1"].positives) == 4
    out, report = run([inst], [verdict("q1", [0], [])], treatment="rlhn", min_negatives=2)
    assert out["q1"].negative_ids == ["q1-n1", "q1-n2"]
    out, report = run([inst], [verdict("q1", [0, 1], [])], treatment="rlhn", min_negatives=2)
    assert out == {} and report.total.dropped["too_few_negatives"] == 1 and report.total.negatives_moved == 0


def test_skip_subsets_pass_unchanged_and_are_counted() -> None:
    instances = [make("a1", subset="arguana"), make("f1", subset="fiqa")]
    verdicts = [verdict("a1", [0], []), verdict("f1", [0], [])]
    out, report = run(instances, verdicts, treatment="remove")
    assert set(out) == {"a1"} and out["a1"].to_row() == instances[0].to_row()
    assert report.subsets["arguana"].skipped_subset == 1 and report.subsets["fiqa"].dropped["flagged"] == 1
    out, report = run(instances, verdicts, treatment="remove", skip_subsets="fiqa")
    assert set(out) == {"f1"} and report.subsets["fiqa"].skipped_subset == 1


def test_failed_verdicts_are_never_clean() -> None:
    instances = [make("q1"), make("q2")]
    verdicts = [verdict("q1", [], [], status="parse_error"), verdict("q2", [], [], status="failed")]
    out, report = run(instances, verdicts, treatment="remove")
    assert set(out) == {"q1", "q2"} and report.total.failed == 2 and report.total.kept == 2
    assert report.total.unjudged == 0
    out, report = run(instances, verdicts, treatment="rlhn", on_failed="drop")
    assert out == {} and report.total.dropped["failed_judgment"] == 2 and report.total.failed == 2


def test_unknown_docids_raise_or_are_counted() -> None:
    inst = make("q1")
    bad = FinalVerdict("q1", 2, better=["q1-n1", "elsewhere"], worse=["q1-p0"])
    with pytest.raises(InputError) as info:
        run([inst], [bad], treatment="rlhn")
    assert "elsewhere" in str(info.value) and "q1-p0" in str(info.value) and info.value.problem.line == 1
    out, report = run([inst], [bad], treatment="rlhn", on_unknown="count")
    assert out["q1"].positive_ids == ["q1-p0", "q1-n1"] and report.total.unknown_docids == 2


def test_no_passage_duplicated() -> None:
    # a negative that is also a positive (bad mining) and a negative listed twice
    inst = make("q1", negs=4)
    inst.negatives.append(Passage("q1-p0", "positive 0"))
    inst.negatives.append(Passage("q1-n2", "negative 2 of q1"))
    v = FinalVerdict("q1", 2, better=["q1-n2", "q1-p0"], worse=["q1-n2"])
    out, report = run([inst], [v], treatment="rlhn")
    assert out["q1"].positive_ids == ["q1-p0", "q1-n2"]
    assert out["q1"].negative_ids == ["q1-n0", "q1-n1", "q1-n3"]
    assert report.total.negatives_moved == 1 and report.total.flags == 2


def test_per_subset_counts_add_up() -> None:
    instances = [make(f"f{i}") for i in range(4)] + [make(f"m{i}", subset="msmarco") for i in range(3)]
    verdicts = [verdict("f0", [1], []), verdict("f1", [], [2]), verdict("m0", [0, 1], []), verdict("m1", [], [])]
    out, report = run(instances, verdicts, treatment="hn_remove", tags="both")
    fiqa, ms, total = report.subsets["fiqa"], report.subsets["msmarco"], report.total
    assert (fiqa.changed, fiqa.kept, fiqa.unjudged) == (2, 2, 2)
    assert (ms.changed, ms.kept, ms.unjudged, ms.negatives_removed) == (1, 2, 1, 2)
    assert total.instances_in == 7 == total.written + total.dropped_total
    assert report.to_dict()["total"]["written"] == len(out) == 7
    json.dumps(report.to_dict())


def test_bad_options_name_their_field() -> None:
    for opts in ({"treatment": "fix"}, {"tags": "worse"}, {"max_flags": -1}, {"on_failed": "maybe"},
                 {"on_unknown": "skip"}, {"min_negatives": -1}):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            RelabelOptions(**opts)  # type: ignore[arg-type]
        assert info.value.param == next(iter(opts))
    with pytest.raises(ConfigError, match="unknown treatment 'fix'; expected one of default, remove, hn_remove"):
        RelabelOptions(treatment="fix")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(RelabelOptions(), tags="worse")  # type: ignore[arg-type]
    assert info.value.param == "tags"


def test_skip_subsets_take_a_comma_list_and_are_kept_as_a_tuple() -> None:
    assert RelabelOptions(skip_subsets="fiqa,arguana").skip_subsets == ("fiqa", "arguana")
    assert RelabelOptions(skip_subsets=["fiqa"]).skip_subsets == ("fiqa",)
    assert RelabelOptions(skip_subsets=()).skip_subsets == ()


def test_rlhn_plus_filter_relabels_better_and_removes_worse() -> None:
    from hardneg.data.records import Instance, Passage
    from hardneg.judging.verdicts import FinalVerdict
    from hardneg.relabeling.treatments import RelabelOptions, RelabelReport, relabel_instances

    inst = Instance("q", "query", [Passage("p", "pos")], [Passage(d, d) for d in ("b1", "w1", "w2", "n1", "n2")])
    verdict = FinalVerdict("q", 2, better=["b1"], worse=["w1", "w2"])
    options = RelabelOptions(treatment="rlhn+filter")  # tags both (the default): better moved, worse removed
    report = RelabelReport(options)
    (out,) = relabel_instances([inst], {"q": verdict}, options, report=report)
    assert out.positive_ids == ["p", "b1"] and out.negative_ids == ["n1", "n2"]
    total = report.total
    assert (total.negatives_moved, total.negatives_removed, total.flags, total.changed) == (1, 2, 3, 1)
    # the other treatments keep their counts: rlhn moves all three flags, hn_remove removes them
    for treatment, moved, removed in (("rlhn", 3, 0), ("hn_remove", 0, 3)):
        report = RelabelReport(RelabelOptions(treatment=treatment))
        list(relabel_instances([inst], {"q": verdict}, RelabelOptions(treatment=treatment), report=report))
        assert (report.total.negatives_moved, report.total.negatives_removed) == (moved, removed)


def test_rlhn_plus_filter_with_tags_better_leaves_the_worse_negatives_alone() -> None:
    inst = Instance("q", "query", [Passage("p", "pos")], [Passage(d, d) for d in ("b1", "w1", "w2", "n1", "n2")])
    verdict = FinalVerdict("q", 2, better=["b1"], worse=["w1", "w2"])
    options = RelabelOptions(treatment="rlhn+filter", tags="better")
    report = RelabelReport(options)
    (out,) = relabel_instances([inst], {"q": verdict}, options, report=report)
    # `better` only counts as flagged: b1 moves, w1 and w2 stay negatives (issue 20: they were removed)
    assert out.positive_ids == ["p", "b1"] and out.negative_ids == ["w1", "w2", "n1", "n2"]
    total = report.total
    assert (total.negatives_moved, total.negatives_removed, total.flags) == (1, 0, 1)


def test_instances_a_stage_has_not_judged_yet_are_counted_not_final() -> None:
    from hardneg.judging.store import FinalVerdicts

    instances = [make(f"f{i}") for i in range(4)]
    verdicts = FinalVerdicts({"f0": verdict("f0", [0], [])}, pending={"f1": 1, "f2": 2})
    report = RelabelReport(RelabelOptions())
    out = list(relabel_instances(instances, verdicts, RelabelOptions(), report=report))
    assert len(out) == 4
    total = report.total
    # f1, f2: pending (unchanged, not final); f3: no verdict at all (unjudged only)
    assert (total.unjudged, total.not_final, total.changed) == (3, 2, 1)
    assert report.to_dict()["total"]["not_final"] == 2
