"""Agreement on hand-built pairs with a known kappa, and on the real rlhn-sample verdicts."""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hardneg.analysis.agreement import compare
from hardneg.analysis.labels import LabelSet, load_labels
from hardneg.errors import ConfigError
from hardneg.judging.importer import import_judgments
from hardneg.judging.store import JudgmentStore


def test_known_binary_kappa() -> None:
    # observed agreement 3/4, chance agreement 0.5*0.25 + 0.5*0.75 = 0.5 -> kappa 0.5
    a = LabelSet("a", {("q", "1"): 1, ("q", "2"): 1, ("q", "3"): 0, ("q", "4"): 0, ("q", "5"): 1})
    b = LabelSet("b", {("q", "1"): 1, ("q", "2"): 0, ("q", "3"): 0, ("q", "4"): 0, ("r", "9"): 1})
    result = compare(a, b)
    assert result.pairs == 4 and result.only_a == 1 and result.only_b == 1 and result.queries == 1
    assert result.binary["kappa"] == pytest.approx(0.5)
    assert result.binary["confusion"] == [[2, 1], [0, 1]]  # rows: b, columns: a
    assert result.binary["precision"] == pytest.approx(0.5) and result.binary["recall"] == pytest.approx(1.0)
    assert result.three is None


def test_known_three_class_kappa() -> None:
    pairs = [("q", str(i)) for i in range(6)]
    a3 = ["better", "worse", "none", "none", "worse", "none"]
    b3 = ["better", "none", "none", "none", "worse", "worse"]
    a = LabelSet("a", {p: int(x != "none") for p, x in zip(pairs, a3, strict=True)}, dict(zip(pairs, a3, strict=True)))
    b = LabelSet("b", {p: int(x != "none") for p, x in zip(pairs, b3, strict=True)}, dict(zip(pairs, b3, strict=True)))
    result = compare(a, b)
    # po = 4/6; pe = (1*1 + 2*2 + 3*3) / 36 = 14/36 -> kappa = (24/36 - 14/36) / (22/36) = 10/22
    assert result.three is not None and result.three["kappa"] == pytest.approx(10 / 22)
    assert result.three["confusion"][2] == [0, 1, 2]  # b says none: a said worse once, none twice
    # binary: po = 4/6, both 3 relevant of 6 -> pe 0.5 -> kappa 1/3
    assert result.binary["kappa"] == pytest.approx(1 / 3)


def test_constant_labels_give_no_kappa_and_disjoint_sets_fail() -> None:
    a = LabelSet("a", {("q", "1"): 0, ("q", "2"): 0})
    assert compare(a, LabelSet("b", dict(a.binary))).binary["kappa"] is None
    with pytest.raises(ConfigError):
        compare(a, LabelSet("c", {("x", "1"): 1}))


# -- the real verdicts ------------------------------------------------------------------------------------------


def _relevant_pairs(path: Path) -> dict[tuple[str, str], int]:
    """Binary labels straight from the raw responses (independent of hardneg's parser)."""
    labels = {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row: dict[str, Any] = json.loads(line)
            ids = row["negative_passage_ids"]
            ids = ast.literal_eval(ids) if isinstance(ids, str) else ids
            verdict = row["response"].split("<verdict>")[-1]
            listed = {ids[int(i) - 1] for i in re.findall(r"Doc \((\d+)\)", verdict)}
            labels.update({(row["query_id"], d): int(d in listed) for d in ids})
    return labels


@pytest.mark.slow
@pytest.mark.shared
def test_gpt4o_mini_vs_gpt4o_on_rlhn_sample(tmp_path: Path, rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    store = JudgmentStore(tmp_path / "j.db")
    import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
    import_judgments([rlhn_stage2], 2, "gpt-4o", store)
    result = compare(load_labels("stage:1", store=store), load_labels("stage:2", store=store))
    mini, big = _relevant_pairs(rlhn_stage1), _relevant_pairs(rlhn_stage2)
    common = sorted(set(mini) & set(big))
    assert result.pairs == len(common) == 17 * 15 and result.queries == 17
    n = len(common)
    tp = sum(mini[p] and big[p] for p in common)
    fp = sum(mini[p] and not big[p] for p in common)
    fn = sum(big[p] and not mini[p] for p in common)
    tn = n - tp - fp - fn
    assert result.binary["confusion"] == [[tn, fp], [fn, tp]]
    po = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / n**2
    assert result.binary["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert result.binary["precision"] == pytest.approx(tp / (tp + fp))
    assert result.binary["recall"] == pytest.approx(tp / (tp + fn))
    # what this FiQA half gives (judges.md's 0.569 is on 50 instances, FiQA + MS MARCO)
    assert round(result.binary["kappa"], 3) == 0.412
    assert result.three is not None and result.only_a == 8 * 15
