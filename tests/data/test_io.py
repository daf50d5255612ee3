"""Round trips of every reader/writer and the Parquet schema rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from hardneg.data.formats import output_kind
from hardneg.data.io import (
    detect_format,
    iter_jsonl,
    iter_raw_rows,
    open_writer,
    read_instances,
    write_instances,
    write_rows,
)
from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError, InputError


def make_rows(n: int = 5) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "query_id": f"q{i}",
                "query": f"question number {i}?",
                "positive_passages": [{"docid": f"p{i}", "title": "T", "text": f"answer {i}", "score": 0.5 + i}],
                "negative_passages": [
                    {"docid": f"n{i}-{j}", "title": "", "text": f"negative {i} {j}", "rank": j} for j in range(3)
                ],
                "subset": "a" if i % 2 else "b",
                # Extra fields whose type changes between rows, as in the reference implementation's files.
                "finish_reason": "stop" if i % 2 else ["stop"],
                "response": None if i == 0 else f"<verdict>{i}</verdict>",
            }
        )
    return rows


FORMATS = ["rows.jsonl", "rows.jsonl.gz", "rows.parquet", "rows.hf"]


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_rows(tmp_path: Path, name: str) -> None:
    rows = make_rows(7)
    rows[5]["only_late"] = {"nested": [1, 2]}  # a field first seen after the first row
    out = tmp_path / name
    assert write_rows(out, rows) == 7
    back = [row for _n, row in iter_raw_rows(out)]
    assert back == rows
    assert [n for n, _r in iter_raw_rows(out)] == list(range(1, 8))


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_instances(tmp_path: Path, name: str) -> None:
    instances = [Instance.from_row(r) for r in make_rows(4)]
    out = tmp_path / name
    write_instances(out, instances)
    back = list(read_instances(out))
    assert back == instances
    assert back[1].positives[0].extra == {"score": 1.5}
    assert back[2].extra == {"finish_reason": ["stop"], "response": "<verdict>2</verdict>"}


def test_parquet_late_fields_and_many_batches(tmp_path: Path) -> None:
    # More rows than one writer batch (1024 rows): the schema is fixed by the first batch, later rows must still fit.
    rows = make_rows(1200)
    rows[1100]["finish_reason"] = {"odd": True}
    rows[1150]["brand_new"] = 3
    out = tmp_path / "many.parquet"
    write_rows(out, rows)
    assert [r for _n, r in iter_raw_rows(out)] == rows
    table = pq.read_table(out)
    # Typed Tevatron columns stay typed for other tools; extras are JSON text.
    assert str(table.schema.field("query_id").type) == "string"
    assert table.schema.field("positive_passages").type.value_type.get_field_index("docid") == 0
    assert json.loads(table.column("finish_reason")[0].as_py()) == ["stop"]
    assert pq.ParquetFile(out).metadata.num_row_groups == 2


def test_foreign_parquet_reads_plain(tmp_path: Path) -> None:
    import pyarrow as pa

    rows = make_rows(3)
    for row in rows:
        row.pop("finish_reason")
        row.pop("response")
        for p in row["positive_passages"] + row["negative_passages"]:
            p.pop("score", None)
            p.pop("rank", None)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "foreign.parquet")
    assert [r for _n, r in iter_raw_rows(tmp_path / "foreign.parquet")] == rows


def test_empty_outputs(tmp_path: Path) -> None:
    for name in ["e.jsonl", "e.jsonl.gz", "e.parquet"]:
        assert write_rows(tmp_path / name, []) == 0
        assert list(iter_raw_rows(tmp_path / name)) == []


def test_jsonl_gz_is_deterministic(tmp_path: Path) -> None:
    write_rows(tmp_path / "a.jsonl.gz", make_rows(3))
    write_rows(tmp_path / "b.jsonl.gz", make_rows(3))
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    with gzip.open(tmp_path / "a.jsonl.gz", "rt", encoding="utf-8") as handle:
        assert json.loads(handle.readline())["query_id"] == "q0"


def test_hf_save_to_disk_folder_is_a_real_dataset(tmp_path: Path) -> None:
    import datasets

    write_rows(tmp_path / "ds.hf", make_rows(3))
    dataset = datasets.load_from_disk(str(tmp_path / "ds.hf"))
    assert dataset.num_rows == 3
    assert dataset[0]["query_id"] == "q0"
    assert dataset[0]["positive_passages"][0]["docid"] == "p0"


def test_hf_folder_from_datasets_and_dataset_dict(tmp_path: Path) -> None:
    import datasets

    rows = make_rows(4)
    for row in rows:
        row["finish_reason"] = "stop"  # datasets itself needs one type per column
    dataset = datasets.Dataset.from_list(rows)
    dataset.save_to_disk(str(tmp_path / "plain"))
    assert [r for _n, r in iter_raw_rows(tmp_path / "plain")] == rows
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(tmp_path / "dd"))
    assert [r["query_id"] for _n, r in iter_raw_rows(tmp_path / "dd")] == ["q0", "q1", "q2", "q3"]
    datasets.DatasetDict({"dev": dataset, "test": dataset}).save_to_disk(str(tmp_path / "dd2"))
    with pytest.raises(InputError, match="none is 'train'"):
        list(iter_raw_rows(tmp_path / "dd2"))


def test_hf_folder_of_local_data_files(tmp_path: Path) -> None:
    rows = make_rows(3)
    for row in rows:
        row["finish_reason"] = "stop"
        row["response"] = "r"
    folder = tmp_path / "files"
    folder.mkdir()
    write_rows(folder / "train.jsonl", rows)
    assert detect_format(folder) == "hf"
    assert [inst.query_id for inst in read_instances(folder)] == ["q0", "q1", "q2"]
    back = [r for _n, r in iter_raw_rows(folder)]
    assert [r["query_id"] for r in back] == ["q0", "q1", "q2"]
    assert back[1]["negative_passages"][2]["text"] == "negative 1 2"


def test_output_format_rules(tmp_path: Path) -> None:
    assert output_kind(tmp_path / "x.jsonl") == "jsonl"
    assert output_kind(tmp_path / "x.JSONL.GZ") == "jsonl.gz"
    assert output_kind(tmp_path / "x.parquet") == "parquet"
    assert output_kind(tmp_path / "x.hf") == "hf"
    assert output_kind(f"{tmp_path}/folder/") == "hf"
    with pytest.raises(ConfigError, match="unknown output format"):
        output_kind(tmp_path / "x.csv")
    (tmp_path / "stuff.hf").mkdir()
    (tmp_path / "stuff.hf" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="hardneg did not write"):
        write_rows(tmp_path / "stuff.hf", make_rows(1), overwrite=True)
    assert (tmp_path / "stuff.hf" / "keep.txt").read_text() == "mine"


def test_hf_output_replaces_existing_dataset_folder_only_with_overwrite(tmp_path: Path) -> None:
    write_rows(f"{tmp_path}/ds/", make_rows(3))
    with pytest.raises(ConfigError, match="already exists"):
        write_rows(f"{tmp_path}/ds/", make_rows(2))
    write_rows(f"{tmp_path}/ds/", make_rows(2), overwrite=True)
    assert [r["query_id"] for _n, r in iter_raw_rows(tmp_path / "ds")] == ["q0", "q1"]


def test_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    def rows() -> Any:
        yield from make_rows(3)
        raise RuntimeError("upstream failed")

    for name in FORMATS:
        with pytest.raises(RuntimeError):
            write_rows(tmp_path / name, rows())
    assert list(tmp_path.iterdir()) == []


def test_open_writer_streams(tmp_path: Path) -> None:
    with open_writer(tmp_path / "w.parquet") as sink:
        for row in make_rows(3):
            sink.write(row)
        assert not (tmp_path / "w.parquet").exists()  # renamed into place only at the end
    assert sink.count == 3
    assert len(list(iter_raw_rows(tmp_path / "w.parquet"))) == 3


def test_passage_title_none_becomes_empty() -> None:
    p = Passage.from_dict({"docid": 7, "text": "x", "title": None, "score": 1})
    assert (p.docid, p.title, p.extra) == ("7", "", {"score": 1})
    assert p.to_dict() == {"docid": "7", "title": "", "text": "x", "score": 1}


def raw(path: Path) -> list[dict]:
    return [row for _n, row in iter_jsonl(path)]


@pytest.mark.shared
@pytest.mark.parametrize(("fixture", "count"), [("rlhn_stage1", 25), ("rlhn_stage2", 17)])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".hf"])
def test_rlhn_rows_round_trip_unchanged(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, count: int, suffix: str
) -> None:
    path = request.getfixturevalue(fixture)
    rows = raw(path)
    instances = list(read_instances(path))
    assert len(instances) == count
    assert all(len(i.negatives) == 15 for i in instances)
    assert set(instances[0].extra) == {"positive_passage_ids", "negative_passage_ids", "response", "finish_reason"}
    out = tmp_path / f"out{suffix}"
    write_instances(out, instances)
    assert [r for _n, r in iter_raw_rows(out)] == rows


@pytest.mark.shared
def test_rlhn_both_files_in_one_parquet(rlhn_stage1: Path, rlhn_stage2: Path, tmp_path: Path) -> None:
    # finish_reason is a string in stage 1 and a list in stage 2: one file must hold both.
    stage2 = [dict(r, query_id=r["query_id"] + ":2") for r in raw(rlhn_stage2)]
    rows = raw(rlhn_stage1) + stage2
    assert {type(r["finish_reason"]) for r in rows} == {str, list}
    for order in (rows, rows[::-1]):
        write_rows(tmp_path / "both.parquet", order)
        assert [r for _n, r in iter_raw_rows(tmp_path / "both.parquet")] == order


# the same round trips on the shipped sample judged in the reference layout (no ../shared needed)
@pytest.mark.parametrize(("fixture", "count"), [("sample_stage1", 24), ("sample_stage2", 9)])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".hf"])
def test_judged_sample_rows_round_trip_unchanged(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, count: int, suffix: str
) -> None:
    path = request.getfixturevalue(fixture)
    rows = raw(path)
    instances = list(read_instances(path))
    assert len(instances) == count
    assert all(len(i.negatives) == len(r["negative_passage_ids"]) for i, r in zip(instances, rows, strict=True))
    assert set(instances[0].extra) == {"positive_passage_ids", "negative_passage_ids", "response", "finish_reason"}
    out = tmp_path / f"out{suffix}"
    write_instances(out, instances)
    assert [r for _n, r in iter_raw_rows(out)] == rows


def test_judged_sample_both_stages_in_one_parquet(sample_stage1: Path, sample_stage2: Path, tmp_path: Path) -> None:
    # finish_reason is a string in stage 1 and a list in stage 2: one file must hold both.
    stage2 = [dict(r, query_id=r["query_id"] + ":2") for r in raw(sample_stage2)]
    rows = raw(sample_stage1) + stage2
    assert {type(r["finish_reason"]) for r in rows} == {str, list}
    for order in (rows, rows[::-1]):
        write_rows(tmp_path / "both.parquet", order)
        assert [r for _n, r in iter_raw_rows(tmp_path / "both.parquet")] == order
