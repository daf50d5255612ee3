"""relabel_file: streams, keeps the format, writes atomically; then relabels the real rlhn-sample with the
reference implementation's GPT-4o-mini / GPT-4o verdicts.

The expected docids are read from the raw responses here, independently of hardneg's parser and store:
the `<verdict>` section's `Doc (i)` references, mapped through the row's own prompt-order id list.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hardneg.data.io import read_instances, write_instances
from hardneg.errors import ConfigError, InputError
from hardneg.judging.importer import import_judgments
from hardneg.judging.store import JudgmentStore
from hardneg.judging.verdicts import FinalVerdict
from hardneg.relabeling import RelabelOptions, relabel_file
from support.relabel_cases import make, verdict


def rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def listed(row: dict[str, Any], tag: str) -> list[str]:
    ids = row["negative_passage_ids"]
    ids = ast.literal_eval(ids) if isinstance(ids, str) else ids
    verdict = row["response"].split("<verdict>")[-1]
    section = re.search(rf"<{tag}>(.*?)</{tag}>", verdict, re.S)
    assert section is not None
    return [ids[int(i) - 1] for i in re.findall(r"Doc \((\d+)\)", section.group(1))]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, rlhn_stage1: Path, rlhn_stage2: Path) -> JudgmentStore:
    db = JudgmentStore(tmp_path_factory.mktemp("relabel") / "judgments.db")
    import_judgments([rlhn_stage1], 1, "gpt-4o-mini", db)
    import_judgments([rlhn_stage2], 2, "gpt-4o", db)
    return db


def expected_final(stage1: Path, stage2: Path, tags: tuple[str, ...]) -> dict[str, list[str]]:
    final = {r["query_id"]: [d for t in tags for d in listed(r, t)] for r in rows(stage1)}
    final.update({r["query_id"]: [d for t in tags for d in listed(r, t)] for r in rows(stage2)})
    return {q: list(dict.fromkeys(ids)) for q, ids in final.items()}


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(("tags", "lists"), [("both", ("better", "worse")), ("better", ("better",))])
def test_rlhn_moves_exactly_what_gpt4o_listed(
    tmp_path: Path, store: JudgmentStore, rlhn_stage1: Path, rlhn_stage2: Path, tags: str, lists: tuple[str, ...]
) -> None:
    expected = expected_final(rlhn_stage1, rlhn_stage2, lists)
    original = {i.query_id: i for i in read_instances(rlhn_stage1)}
    out = tmp_path / "clean.jsonl.gz"
    options = RelabelOptions(treatment="rlhn", tags=tags, max_flags=None)  # type: ignore[arg-type]
    report = relabel_file(rlhn_stage1, out, store.final_verdicts(), options)
    got = {i.query_id: i for i in read_instances(out)}
    assert set(got) == set(original)  # no instance lost all 15 negatives
    moved_total = 0
    for qid, inst in got.items():
        before = original[qid]
        moved = [d for d in inst.positive_ids if d not in before.positive_ids]
        assert sorted(moved) == sorted(expected[qid]), qid
        assert sorted(inst.negative_ids) == sorted(set(before.negative_ids) - set(expected[qid]))
        moved_total += len(moved)
    assert report.total.negatives_moved == moved_total > 0
    assert report.total.changed == sum(1 for ids in expected.values() if ids)
    assert report.total.unjudged == 0 and report.total.failed == 0


@pytest.mark.slow
@pytest.mark.shared
def test_stage2_verdicts_replace_stage1(tmp_path: Path, store: JudgmentStore, rlhn_stage1: Path) -> None:
    # stage 1 listed negatives in 17 instances; the final (stage-2) verdicts list fewer: only those are removed
    report = relabel_file(rlhn_stage1, tmp_path / "removed.jsonl", store.final_verdicts(), RelabelOptions("remove"))
    total = report.total
    assert total.instances_in == 25
    assert total.dropped["flagged"] + total.dropped["ambiguous"] == total.flagged_instances == 10
    assert total.kept == 15
    # the stage-1-only variant (better list) from the same store
    stage1 = {q: v for q, v in store.final_verdicts().items() if v.stage == 1}
    assert len(stage1) == 8  # the 8 instances stage 1 did not route


def test_relabel_file_streams_and_keeps_format(tmp_path: Path) -> None:
    instances = [make(f"q{i}", shuffle_seed=i) for i in range(5)]
    src = tmp_path / "train.jsonl.gz"
    write_instances(src, instances)
    verdicts = {"q0": verdict("q0", [2], [3]), "q3": verdict("q3", list(range(6)), [])}
    seen: list[int] = []
    out_path = tmp_path / "out" / "clean.jsonl.gz"
    report = relabel_file(src, out_path, verdicts, RelabelOptions(treatment="rlhn"), progress=seen.append)
    assert seen == [1, 2, 3, 4, 5]
    with gzip.open(out_path, "rt") as handle:
        assert len(handle.readlines()) == 4
    got = {i.query_id: i for i in read_instances(out_path)}
    assert set(got) == {"q0", "q1", "q2", "q4"}
    assert sorted(got["q0"].positive_ids) == ["q0-n2", "q0-n3", "q0-p0"]
    assert report.total.dropped["too_few_negatives"] == 1  # q3: all six moved, none left
    # parquet output by `to`, and by name
    report = relabel_file(src, tmp_path / "clean.parquet", verdicts, RelabelOptions(treatment="hn_remove"))
    assert len(list(read_instances(tmp_path / "clean.parquet"))) == 4
    with pytest.raises(ConfigError, match="unknown output format"):  # the name decides, as for every writer
        relabel_file(src, tmp_path / "clean_noext", verdicts, RelabelOptions(treatment="default"), to="jsonl")
    assert not (tmp_path / "clean_noext").exists()
    with pytest.raises(ConfigError):
        relabel_file(src, tmp_path / "x.jsonl", verdicts, to="parquet")


def test_relabel_file_atomic_on_error(tmp_path: Path) -> None:
    src = tmp_path / "train.jsonl"
    write_instances(src, [make("q0"), make("q1")])
    out_path = tmp_path / "clean.jsonl"
    with pytest.raises(InputError) as info:
        relabel_file(src, out_path, {"q1": FinalVerdict("q1", 1, ["nope"], [])})
    assert info.value.problem.line == 2 and str(src) in str(info.value)
    assert not out_path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]
