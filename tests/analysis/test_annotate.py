"""Label Studio round trip: export tasks, annotate (a hand-made export in Label Studio's JSON format), import."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from hardneg.analysis.agreement import compare
from hardneg.analysis.annotate import config_path_for, export_tasks, import_annotations, read_labelstudio_export
from hardneg.analysis.labels import load_labels
from hardneg.data.io import write_instances
from hardneg.data.records import Instance, Passage
from hardneg.errors import InputError
from hardneg.judging.base import JudgeOutput
from hardneg.judging.store import JudgmentStore


@pytest.fixture
def judged(tmp_path: Path) -> tuple[JudgmentStore, Path]:
    store = JudgmentStore(tmp_path / "j.db")
    instances = []
    for subset, n in (("fiqa", 6), ("msmarco", 4)):
        for q in range(n):
            qid = f"{subset}-{q}"
            negs = [Passage(f"{qid}-n{i}", f"negative {i}", title="T" if i == 0 else "") for i in range(5)]
            instances.append(Instance(qid, f"question {qid}?", [Passage(f"{qid}-p", "the answer")], negs, subset))
            docids = [p.docid for p in negs]
            store.put(qid, 1, "mini", {"model": "mini"}, JudgeOutput(docids, better=[docids[0]], worse=[docids[1]]))
            if q % 2 == 0:  # routed: stage 2 keeps only the first
                store.put(qid, 2, "big", {"model": "big"}, JudgeOutput(docids, better=[docids[0]], worse=[]))
    path = tmp_path / "train.jsonl"
    write_instances(path, instances)
    return store, path


def test_export_is_stratified_seeded_and_importable(tmp_path: Path, judged: tuple[JudgmentStore, Path]) -> None:
    store, instances = judged
    out = tmp_path / "tasks.json"
    summary = export_tasks(store, instances, out, per_subset=7, seed=3)
    tasks = json.loads(out.read_text())
    assert summary.tasks == len(tasks) == 14 and summary.per_subset == {"fiqa": 7, "msmarco": 7}
    assert summary.candidates == {"fiqa": 30, "msmarco": 20}
    data = tasks[0]["data"]
    assert set(data) >= {"query_id", "docid", "query", "positives", "candidate", "judge_label", "judge_stage"}
    assert data["positives"] == "[1] the answer"
    # the judge label is that of the highest stage: routed queries carry stage 2's verdict
    for task in tasks:
        d = task["data"]
        routed = int(d["query_id"].rsplit("-", 1)[1]) % 2 == 0
        assert d["judge_stage"] == (2 if routed else 1)
        if d["docid"].endswith("-n1"):
            assert d["judge_label"] == ("none" if routed else "worse")
    # same seed, same sample; another seed, another sample
    again = tmp_path / "again.json"
    export_tasks(store, instances, again, per_subset=7, seed=3)
    assert json.loads(again.read_text()) == tasks
    export_tasks(store, instances, again, per_subset=7, seed=4)
    assert json.loads(again.read_text()) != tasks
    # only flagged pairs
    flagged = export_tasks(store, instances, tmp_path / "flagged.json", per_subset=100, only_flagged=True)
    assert flagged.tasks == 3 * 1 + 3 * 2 + 2 * 1 + 2 * 2  # routed: 1 flag, unrouted: 2
    # the labeling config is valid XML whose fields match the task data
    config = ET.fromstring(config_path_for(out).read_text())
    values = {el.get("value") for el in config.iter("Text")}
    assert values == {"$query", "$positives", "$candidate"}
    assert [c.get("value") for c in config.iter("Choice")] == ["Relevant", "Not relevant"]


def _annotation(ann_id: int, user: Any, choice: str, task_id: int, cancelled: bool = False) -> dict[str, Any]:
    """One annotation as Label Studio's JSON export writes it."""
    return {
        "id": ann_id,
        "completed_by": user,
        "result": [
            {
                "value": {"choices": [choice]},
                "id": f"r{ann_id}",
                "from_name": "relevance",
                "to_name": "candidate",
                "type": "choices",
                "origin": "manual",
            }
        ],
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2025-06-01T10:00:00.000000Z",
        "updated_at": "2025-06-01T10:00:00.000000Z",
        "lead_time": 12.5,
        "prediction": {},
        "result_count": 0,
        "task": task_id,
        "project": 1,
        "parent_prediction": None,
        "parent_annotation": None,
    }


def test_round_trip_to_agreement(tmp_path: Path, judged: tuple[JudgmentStore, Path]) -> None:
    store, instances = judged
    tasks_path = tmp_path / "tasks.json"
    export_tasks(store, instances, tasks_path, per_subset=10, seed=0)
    tasks = json.loads(tasks_path.read_text())
    export = []
    truth = {}
    for n, task in enumerate(tasks, start=1):
        d = task["data"]
        judge_says = d["judge_label"] != "none"
        # annotators 1 and 2 agree with the judge except on every 4th task; annotator 3 always says relevant
        human = judge_says if n % 4 else not judge_says
        anns = [
            _annotation(10 * n + 1, 1, "Relevant" if human else "Not relevant", n),
            _annotation(10 * n + 2, {"id": 2, "email": "b@lab"}, "Relevant" if human else "Not relevant", n),
        ]
        if n % 3 == 0:
            anns.append(_annotation(10 * n + 3, 3, "Relevant", n))
        if n % 5 == 0:
            anns.append(_annotation(10 * n + 4, 4, "Not relevant", n, cancelled=True))  # skipped: ignored
        export.append({"id": n, "data": d, "annotations": anns, "predictions": [], "meta": {}, "project": 1})
        truth[(d["query_id"], d["docid"])] = int(human)
    export.append({"id": 999, "data": dict(tasks[0]["data"], docid="unannotated"), "annotations": []})
    export_path = tmp_path / "project-1-at-2025.json"
    export_path.write_text(json.dumps(export))

    labels_path = tmp_path / "labels.tsv"
    summary = import_annotations(export_path, labels_path)
    assert summary.pairs == len(tasks) == 20 and summary.ties == 0
    assert summary.annotators == ["1", "3", "b@lab"]
    lines = labels_path.read_text().splitlines()
    assert lines[0].split("\t") == [
        "query-id",
        "corpus-id",
        "score",
        "annotators",
        "relevant_votes",
        "ann:1",
        "ann:3",
        "ann:b@lab",
    ]
    rows = {(r[0], r[1]): r for r in (line.split("\t") for line in lines[1:])}
    assert {k: int(r[2]) for k, r in rows.items()} == truth  # 2 of 2 or 2 of 3 agree: the majority is `human`
    assert all(r[6] == "" for k, r in rows.items() if r[3] == "2")

    # the TSV and the export both feed `agreement`: 5 of 20 flipped
    for spec in (f"qrels:{labels_path}", f"labelstudio:{export_path}"):
        human = load_labels(spec)
        result = compare(load_labels("stage:2", store=store), human)
        assert result.pairs == sum(1 for t in tasks if t["data"]["judge_stage"] == 2)
        judge = compare(_final_labels(tasks), human)
        assert judge.pairs == 20 and judge.binary["accuracy"] == pytest.approx(15 / 20)


def _final_labels(tasks: list[dict[str, Any]]):
    from hardneg.analysis.agreement import LabelSet

    return LabelSet(
        "judge", {(t["data"]["query_id"], t["data"]["docid"]): int(t["data"]["judge_label"] != "none") for t in tasks}
    )


def test_ties_json_min_and_bad_exports(tmp_path: Path) -> None:
    # JSON_MIN: data fields at the top level, the choice under the control's name
    rows = [
        {"id": 1, "query_id": "q", "docid": "d1", "relevance": "Relevant", "annotator": "a@x", "annotation_id": 1},
        {"id": 1, "query_id": "q", "docid": "d1", "relevance": "Not relevant", "annotator": "b@x", "annotation_id": 2},
        {"id": 2, "query_id": "q", "docid": "d2", "relevance": "Relevant", "annotator": "a@x", "annotation_id": 3},
    ]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(rows))
    pairs = {p.docid: p for p in read_labelstudio_export(path)}
    assert pairs["d1"].majority is None and pairs["d2"].majority == 1
    summary = import_annotations(path, tmp_path / "l.tsv")
    assert summary.ties == 1 and summary.pairs == 1
    summary = import_annotations(path, tmp_path / "l.tsv", tie="relevant")
    assert summary.pairs == 2 and summary.relevant == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"data": {"query_id": "q"}, "annotations": []}]))
    with pytest.raises(InputError) as info:
        import_annotations(bad, tmp_path / "x.tsv")
    assert info.value.problem.field == "data.docid" and info.value.problem.line == 1
    assert not (tmp_path / "x.tsv").exists()
    bad.write_text(
        json.dumps([{"data": {"query_id": "q", "docid": "d"}, "annotations": [_annotation(1, 1, "Maybe", 1)]}])
    )
    with pytest.raises(InputError):
        import_annotations(bad, tmp_path / "x.tsv")
