"""Testbeds: one positive per query, no positive among the negatives, grades carried, same output for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.analysis.testbed import build_testbed, default_min_grade, load_testbed, write_testbed
from hardneg.cli import app
from hardneg.data.beir import load_beir
from hardneg.data.sample import sample_beir_dir
from hardneg.errors import ConfigError


def _invariants(testbed, qrels) -> None:  # type: ignore[no-untyped-def]
    for inst in testbed.instances:
        assert len(inst.positives) == 1
        positive = inst.positives[0].docid
        assert positive not in inst.negative_ids and len(set(inst.negative_ids)) == len(inst.negative_ids)
        judged = qrels[inst.query_id]
        assert judged[positive] == max(judged.values())  # drawn from the top grade present
        for docid in inst.negative_ids:
            if docid in judged:
                assert testbed.grades[(inst.query_id, docid)] == judged[docid]
    labels = testbed.labels()
    assert testbed.card["false_negatives"] == sum(labels.values())
    assert testbed.card["negatives_judged"] == len(labels)


def test_sample_testbed(tmp_path: Path) -> None:
    data = load_beir(sample_beir_dir(), "train")
    testbed = build_testbed(data, negatives=5, name="sample")
    _invariants(testbed, data.qrels)
    assert testbed.min_grade == default_min_grade(data.qrels) == 1
    assert all(len(i.negatives) <= 5 for i in testbed.instances)
    again = build_testbed(data, negatives=5, name="sample")
    assert [i.to_row() for i in again.instances] == [i.to_row() for i in testbed.instances]
    other = build_testbed(data, negatives=5, name="sample", seed=7)
    assert other.card["seed"] == 7
    written = write_testbed(testbed, tmp_path / "tb")
    loaded = load_testbed(written)
    assert loaded.grades == testbed.grades and loaded.card == testbed.card
    assert [i.to_row() for i in loaded.instances] == [i.to_row() for i in testbed.instances]
    with pytest.raises(ConfigError) as raised:
        build_testbed(data, pool="everything")  # type: ignore[arg-type]
    assert raised.value.param == "pool"


@pytest.mark.shared
def test_noveleval_testbed_from_the_cli(shared_data: Path, tmp_path: Path) -> None:
    beir = shared_data / "noveleval"
    out = tmp_path / "tb"
    result = CliRunner().invoke(app, ["--quiet", "testbed", str(beir), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    # 21 questions, 20 graded passages each: one kept as the positive, the other 19 are negatives
    assert card["queries"] == 21 and card["negatives"] == 21 * 19 and card["negatives_unknown"] == 0
    assert card["min_grade"] == 1 and card["negative_grade_histogram"] == {"0": 290, "1": 40, "2": 90 - 21}
    assert card["false_negatives"] == 40 + 69
    data = load_beir(beir, "test")
    loaded = load_testbed(out)
    _invariants(loaded, data.qrels)
    strict = build_testbed(data, min_grade=2, name="noveleval")
    assert strict.card["false_negatives"] == 69
    again = CliRunner().invoke(app, ["--quiet", "testbed", str(beir), "-o", str(tmp_path / "tb2"), "--json"])
    assert (tmp_path / "tb2" / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()
    assert json.loads(again.stdout)["seed"] == 0


def test_a_limited_testbed_is_the_start_of_the_full_one_and_its_card_says_so(tmp_path: Path) -> None:
    data = load_beir(sample_beir_dir(), "train")
    full = build_testbed(data, negatives=5, name="sample", pool="corpus")
    first = build_testbed(data, negatives=5, name="sample", pool="corpus", limit=3)
    assert [i.to_row() for i in first.instances] == [i.to_row() for i in full.instances[:3]]
    _invariants(first, data.qrels)
    assert first.card["queries"] == 3 and first.card["negatives"] == sum(len(i.negatives) for i in first.instances)
    assert first.card["selection"]["used"] == 3 and first.card["selection"]["total"] == full.card["queries"]
    drawn = build_testbed(data, negatives=5, name="sample", pool="corpus", sample=4, seed=2)
    assert len(drawn.instances) == 4 and drawn.card["selection"]["seed"] == 2
    out = tmp_path / "tb"
    result = CliRunner().invoke(
        app, ["--quiet", "testbed", str(sample_beir_dir()), "--split", "train", "-o", str(out), "-n", "5",
              "--pool", "corpus", "--limit", "3", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    assert card["queries"] == 3 and card["selection"]["limit"] == 3
    assert "built from the first 3 of the" in (out / "card.md").read_text()


def test_a_card_that_no_longer_matches_its_files_is_corrected_on_load(tmp_path: Path) -> None:
    data = load_beir(sample_beir_dir(), "train")
    folder = write_testbed(build_testbed(data, negatives=5, name="sample", pool="corpus"), tmp_path / "tb")
    lines = (folder / "train.jsonl").read_text().splitlines(keepends=True)
    (folder / "train.jsonl").write_text("".join(lines[:4]))  # cut by hand: card.json is now stale
    loaded = load_testbed(folder)
    assert loaded.card["queries"] == 4 and loaded.card["card_mismatch"]["queries"]["card"] == len(lines)
    assert loaded.card["negatives"] == sum(len(i.negatives) for i in loaded.instances)
    assert loaded.card["false_negatives"] == sum(
        1 for i in loaded.instances for d in i.negative_ids if loaded.labels().get((i.query_id, d))
    )
