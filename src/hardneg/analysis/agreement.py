"""Agreement between two sources of relevance labels on (query_id, docid) pairs (`hardneg.analysis.labels`).

A source is a judge or stage in a judgment store, a qrels file (BEIR or TREC layout, graded labels), or a
Label Studio export of the annotation round trip (`hardneg.analysis.annotate`). Pairs judged by both sources are
compared with scikit-learn: Cohen's kappa on binary relevant / not relevant (relevant = listed in `<better>` or
`<worse>`, a qrels grade >= threshold, or a majority of annotators), kappa on the 3 classes better / worse / none
when both sources have them, the confusion matrices, and precision / recall / F1 of A taking B as the truth.

Sources are read by `hardneg.analysis.labels.load_labels` (its docstring lists the specs).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from hardneg.analysis.labels import CLASSES3, LabelSet
from hardneg.errors import ConfigError


def _kappa(a: list[Any], b: list[Any], labels: list[Any]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(a, b, labels=labels))
    # undefined when both sources give one same label everywhere (chance agreement is 1)
    return None if math.isnan(value) else value


def _binary_table(a: list[int], b: list[int]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    matrix = confusion_matrix(b, a, labels=[0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = precision_recall_fscore_support(
            b, a, labels=[1], average="binary", pos_label=1, zero_division=0
        )
    agree = sum(int(x == y) for x, y in zip(a, b, strict=True))
    return {
        "kappa": _kappa(a, b, [0, 1]),
        "labels": ["not relevant", "relevant"],
        # rows: B (reference), columns: A
        "confusion": matrix.tolist(),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "accuracy": agree / len(a) if a else None,
        "relevant_a": int(sum(a)),
        "relevant_b": int(sum(b)),
    }


def _three_table(a: list[str], b: list[str]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    return {
        "kappa": _kappa(a, b, list(CLASSES3)),
        "labels": list(CLASSES3),
        "confusion": confusion_matrix(b, a, labels=list(CLASSES3)).tolist(),
        # agreement on the <better> list alone (the paper's stage-1 variant flags `better` only)
        "kappa_better_only": _kappa([int(x == "better") for x in a], [int(x == "better") for x in b], [0, 1]),
    }


@dataclass
class Agreement:
    """The comparison of A (the judge under test) with B (the reference)."""

    a: str
    b: str
    pairs: int
    queries: int
    only_a: int
    only_b: int
    binary: dict[str, Any]
    three: dict[str, Any] | None
    notes: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        # every field; `three` is `three_class` in the JSON
        return {"three_class" if k == "three" else k: v for k, v in asdict(self).items()}


def compare(a: LabelSet, b: LabelSet) -> Agreement:
    """Agreement on the pairs both sources labelled (B is the reference for precision and recall)."""
    common = sorted(set(a.binary) & set(b.binary))
    if not common:
        raise ConfigError(f"{a.name} and {b.name} share no (query_id, docid) pair")
    binary = _binary_table([a.binary[p] for p in common], [b.binary[p] for p in common])
    three = None
    if a.three is not None and b.three is not None:
        three = _three_table([a.three[p] for p in common], [b.three[p] for p in common])
    return Agreement(
        a=a.name,
        b=b.name,
        pairs=len(common),
        queries=len({q for q, _ in common}),
        only_a=len(a.binary) - len(common),
        only_b=len(b.binary) - len(common),
        binary=binary,
        three=three,
        notes={a.name: a.notes, b.name: b.notes},
    )


__all__ = ["Agreement", "compare"]
