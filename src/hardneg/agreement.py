"""Agreement between two sources of relevance labels on (query_id, docid) pairs.

A source is a judge or stage in a judgment store, a qrels file (BEIR or TREC layout, graded labels), or a
Label Studio export of the annotation round trip (`hardneg.annotate`). Pairs judged by both sources are
compared with scikit-learn: Cohen's kappa on binary relevant / not relevant (relevant = listed in `<better>` or
`<worse>`, a qrels grade >= threshold, or a majority of annotators), kappa on the 3 classes better / worse / none
when both sources have them, the confusion matrices, and precision / recall / F1 of A taking B as the truth.

Source specs (CLI `--a` / `--b`):
  stage:N            ok judgments of stage N in the store (the latest record when a stage has several configs)
  stage:N@HASH       only the records of that configuration hash
  judge:NAME         ok judgments of the judge named NAME
  final              the final verdicts of the store (what relabel uses: the last stage that judged each query);
                     every negative judged by any stage counts, relevant when the final verdict lists it
  final:STORE        the same, read from another store file (e.g. a local cascade against imported GPT-4o verdicts)
  qrels:FILE         BEIR (`query-id corpus-id score` with header) or TREC (`qid Q0 docid grade`) qrels
  labelstudio:FILE   a Label Studio JSON (or JSON_MIN) export: the majority label per pair
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError, InputError

Pair = tuple[str, str]  # (query_id, docid)
CLASSES3 = ("better", "worse", "none")


@dataclass
class LabelSet:
    """Labels of one source: binary (1 relevant, 0 not) and, for listwise judges, better / worse / none."""

    name: str
    binary: dict[Pair, int] = field(default_factory=dict)
    three: dict[Pair, str] | None = None
    notes: dict[str, int] = field(default_factory=dict)  # what was skipped and why

    def __len__(self) -> int:
        return len(self.binary)


def labels_from_judgments(judgments: Any, name: str, *, score_threshold: float | None = None) -> LabelSet:
    """LabelSet from an iterable of store `Judgment`s (only status ok counts; a later record replaces an earlier)."""
    labels = LabelSet(name, three={})
    notes: Counter[str] = Counter()
    seen: dict[str, list[str]] = {}
    for j in judgments:
        if j.status != "ok":
            notes[f"judgments_{j.status}"] += 1
            continue
        if j.query_id in seen:
            # several configurations judged this query: the latest record wins, its pairs only
            notes["judgments_replaced"] += 1
            for docid in seen[j.query_id]:
                labels.binary.pop((j.query_id, docid), None)
                if labels.three is not None:
                    labels.three.pop((j.query_id, docid), None)
        seen[j.query_id] = list(j.docids)
        if j.better is not None or j.worse is not None:
            better, worse = set(j.better or ()), set(j.worse or ())
            for docid in j.docids:
                cls = "better" if docid in better else "worse" if docid in worse else "none"
                labels.binary[(j.query_id, docid)] = int(cls != "none")
                assert labels.three is not None
                labels.three[(j.query_id, docid)] = cls
        elif j.scores is not None:
            if score_threshold is None:
                raise ConfigError(f"{name}: this judge gives scores, not verdicts: pass a score threshold")
            labels.three = None
            for docid in j.docids:
                if docid in j.scores:
                    labels.binary[(j.query_id, docid)] = int(j.scores[docid] >= score_threshold)
        else:
            notes["judgments_without_labels"] += 1
    if labels.three is not None and len(labels.three) != len(labels.binary):
        labels.three = None
    labels.notes = dict(notes)
    return labels


def labels_from_store(
    store: Any,
    *,
    stage: int | None = None,
    judge_name: str | None = None,
    config_hash: str | None = None,
    score_threshold: float | None = None,
    name: str | None = None,
) -> LabelSet:
    """LabelSet of one stage or judge of a `JudgmentStore`."""
    name = name or (f"stage:{stage}" if stage is not None else f"judge:{judge_name}")
    judgments = store.iter_judgments(stage=stage, judge_name=judge_name, config_hash=config_hash)
    labels = labels_from_judgments(judgments, name, score_threshold=score_threshold)
    if not labels.binary:
        raise ConfigError(f"{name}: no ok judgments in {getattr(store, 'path', 'the store')}")
    return labels


def labels_from_final(store: Any, *, name: str = "final") -> LabelSet:
    """LabelSet of a store's final verdicts over every negative any stage judged (failed verdicts left out)."""
    judged: dict[str, set[str]] = {}
    for j in store.iter_judgments(status="ok"):
        judged.setdefault(j.query_id, set()).update(j.docids)
    labels = LabelSet(name, three={})
    notes: Counter[str] = Counter()
    for query_id, verdict in store.final_verdicts().items():
        if verdict.status != "ok":
            notes[f"final_{verdict.status}"] += 1
            continue
        better, worse = set(verdict.better), set(verdict.worse)
        for docid in sorted(judged.get(query_id, set()) | better | worse):
            cls = "better" if docid in better else "worse" if docid in worse else "none"
            labels.binary[(query_id, docid)] = int(cls != "none")
            assert labels.three is not None
            labels.three[(query_id, docid)] = cls
    labels.notes = dict(notes)
    if not labels.binary:
        raise ConfigError(f"{name}: no final verdicts in {getattr(store, 'path', 'the store')}")
    return labels


def labels_from_qrels(path: str | Path, *, threshold: float = 1, name: str | None = None) -> LabelSet:
    """LabelSet from a qrels file: BEIR TSV with a `query-id corpus-id score` header, or TREC `qid Q0 docid grade`.

    Graded labels: relevant when grade >= threshold. Extra columns (per-annotator labels) are ignored.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "-", "no such file")
    labels = LabelSet(name or f"qrels:{path.name}")
    columns: tuple[int, int, int] | None = None
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            if columns is None:
                lowered = [p.strip().lower() for p in parts]
                if "query-id" in lowered and "corpus-id" in lowered and "score" in lowered:
                    columns = (lowered.index("query-id"), lowered.index("corpus-id"), lowered.index("score"))
                    continue
                if len(parts) == 4:
                    columns = (0, 2, 3)  # TREC: qid iteration docid grade
                elif len(parts) == 3:
                    columns = (0, 1, 2)  # BEIR without its header
                else:
                    raise InputError(path, number, "-", f"expected 3 (BEIR) or 4 (TREC) columns, got {len(parts)}")
            if len(parts) <= max(columns):
                raise InputError(path, number, "-", f"expected at least {max(columns) + 1} columns, got {len(parts)}")
            qid, docid, grade_text = parts[columns[0]].strip(), parts[columns[1]].strip(), parts[columns[2]].strip()
            try:
                grade = float(grade_text)
            except ValueError:
                raise InputError(path, number, "score", f"not a number: {grade_text!r}") from None
            labels.binary[(qid, docid)] = int(grade >= threshold)
    return labels


def labels_from_labelstudio(path: str | Path, *, name: str | None = None) -> LabelSet:
    """LabelSet from a Label Studio export: the majority label of each pair (ties are left out, counted)."""
    from hardneg.annotate import read_labelstudio_export

    path = Path(path)
    labels = LabelSet(name or f"labelstudio:{path.name}")
    ties = 0
    for pair in read_labelstudio_export(path):
        if pair.majority is None:
            ties += 1
            continue
        labels.binary[(pair.query_id, pair.docid)] = pair.majority
    labels.notes = {"ties_left_out": ties} if ties else {}
    return labels


def load_labels(
    spec: str,
    *,
    store: Any = None,
    threshold: float = 1,
    score_threshold: float | None = None,
) -> LabelSet:
    """A LabelSet from a source spec (see the module docstring)."""
    kind, _, value = spec.partition(":")
    if kind == "final":
        if value:
            from hardneg.judge.store import JudgmentStore

            if not Path(value).is_file():
                raise InputError(value, None, "-", "no such judgment store")
            with JudgmentStore(value, readonly=True) as other:
                return labels_from_final(other, name=spec)
        if store is None:
            raise ConfigError(f"{spec}: a store is needed (--store DB)")
        return labels_from_final(store, name=spec)
    if not value:
        raise ConfigError(f"bad source {spec!r}: expected stage:N, judge:NAME, final, qrels:FILE or labelstudio:FILE")
    if kind in ("stage", "judge"):
        if store is None:
            raise ConfigError(f"{spec}: a store is needed (--store DB)")
        if kind == "judge":
            return labels_from_store(store, judge_name=value, score_threshold=score_threshold, name=spec)
        stage_text, _, chash = value.partition("@")
        try:
            stage = int(stage_text)
        except ValueError:
            raise ConfigError(f"bad stage in {spec!r}: expected a number") from None
        return labels_from_store(
            store, stage=stage, config_hash=chash or None, score_threshold=score_threshold, name=spec
        )
    if kind == "qrels":
        return labels_from_qrels(value, threshold=threshold, name=spec)
    if kind == "labelstudio":
        return labels_from_labelstudio(value, name=spec)
    raise ConfigError(f"unknown source kind {kind!r} in {spec!r}: use stage, judge, qrels or labelstudio")


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
        return {
            "a": self.a,
            "b": self.b,
            "pairs": self.pairs,
            "queries": self.queries,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "binary": self.binary,
            "three_class": self.three,
            "notes": self.notes,
        }


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


__all__ = [
    "Agreement",
    "LabelSet",
    "compare",
    "labels_from_judgments",
    "labels_from_labelstudio",
    "labels_from_qrels",
    "labels_from_store",
    "load_labels",
]
