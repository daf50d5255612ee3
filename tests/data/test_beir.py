"""BEIR folder reader: layout variants and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hardneg.data.beir import load_beir, load_qrels
from hardneg.errors import InputError


def make_beir(folder: Path, *, gz: bool = False) -> Path:
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "T", "text": "one"},
        {"_id": "d2", "text": "two"},
        {"_id": 3, "title": None, "text": "three"},
    ]
    lines = "".join(json.dumps(d) + "\n" for d in docs)
    if gz:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        (folder / "corpus.jsonl").write_text(lines, encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "second"}\n', encoding="utf-8"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t3\t0\nq2\td2\t2\n", encoding="utf-8"
    )
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_load_beir(tmp_path: Path, gz: bool) -> None:
    data = load_beir(make_beir(tmp_path / "b", gz=gz), "test")
    assert set(data.corpus) == {"d1", "d2", "3"}
    assert (data.corpus["d1"].title, data.corpus["d2"].title, data.corpus["3"].title) == ("T", "", "")
    assert data.queries == {"q1": "first", "q2": "second"}
    assert data.qrels == {"q1": {"d1": 1, "3": 0}, "q2": {"d2": 2}}


def test_beir_errors(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "b")
    with pytest.raises(InputError, match=r"no qrels for split 'train' \(available: test\)"):
        load_beir(folder, "train")
    (folder / "qrels" / "dev.tsv").write_text("q1\td1\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_qrels(folder, "dev")
    assert str(info.value) == f"{folder / 'qrels' / 'dev.tsv'}:1: -: expected 3 tab-separated columns, got 2"
    (folder / "corpus.jsonl").write_text('{"_id": "d1"}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_beir(folder, "test")
    assert str(info.value) == f"{folder / 'corpus.jsonl'}:1: text: missing or not a string"
    with pytest.raises(InputError, match="not a BEIR folder"):
        load_beir(tmp_path / "nothing", "test")


@pytest.mark.shared
@pytest.mark.slow
def test_scifact(scifact_dir: Path) -> None:
    train = load_beir(scifact_dir, "train")
    test = load_beir(scifact_dir, "test")
    assert len(train.corpus) == 5183
    assert (len(train.queries), sum(len(q) for q in train.qrels.values())) == (809, 919)
    assert (len(test.queries), sum(len(q) for q in test.qrels.values())) == (300, 339)
    assert all(p.text for p in train.corpus.values())
