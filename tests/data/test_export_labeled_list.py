"""`st-labeled-list` (sentence-transformers' labeled-list layout): written in every format, read back, round-tripped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.export import EXPORT_LAYOUTS, export, labeled_list_instance, read_labeled_list
from hardneg.data.io import iter_raw_rows, read_instances
from hardneg.data.records import Instance, Passage
from hardneg.data.sample import sample_train_path
from hardneg.errors import InputError

INSTANCES = [
    Instance(
        "a", "query a",
        [Passage("a-p0", "pos text 0", title="PT"), Passage("a-p1", "pos text 1")],
        [Passage("shared-0", "neg text 0"), Passage("a-n1", "neg text 1"), Passage("a-n2", "neg text 2")],
        "s",
    ),
    Instance("b", "query b", [Passage("b-p0", "pos b")], [Passage("shared-0", "neg text 0")], "s"),
    Instance("c", "query c", [Passage("c-p0", "pos c")], [], "s"),  # no negatives: one row, all labels 1
]  # fmt: skip


def rows_of(path: Path) -> list[dict]:
    return [row for _n, row in iter_raw_rows(path)]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".hf"])
def test_one_row_per_instance_positives_first(tmp_path: Path, suffix: str) -> None:
    assert "st-labeled-list" in EXPORT_LAYOUTS
    out = tmp_path / f"list{suffix}"
    result = export(INSTANCES, out, "st-labeled-list")
    rows = rows_of(out)
    assert result.rows == result.instances == len(rows) == 3
    assert list(rows[0]) == ["query", "docs", "labels"]
    assert rows[0] == {
        "query": "query a",
        "docs": ["PT pos text 0", "pos text 1", "neg text 0", "neg text 1", "neg text 2"],
        "labels": [1, 1, 0, 0, 0],
    }
    assert rows[2] == {"query": "query c", "docs": ["pos c"], "labels": [1]}


def test_round_trip(tmp_path: Path) -> None:
    first = tmp_path / "first.parquet"
    export(read_instances(sample_train_path()), first, "st-labeled-list")
    back = list(read_labeled_list(first, subset="sample"))
    original = list(read_instances(sample_train_path()))
    assert len(back) == len(original) == 24
    for got, want in zip(back, original, strict=True):
        assert got.query == want.query and got.subset == "sample"
        assert [p.text for p in got.positives] == [f"{p.title} {p.text}".strip() for p in want.positives]
        assert [p.text for p in got.negatives] == [f"{p.title} {p.text}".strip() for p in want.negatives]
    # The same text gets the same docid wherever it appears, and a second export writes the same rows.
    again = tmp_path / "again.jsonl"
    export(back, again, "st-labeled-list")
    assert rows_of(again) == rows_of(first)
    # Ids derive from the texts, so reading twice gives equal instances.
    assert list(read_labeled_list(again, subset="sample")) == back


def test_layout_is_what_sentence_transformers_reads(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "list.jsonl"
    export(INSTANCES, out, "st-labeled-list")
    data = datasets.load_dataset("json", data_files=str(out), split="train")
    assert data.column_names == ["query", "docs", "labels"]
    assert data.features["docs"].feature.dtype == "string" and data.features["labels"].feature.dtype == "int64"


def test_bad_rows_name_the_field() -> None:
    good = {"query": "q", "docs": ["x", "y"], "labels": [1, 0]}
    assert labeled_list_instance(good).positive_ids == labeled_list_instance(good).positive_ids
    cases = [
        ({**good, "query": 3}, "query"),
        ({**good, "docs": "x"}, "docs"),
        ({**good, "labels": [1]}, "labels"),
        ({**good, "labels": [1, 2]}, "labels"),
        ({**good, "labels": [0, 0]}, "labels"),
        ({**good, "labels": [True, False]}, "labels"),
    ]
    for row, field in cases:
        with pytest.raises(InputError) as info:
            labeled_list_instance(row, source="in.jsonl", line=7)
        assert (info.value.problem.field, info.value.problem.line) == (field, 7), row


def test_cli_convert(tmp_path: Path) -> None:
    out = tmp_path / "list.jsonl"
    result = CliRunner().invoke(
        app, ["--quiet", "convert", str(sample_train_path()), str(out), "--to", "st-labeled-list", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["layout"] == "st-labeled-list" and report["rows"] == report["instances"] == 24
    rows = rows_of(out)
    assert all(len(r["docs"]) == len(r["labels"]) and r["labels"][0] == 1 for r in rows)
