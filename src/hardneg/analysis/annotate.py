"""Human annotation round trip through Label Studio.

`export_tasks` writes Label Studio tasks for a seeded, per-subset stratified sample of judged (query, negative)
pairs: the annotator sees the query, its labelled positives (the reference) and one candidate, and answers
"Relevant" or "Not relevant". A labeling config (XML) is written beside the tasks. The judge's own label travels
in each task's data (not shown to annotators), so an export can be compared with the judge afterwards.

`import_annotations` reads Label Studio's JSON export (or JSON_MIN) back into a qrels-like TSV
(`query-id corpus-id score`, then `annotators relevant_votes` and one column per annotator), which
`hardneg agreement --b qrels:labels.tsv` reads. With several annotators the score is the majority;
ties are left out of the TSV by default and counted.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hardneg.data.atomic import atomic_path
from hardneg.data.io import read_instances
from hardneg.data.records import Instance, Passage, passage_text
from hardneg.data.textfile import read_text_file
from hardneg.errors import ConfigError, InputError

RELEVANT = "Relevant"
NOT_RELEVANT = "Not relevant"
CHOICE_NAME = "relevance"  # the <Choices name=...> of the labeling config

LABEL_CONFIG = f"""<View>
  <Header value="Query"/>
  <Text name="query" value="$query"/>
  <Header value="Known relevant passage(s) (the reference answer)"/>
  <Text name="positives" value="$positives"/>
  <Header value="Candidate passage: is it relevant to the query?"/>
  <Text name="candidate" value="$candidate"/>
  <Choices name="{CHOICE_NAME}" toName="candidate" choice="single-radio" showInline="true" required="true">
    <Choice value="{RELEVANT}" hotkey="1"/>
    <Choice value="{NOT_RELEVANT}" hotkey="2"/>
  </Choices>
</View>
"""


def _priority(seed: int, query_id: str, docid: str) -> int:
    # a hash, not a shared RNG stream: the sample depends only on the seed and the pair, never on file order
    return int.from_bytes(hashlib.sha256(f"{seed}\t{query_id}\t{docid}".encode()).digest()[:8], "big")


@dataclass
class _Judged:
    stage: int
    judge_name: str
    better: set[str]
    worse: set[str]
    docids: list[str]


def _latest_ok_judgments(store: Any, stage: int | None) -> dict[str, _Judged]:
    """Per query the ok listwise judgment of the highest stage (that of the final verdict)."""
    latest: dict[str, _Judged] = {}
    for j in store.iter_judgments(stage=stage, status="ok"):
        if j.better is None and j.worse is None:
            continue
        current = latest.get(j.query_id)
        if current is None or j.stage >= current.stage:  # rows come in ascending (stage, time)
            latest[j.query_id] = _Judged(j.stage, j.judge_name, set(j.better or ()), set(j.worse or ()), j.docids)
    return latest


@dataclass
class ExportSummary:
    tasks_path: Path
    config_path: Path
    tasks: int
    per_subset: dict[str, int]
    candidates: dict[str, int]  # judged pairs available per subset
    judged_queries_missing: int  # judged query_ids not found in the instances file

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks_path": str(self.tasks_path),
            "config_path": str(self.config_path),
            "tasks": self.tasks,
            "per_subset": self.per_subset,
            "candidates": self.candidates,
            "judged_queries_missing": self.judged_queries_missing,
        }


def config_path_for(tasks_path: str | Path) -> Path:
    """Where the labeling config goes: beside the tasks, `<stem>.label_config.xml`."""
    tasks_path = Path(tasks_path)
    stem = tasks_path.name[: -len(".json")] if tasks_path.name.endswith(".json") else tasks_path.name
    return tasks_path.with_name(f"{stem}.label_config.xml")


def export_tasks(
    store: Any,
    instances_path: str | Path,
    out_path: str | Path,
    *,
    per_subset: int = 100,
    seed: int = 0,
    only_flagged: bool = False,
    stage: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write Label Studio tasks for up to `per_subset` judged pairs per subset, and the labeling config.

    Judged pairs are the negatives of each query's latest ok listwise judgment (of `stage` if given);
    `only_flagged` keeps those the judge listed in <better> or <worse> (the paper's human study).
    One pass over the instances; memory holds only the sample.
    """
    if per_subset < 1:
        raise ConfigError(f"per_subset must be >= 1, got {per_subset}")
    judged = _latest_ok_judgments(store, stage)
    if not judged:
        raise ConfigError("the store has no ok listwise judgments to sample from")
    heaps: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    candidates: Counter[str] = Counter()
    found: set[str] = set()
    counter = 0
    for number, inst in enumerate(read_instances(instances_path), start=1):
        if progress is not None:
            progress(number)
        j = judged.get(inst.query_id)
        if j is None:
            continue
        found.add(inst.query_id)
        heap = heaps.setdefault(inst.subset, [])
        for docid in dict.fromkeys(j.docids):
            label = "better" if docid in j.better else "worse" if docid in j.worse else "none"
            if only_flagged and label == "none":
                continue
            try:
                passage = inst.negative(docid)
            except KeyError:
                raise InputError(
                    instances_path,
                    number,
                    "negative_passages",
                    f"query {inst.query_id!r}: judged docid {docid!r} is not among the instance's negatives",
                ) from None
            candidates[inst.subset] += 1
            # a max-heap of the negated priority keeps the N smallest priorities seen so far
            key = _priority(seed, inst.query_id, docid)
            counter += 1
            item = (-key, counter, {"inst": inst, "passage": passage, "label": label, "judged": j, "key": key})
            if len(heap) < per_subset:
                heapq.heappush(heap, item)
            elif -key > heap[0][0]:
                heapq.heapreplace(heap, item)
    tasks: list[dict[str, Any]] = []
    for subset in sorted(heaps):
        for _neg, _n, chosen in sorted(heaps[subset], key=lambda it: it[2]["key"]):
            tasks.append(_task(chosen["inst"], chosen["passage"], chosen["label"], chosen["judged"]))
    out_path = Path(out_path)
    config_path = config_path_for(out_path)
    with atomic_path(config_path) as tmp:
        tmp.write_text(LABEL_CONFIG, encoding="utf-8")
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    per = Counter(t["data"]["subset"] for t in tasks)
    return ExportSummary(
        tasks_path=out_path,
        config_path=config_path,
        tasks=len(tasks),
        per_subset=dict(sorted(per.items())),
        candidates=dict(sorted(candidates.items())),
        judged_queries_missing=len(set(judged) - found),
    )


def _task(inst: Instance, passage: Passage, label: str, judged: _Judged) -> dict[str, Any]:
    positives = "\n\n".join(f"[{i}] {passage_text(p, with_title=True)}" for i, p in enumerate(inst.positives, start=1))
    return {
        "data": {
            "query_id": inst.query_id,
            "docid": passage.docid,
            "subset": inst.subset,
            "query": inst.query,
            "positives": positives,
            "candidate": passage_text(passage, with_title=True),
            # not referenced by the labeling config, so annotators do not see the judge's answer
            "judge_label": label,
            "judge_stage": judged.stage,
            "judge_name": judged.judge_name,
        }
    }


# -- reading an export back -----------------------------------------------------------------------------------


@dataclass
class AnnotatedPair:
    """The human labels of one (query, candidate) pair."""

    query_id: str
    docid: str
    votes: dict[str, int] = field(default_factory=dict)  # annotator -> 1 relevant / 0 not

    @property
    def relevant_votes(self) -> int:
        return sum(self.votes.values())

    @property
    def majority(self) -> int | None:
        """1 or 0 by majority; None on a tie."""
        yes, total = self.relevant_votes, len(self.votes)
        if 2 * yes == total:
            return None
        return int(2 * yes > total)


def _annotator(value: Any) -> str:
    # Label Studio writes completed_by as a user id, or (some versions) an object with id and email
    if isinstance(value, dict):
        return str(value.get("email") or value.get("id") or "unknown")
    return "unknown" if value is None else str(value)


def _choice(path: Path, index: int, value: Any) -> int:
    choices = value if isinstance(value, list) else [value]
    if len(choices) != 1 or choices[0] not in (RELEVANT, NOT_RELEVANT):
        raise InputError(path, index, CHOICE_NAME, f"expected one of {RELEVANT!r} / {NOT_RELEVANT!r}, got {value!r}")
    return int(choices[0] == RELEVANT)


def read_labelstudio_export(path: str | Path) -> Iterator[AnnotatedPair]:
    """Pairs with their votes from a Label Studio export (JSON: tasks with `annotations`; or JSON_MIN).

    Cancelled (skipped) annotations and tasks without any annotation are left out. In errors the "line" is the
    task's position in the export (1-based).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "-", "no such file")
    if path.is_dir():
        raise InputError(path, None, "-", "a folder, not a Label Studio export file (.json)")
    text = read_text_file(path, "JSON")
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, "-", f"broken JSON: {exc.msg}") from None
    if not isinstance(tasks, list):
        raise InputError(path, None, "-", "expected a JSON list of tasks (Label Studio's JSON export)")
    pairs: dict[tuple[str, str], AnnotatedPair] = {}
    for index, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            raise InputError(path, index, "-", "a task must be an object")
        data = task.get("data", task)  # JSON_MIN puts the data fields at the top level
        for key in ("query_id", "docid"):
            if key not in data:
                raise InputError(path, index, f"data.{key}", "missing (was this exported from hardneg's tasks?)")
        pair_key = (str(data["query_id"]), str(data["docid"]))
        pair = pairs.setdefault(pair_key, AnnotatedPair(*pair_key))
        if "annotations" in task:
            for number, ann in enumerate(task["annotations"] or [], start=1):
                if ann.get("was_cancelled"):
                    continue
                values = [
                    r.get("value", {}).get("choices")
                    for r in ann.get("result") or []
                    if r.get("from_name") == CHOICE_NAME and r.get("type") == "choices"
                ]
                if not values:
                    continue  # submitted without the relevance choice
                name = _annotator(ann.get("completed_by"))
                if name == "unknown":
                    name = f"annotation-{ann.get('id', number)}"
                pair.votes[name] = _choice(path, index, values[-1])
        elif CHOICE_NAME in task:
            name = _annotator(task.get("annotator"))
            if name == "unknown":
                name = f"annotation-{task.get('annotation_id', index)}"
            pair.votes[name] = _choice(path, index, task[CHOICE_NAME])
    for pair in pairs.values():
        if pair.votes:
            yield pair


@dataclass
class ImportSummary:
    out_path: Path
    pairs: int  # rows written
    annotators: list[str]
    ties: int  # pairs with tied votes (left out unless tie != drop)
    relevant: int
    not_relevant: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_path": str(self.out_path)}


def import_annotations(
    export_path: str | Path,
    out_path: str | Path,
    *,
    tie: Literal["drop", "relevant", "not_relevant"] = "drop",
) -> ImportSummary:
    """Write a qrels-like TSV from a Label Studio export: majority score plus one column per annotator."""
    if tie not in ("drop", "relevant", "not_relevant"):
        raise ConfigError(f"tie must be drop, relevant or not_relevant, got {tie!r}")
    pairs = sorted(read_labelstudio_export(export_path), key=lambda p: (p.query_id, p.docid))
    if not pairs:
        raise InputError(export_path, None, "annotations", "no completed annotations in this export")
    annotators = sorted({name for p in pairs for name in p.votes})
    ties = relevant = not_relevant = written = 0
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        header = ["query-id", "corpus-id", "score", "annotators", "relevant_votes"] + [f"ann:{a}" for a in annotators]
        handle.write("\t".join(header) + "\n")
        for p in pairs:
            score = p.majority
            if score is None:
                ties += 1
                if tie == "drop":
                    continue
                score = int(tie == "relevant")
            relevant += score
            not_relevant += 1 - score
            votes = [str(p.votes[a]) if a in p.votes else "" for a in annotators]
            row = [p.query_id, p.docid, str(score), str(len(p.votes)), str(p.relevant_votes), *votes]
            handle.write("\t".join(row) + "\n")
            written += 1
    return ImportSummary(out_path, written, annotators, ties, relevant, not_relevant)


__all__ = [
    "LABEL_CONFIG",
    "AnnotatedPair",
    "ExportSummary",
    "ImportSummary",
    "config_path_for",
    "export_tasks",
    "import_annotations",
    "read_labelstudio_export",
]
