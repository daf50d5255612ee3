"""Data sources: instances, Datasets, paths and load_dataset specs in; the same kind out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance, Passage
from hardneg.data.sample import sample_train_path
from hardneg.data.source import as_source, from_dataset, to_dataset
from hardneg.errors import ConfigError, InputError


def _instances() -> list[Instance]:
    return list(read_instances(sample_train_path()))


def test_each_kind_is_recognised_and_re_iterable(tmp_path: Path) -> None:
    instances = _instances()
    assert as_source(instances).kind == "instances"
    assert as_source(sample_train_path()).kind == "path"
    assert as_source(str(sample_train_path())).kind == "path"
    source = as_source(iter(instances))  # a generator is read once, then kept
    assert [i.query_id for i in source] == [i.query_id for i in source] == [i.query_id for i in instances]
    assert source.validate() == len(source) == 24


def test_a_missing_file_name_is_never_sent_to_the_hub(tmp_path: Path) -> None:
    source = as_source(str(tmp_path / "trian.jsonl"))
    assert source.kind == "path"
    with pytest.raises(InputError, match="no such file"):
        source.validate()


def test_bad_inputs_name_the_parameter() -> None:
    with pytest.raises(ConfigError) as raised:
        as_source(42)
    assert raised.value.param == "data"
    with pytest.raises(ConfigError, match="Instance items"):
        as_source([{"query_id": "q"}])
    with pytest.raises(ConfigError, match="one Instance"):
        as_source(_instances()[0])


def test_instances_are_validated_like_file_rows() -> None:
    good = _instances()[:2]
    twin = Instance(good[0].query_id, "again", [Passage("p", "text")], [])
    with pytest.raises(InputError, match="duplicate query_id") as raised:
        as_source([*good, twin]).validate()
    assert raised.value.problem.line == 3 and raised.value.problem.field == "query_id"
    empty = Instance("q9", "query", [], [Passage("n", "text")])
    with pytest.raises(InputError, match="no positives"):
        as_source([empty]).validate()


def test_emit_gives_back_the_kind_given(tmp_path: Path) -> None:
    instances = _instances()
    assert as_source(instances).emit(iter(instances[:3])) == instances[:3]
    with pytest.raises(ConfigError) as raised:
        as_source(sample_train_path()).emit(iter(instances))
    assert raised.value.param == "output"
    out = tmp_path / "out.jsonl"
    assert as_source(sample_train_path()).emit(iter(instances), output=out) == out
    assert [i.query_id for i in read_instances(out)] == [i.query_id for i in instances]


def test_datasets_round_trip_and_bad_rows_name_row_and_field(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    instances = _instances()
    dataset = to_dataset(instances)
    assert isinstance(dataset, datasets.Dataset) and dataset.num_rows == 24
    assert [i.to_row() for i in from_dataset(dataset)] == [i.to_row() for i in instances]
    source = as_source(dataset)
    assert source.kind == "dataset"
    back = source.emit(iter(instances))
    assert back.features == dataset.features and back.to_list() == dataset.to_list()
    rows = [i.to_row() for i in instances]
    rows[4]["query"] = ""
    with pytest.raises(InputError) as raised:
        as_source(datasets.Dataset.from_list(rows)).validate()
    assert raised.value.problem.line == 5 and raised.value.problem.field == "query"


def test_a_load_dataset_spec_is_loaded(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    data = tmp_path / "rows.jsonl"
    write_instances(data, _instances()[:5])
    source = as_source(f"json:{data}")  # `json:FILES` is load_dataset("json", data_files=FILES)
    assert source.kind == "dataset"
    assert [i.query_id for i in source] == [json.loads(line)["query_id"] for line in data.read_text().splitlines()]
