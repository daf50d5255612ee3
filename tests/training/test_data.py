"""Per-epoch sampling of positives and negatives (no model needed)."""

from __future__ import annotations

import pytest

from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError
from hardneg.training.data import build_examples, passage_text, pick_negatives, pick_positives


def _instance(qid: str, positives: int, negatives: int) -> Instance:
    return Instance(
        query_id=qid,
        query=f"query {qid}",
        positives=[Passage(f"{qid}-p{i}", f"positive {i}", title="T") for i in range(positives)],
        negatives=[Passage(f"{qid}-n{i}", f"negative {i}") for i in range(negatives)],
    )


def test_negatives_rotate_across_epochs_and_are_deterministic() -> None:
    inst = _instance("q", 1, 14)
    epoch0 = [p.docid for p in pick_negatives(inst, 7, epoch=0, seed=1)]
    epoch1 = [p.docid for p in pick_negatives(inst, 7, epoch=1, seed=1)]
    assert len(set(epoch0)) == 7 and len(set(epoch1)) == 7
    assert set(epoch0).isdisjoint(epoch1)  # 14 negatives, window of 7: two disjoint halves
    assert epoch0 == [p.docid for p in pick_negatives(inst, 7, epoch=0, seed=1)]
    assert epoch0 != [p.docid for p in pick_negatives(inst, 7, epoch=0, seed=2)]


def test_too_few_negatives_are_drawn_with_replacement() -> None:
    inst = _instance("q", 1, 2)
    picked = pick_negatives(inst, 7, epoch=0, seed=0)
    assert len(picked) == 7
    assert {p.docid for p in picked} <= {"q-n0", "q-n1"}


def test_one_positive_sampled_per_epoch_covers_alternatives() -> None:
    inst = _instance("q", 3, 5)
    seen = {pick_positives(inst, "sample", epoch, seed=0)[0].docid for epoch in range(30)}
    assert seen == {"q-p0", "q-p1", "q-p2"}
    assert [p.docid for p in pick_positives(inst, "all", 0, seed=0)] == ["q-p0", "q-p1", "q-p2"]


def test_build_examples_counts_skips_and_padding() -> None:
    instances = [_instance("a", 1, 8), _instance("b", 2, 3), _instance("c", 1, 0)]
    per_epoch, stats = build_examples(instances, negatives=7, epochs=2, seed=3, query_prefix="query: ")
    assert stats.instances == 3
    assert stats.skipped_no_negatives == 1  # "c" cannot form a group
    assert stats.padded_with_replacement == 1  # "b" has 3 < 7 negatives
    assert stats.examples_per_epoch == 2 and len(per_epoch) == 2
    for examples in per_epoch:
        assert sorted(e.query_id for e in examples) == ["a", "b"]
        for example in examples:
            assert example.query.startswith("query: ") and len(example.negatives) == 7
    all_pos, _ = build_examples(instances, negatives=7, epochs=1, seed=3, positives="all")
    assert sorted(e.query_id for e in all_pos[0]) == ["a", "b", "b"]


def test_passage_text_puts_title_first() -> None:
    assert passage_text(Passage("d", "body", title="Title"), "passage: ") == "passage: Title body"
    assert passage_text(Passage("d", "body")) == "body"


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        build_examples([_instance("a", 1, 1)], negatives=1, epochs=0, seed=0)
    with pytest.raises(ConfigError):
        build_examples([_instance("a", 1, 0)], negatives=1, epochs=1, seed=0)
    with pytest.raises(ConfigError):
        build_examples([_instance("a", 1, 1)], negatives=1, epochs=1, seed=0, positives="some")  # type: ignore[arg-type]
