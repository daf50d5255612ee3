"""Relevance labels on (query_id, docid) pairs, from any source: one `LabelSet` for agreement and calibration.

Sources (the `load_labels` spec, CLI `--a` / `--b` of `agreement`):
  stage:N            ok judgments of stage N in the store (the latest record when a stage has several configs)
  stage:N@HASH       only the records of that configuration hash
  judge:NAME         ok judgments of the judge named NAME
  final              the final verdicts of the store (what relabel uses: the last stage that judged each query);
                     every negative judged by any stage counts, relevant when the final verdict lists it
  final:STORE        the same, read from another store file (e.g. a local cascade against imported GPT-4o verdicts)
  qrels:FILE         BEIR (`query-id corpus-id score` with header) or TREC (`qid Q0 docid grade`) qrels
  labelstudio:FILE   a Label Studio JSON (or JSON_MIN) export: the majority label per pair
and, for calibration, judged rows of the reference implementation (`labels_from_response_files`).

A label is binary (1 relevant, 0 not: listed in `<better>` or `<worse>`, a qrels grade >= threshold, a majority
of annotators) and, where the source grades, one of better / worse / none (`three`). `graded` gives the
0 / 1 / 2 form calibration reads (2 better, 1 worse or relevant, 0 not).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.analysis.annotate import read_labelstudio_export
from hardneg.data.io import iter_jsonl
from hardneg.data.records import Instance
from hardneg.data.textfile import read_text_file
from hardneg.errors import ConfigError, InputError
from hardneg.judging.prompts.parse import parse_verdict
from hardneg.judging.store import JudgmentStore
from hardneg.judging.verdicts import Judgment

Pair = tuple[str, str]  # (query_id, docid)
CLASSES3 = ("better", "worse", "none")
_GRADE = {"better": 2, "worse": 1, "none": 0}


@dataclass
class LabelSet:
    """Labels of one source: binary (1 relevant, 0 not) and, where the source grades, better / worse / none."""

    name: str
    binary: dict[Pair, int] = field(default_factory=dict)
    three: dict[Pair, str] | None = None
    notes: dict[str, int] = field(default_factory=dict)  # what was left out and why, counted
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (query_id, reason) of queries left out
    sources: dict[str, str] = field(default_factory=dict)  # query_id -> the file or stage its labels came from

    def __len__(self) -> int:
        return len(self.binary)

    @property
    def graded(self) -> dict[Pair, int]:
        """2 better, 1 worse (or relevant, for binary sources), 0 not relevant."""
        if self.three is not None:
            return {pair: _GRADE[cls] for pair, cls in self.three.items()}
        return dict(self.binary)

    def set(self, pair: Pair, cls: str) -> None:
        self.binary[pair] = int(cls != "none")
        if self.three is not None:
            self.three[pair] = cls

    def drop_query(self, query_id: str, docids: Iterable[str]) -> None:
        for docid in docids:
            self.binary.pop((query_id, docid), None)
            if self.three is not None:
                self.three.pop((query_id, docid), None)


def labels_from_verdicts(
    verdicts: Iterable[tuple[str, Sequence[str], Sequence[str], Sequence[str]]], *, name: str = "verdicts"
) -> LabelSet:
    """Labels from (query_id, judged docids, better, worse): better, worse, or none for judged but not listed."""
    labels = LabelSet(name, three={})
    for qid, docids, better, worse in verdicts:
        better_set, worse_set = set(better), set(worse)
        for docid in docids:
            labels.set((qid, docid), "better" if docid in better_set else "worse" if docid in worse_set else "none")
    return labels


def labels_from_judgments(
    judgments: Iterable[Judgment], name: str, *, score_threshold: float | None = None
) -> LabelSet:
    """LabelSet from store `Judgment`s, in store order (stage, query_id, time): a later record of a query replaces
    an earlier one, and a later record that failed leaves the query out (its reason in `skipped`)."""
    labels = LabelSet(name, three={})
    notes: Counter[str] = Counter()
    seen: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for j in judgments:
        if j.query_id in seen:
            # several configurations or stages judged this query: the latest record wins, its pairs only
            notes["judgments_replaced"] += 1
            labels.drop_query(j.query_id, seen.pop(j.query_id))
        if j.status != "ok":
            notes[f"judgments_{j.status}"] += 1
            skipped[j.query_id] = f"stage {j.stage}: {j.status} {j.reason}".strip()
            continue
        if j.better is not None or j.worse is not None:
            better, worse = set(j.better or ()), set(j.worse or ())
            for docid in j.docids:
                labels.set((j.query_id, docid), "better" if docid in better else "worse" if docid in worse else "none")
        elif j.scores is not None:
            if score_threshold is None:
                raise ConfigError(f"{name}: this judge gives scores, not verdicts: pass a score threshold")
            labels.three = None
            for docid in j.docids:
                if docid in j.scores:
                    labels.binary[(j.query_id, docid)] = int(j.scores[docid] >= score_threshold)
        else:
            notes["judgments_without_labels"] += 1
            continue
        skipped.pop(j.query_id, None)
        seen[j.query_id] = list(j.docids)
        labels.sources[j.query_id] = f"stage {j.stage}"
    if labels.three is not None and len(labels.three) != len(labels.binary):
        labels.three = None
    labels.notes = dict(notes)
    labels.skipped = sorted(skipped.items())
    return labels


def _open(store: JudgmentStore | str | Path) -> tuple[JudgmentStore, bool]:
    if isinstance(store, JudgmentStore):
        return store, False
    if not Path(store).is_file():
        raise InputError(store, None, "-", "no such judgment store")
    return JudgmentStore(store, readonly=True), True


def labels_from_store(
    store: JudgmentStore | str | Path,
    *,
    stage: int | None = None,
    judge_name: str | None = None,
    config_hash: str | None = None,
    score_threshold: float | None = None,
    name: str | None = None,
) -> LabelSet:
    """LabelSet of one stage or judge of a judgment store (a store or its path); with neither, every record, the
    highest stage winning (each query's final listwise verdict)."""
    name = name or (f"stage:{stage}" if stage is not None else f"judge:{judge_name}" if judge_name else "store")
    db, owned = _open(store)
    try:
        judgments = db.iter_judgments(stage=stage, judge_name=judge_name, config_hash=config_hash)
        labels = labels_from_judgments(judgments, name, score_threshold=score_threshold)
    finally:
        if owned:
            db.close()
    if not labels.binary and not labels.skipped:
        raise ConfigError(f"{name}: no ok judgments in {db.path}")
    return labels


def labels_from_final(store: JudgmentStore, *, name: str = "final", allow_partial: bool = False) -> LabelSet:
    """LabelSet of a store's final verdicts over every negative any stage judged (failed verdicts left out)."""
    judged: dict[str, set[str]] = {}
    for j in store.iter_judgments(status="ok"):
        judged.setdefault(j.query_id, set()).update(j.docids)
    labels = LabelSet(name, three={})
    notes: Counter[str] = Counter()
    for query_id, verdict in store.final_verdicts(allow_partial=allow_partial).items():
        if verdict.status != "ok":
            notes[f"final_{verdict.status}"] += 1
            labels.skipped.append((query_id, f"final verdict {verdict.status}: {verdict.reason}".strip()))
            continue
        better, worse = set(verdict.better), set(verdict.worse)
        for docid in sorted(judged.get(query_id, set()) | better | worse):
            labels.set((query_id, docid), "better" if docid in better else "worse" if docid in worse else "none")
        labels.sources[query_id] = f"stage {verdict.stage}"
    labels.notes = dict(notes)
    if not labels.binary:
        raise ConfigError(f"{name}: no final verdicts in {getattr(store, 'path', 'the store')}")
    return labels


def read_grades(path: str | Path) -> dict[Pair, float]:
    """The grade of every (query_id, docid) of a qrels file: BEIR TSV with a `query-id corpus-id score` header,
    BEIR without it, or TREC `qid Q0 docid grade`; extra columns (per-annotator labels) are ignored."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "-", "no such file")
    text = read_text_file(path, "qrels")
    grades: dict[Pair, float] = {}
    columns: tuple[int, int, int] | None = None
    with io.StringIO(text, newline=None) as handle:  # lines as a text file reads them (universal newlines)
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
                grades[(qid, docid)] = float(grade_text)
            except ValueError:
                raise InputError(path, number, "score", f"not a number: {grade_text!r}") from None
    return grades


def labels_from_qrels(
    path: str | Path, *, threshold: float = 1, name: str | None = None, instances: Iterable[Instance] | None = None
) -> LabelSet:
    """LabelSet from a qrels file (`read_grades`): relevant when grade >= threshold. With `instances`, the labels
    are those of the instances' negatives, a negative absent from the qrels not relevant."""
    path = Path(path)
    labels = LabelSet(name or f"qrels:{path.name}")
    labels.binary = {pair: int(grade >= threshold) for pair, grade in read_grades(path).items()}
    if instances is not None:
        qrels = labels.binary
        labels.binary = {
            (inst.query_id, docid): qrels.get((inst.query_id, docid), 0)
            for inst in instances
            for docid in inst.negative_ids
        }
    return labels


def labels_from_labelstudio(path: str | Path, *, name: str | None = None) -> LabelSet:
    """LabelSet from a Label Studio export: the majority label of each pair (ties are left out, counted)."""
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


def labels_from_response_files(paths: Sequence[str | Path], *, name: str = "responses") -> LabelSet:
    """Labels from judged reference-format files (`response`, `negative_passage_ids`, `finish_reason`).

    Files are read in order and a later file's verdict replaces an earlier one for the same query: pass the
    stage-1 file, then the stage-2 file, to get the final verdict (stage 2 where routed, else stage 1).
    Unparseable verdicts are skipped and reported, never read as "no false negatives".
    """
    per_query: dict[str, tuple[list[str], list[str], list[str]]] = {}
    skipped: dict[str, str] = {}
    sources: dict[str, str] = {}
    for path in paths:
        for line, row in iter_jsonl(path):
            if not isinstance(row, dict) or "query_id" not in row:
                raise InputError(path, line, "query_id", "missing: not a judged instance row")
            qid = str(row["query_id"])
            docids = row.get("negative_passage_ids")
            if not isinstance(docids, list):
                raise InputError(path, line, "negative_passage_ids", "missing or not a list (not a judged row?)")
            if "response" not in row:
                raise InputError(path, line, "response", "missing (not a judged row?)")
            docids = [str(d) for d in docids]
            parsed = parse_verdict(row["response"], docids, row.get("finish_reason"))
            sources[qid] = str(path)
            if not parsed.ok:
                skipped[qid] = f"{path}:{line}: {parsed.reason}"
                per_query.pop(qid, None)
                continue
            skipped.pop(qid, None)
            per_query[qid] = (docids, parsed.better, parsed.worse)
    labels = labels_from_verdicts(((q, d, b, w) for q, (d, b, w) in per_query.items()), name=name)
    labels.skipped = sorted(skipped.items())
    labels.sources = sources
    return labels


def load_labels(
    spec: str,
    *,
    store: JudgmentStore | None = None,
    threshold: float = 1,
    score_threshold: float | None = None,
    allow_partial: bool = False,
) -> LabelSet:
    """A LabelSet from a source spec (see the module docstring); `allow_partial` as for `final_verdicts`."""
    kind, _, value = spec.partition(":")
    if kind == "final":
        if value:
            other, _ = _open(value)
            with other:
                return labels_from_final(other, name=spec, allow_partial=allow_partial)
        if store is None:
            raise ConfigError(f"{spec}: a store is needed", param="store")
        return labels_from_final(store, name=spec, allow_partial=allow_partial)
    if not value:
        raise ConfigError(f"bad source {spec!r}: expected stage:N, judge:NAME, final, qrels:FILE or labelstudio:FILE")
    if kind in ("stage", "judge"):
        if store is None:
            raise ConfigError(f"{spec}: a store is needed", param="store")
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


__all__ = [
    "CLASSES3",
    "LabelSet",
    "Pair",
    "labels_from_final",
    "labels_from_judgments",
    "labels_from_labelstudio",
    "labels_from_qrels",
    "labels_from_response_files",
    "labels_from_store",
    "labels_from_verdicts",
    "load_labels",
    "read_grades",
]
