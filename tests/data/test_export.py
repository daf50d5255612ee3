"""Exports: every layout written in every format and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.data.export import EXPORT_LAYOUTS, corpus_path_for, export
from hardneg.data.io import iter_jsonl, iter_raw_rows, read_instances
from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError, InputError


def inst(qid: str, n_pos: int, n_neg: int, subset: str = "s") -> Instance:
    return Instance(
        query_id=qid,
        query=f"query {qid}",
        positives=[Passage(f"{qid}-p{i}", f"pos text {i}", title="PT" if i == 0 else "") for i in range(n_pos)],
        negatives=[Passage(f"shared-{i}" if i < 2 else f"{qid}-n{i}", f"neg text {i}") for i in range(n_neg)],
        subset=subset,
        extra={"response": "kept"},
    )


INSTANCES = [inst("a", 2, 5), inst("b", 1, 3), inst("c", 1, 1)]


def read(path: Path) -> list[dict]:
    return [row for _n, row in iter_raw_rows(path)]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".hf"])
def test_st_triplet_one_row_per_negative(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"t{suffix}"
    result = export(INSTANCES, out, "st-triplet")
    rows = read(out)
    assert result.rows == len(rows) == 5 + 3 + 1
    assert set(rows[0]) == {"query", "positive", "negative"}
    # Negatives of `a` take the positives in turn; titles are prepended.
    assert [r["positive"] for r in rows[:5]] == ["PT pos text 0", "pos text 1"] * 2 + ["PT pos text 0"]
    assert [r["negative"] for r in rows[:5]] == [f"neg text {i}" for i in range(5)]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_st_ntuple(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"n{suffix}"
    result = export(INSTANCES, out, "st-ntuple", negatives=3, seed=7, with_title=False)
    rows = read(out)
    # `a`: one row per positive, 3 of its 5 negatives; `b`: exactly 3; `c` (1 negative) skipped.
    assert (result.rows, result.skipped, result.instances) == (3, 1, 3)
    assert list(rows[0]) == ["query", "positive", "negative_1", "negative_2", "negative_3"]
    assert rows[0]["positive"] == "pos text 0"
    picked = [rows[0][f"negative_{i}"] for i in (1, 2, 3)]
    assert picked == sorted(picked)  # file order kept
    assert rows[0] == {**rows[0], **{k: v for k, v in rows[1].items() if k.startswith("negative_")}}
    assert [rows[2][f"negative_{i}"] for i in (1, 2, 3)] == ["neg text 0", "neg text 1", "neg text 2"]
    # Same seed, other order of instances: same picks per query.
    export(list(reversed(INSTANCES)), tmp_path / "again.jsonl", "st-ntuple", negatives=3, seed=7, with_title=False)
    again = {(r["query"], r["positive"]): r for r in read(tmp_path / "again.jsonl")}
    assert all(again[(r["query"], r["positive"])] == r for r in rows)
    other = export(INSTANCES, tmp_path / "seed.jsonl", "st-ntuple", negatives=3, seed=8)
    assert other.rows == 3


def test_st_labeled_pair(tmp_path: Path) -> None:
    out = tmp_path / "pairs.parquet"
    export(INSTANCES, out, "st-labeled-pair")
    rows = read(out)
    assert len(rows) == sum(len(i.positives) + len(i.negatives) for i in INSTANCES)
    assert rows[0] == {"sentence1": "query a", "sentence2": "PT pos text 0", "label": 1}
    assert rows[2] == {"sentence1": "query a", "sentence2": "neg text 0", "label": 0}
    assert sum(r["label"] for r in rows) == 4


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".parquet", ".hf"])
def test_flag(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"flag{suffix}"
    export(INSTANCES, out, "flag")
    rows = read(out)
    assert rows[1] == {"query": "query b", "pos": ["PT pos text 0"], "neg": ["neg text 0", "neg text 1", "neg text 2"]}


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet"])
def test_tevatron_ids_and_corpus(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"ids{suffix}"
    result = export(INSTANCES, out, "tevatron-ids")
    rows = read(out)
    assert rows[0] == {
        "query_id": "a",
        "query": "query a",
        "positive_passages": [{"docid": "a-p0"}, {"docid": "a-p1"}],
        "negative_passages": [{"docid": f"shared-{i}" if i < 2 else f"a-n{i}"} for i in range(5)],
        "subset": "s",
    }
    assert (
        result.corpus_path
        == corpus_path_for(out)
        == tmp_path / ("ids.corpus.jsonl" + (".gz" if suffix.endswith(".gz") else ""))
    )
    corpus = [row for _n, row in iter_jsonl(result.corpus_path)]
    ids = [row["_id"] for row in corpus]
    assert (
        len(ids) == len(set(ids)) == result.corpus_docs == 7 + 2 + 1
    )  # a: 7 new, b: 2 new, c: 1 new (shared-0/1 once)
    assert {"_id": "a-p0", "title": "PT", "text": "pos text 0"} in corpus
    assert result.corpus_conflicts == []


def test_tevatron_ids_reports_conflicting_texts(tmp_path: Path) -> None:
    other = inst("z", 1, 1)
    other.negatives[0] = Passage("shared-0", "a different text")
    result = export([*INSTANCES, other], tmp_path / "ids.jsonl", "tevatron-ids")
    assert result.corpus_conflicts == ["shared-0"]


def test_tevatron_layout_keeps_extras(tmp_path: Path) -> None:
    export(INSTANCES, tmp_path / "t.parquet", "tevatron")
    assert list(read_instances(tmp_path / "t.parquet")) == INSTANCES


def test_bad_input_midway_writes_nothing(tmp_path: Path) -> None:
    def instances():
        yield INSTANCES[0]
        raise InputError("in.jsonl", 2, "query", "missing")

    for layout in EXPORT_LAYOUTS:
        with pytest.raises(InputError):
            export(instances(), tmp_path / "out.jsonl", layout)
    assert list(tmp_path.iterdir()) == []


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        export(INSTANCES, tmp_path / "x.jsonl", "csv")
    with pytest.raises(ConfigError):
        export(INSTANCES, tmp_path / "x.jsonl", "st-ntuple", negatives=0)
    with pytest.raises(ConfigError, match="unknown output format"):
        export(INSTANCES, tmp_path / "x.tsv", "flag")
    assert list(tmp_path.iterdir()) == []
