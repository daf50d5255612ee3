"""Data sources: instances, Datasets, paths and load_dataset specs in; the same kind out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance, Passage
from hardneg.data.sample import sample_train_path
from hardneg.data.source import (
    as_source,
    chosen_positions,
    filter_source,
    from_dataset,
    select_items,
    select_source,
    to_dataset,
)
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


# ------------------------------------------------------------------------------------- limit / sample


def test_limit_takes_the_first_n_and_sample_a_seeded_n_in_input_order() -> None:
    assert chosen_positions(10, limit=3) == [0, 1, 2]
    assert chosen_positions(2, limit=5) == [0, 1]  # more than there are: all of them
    drawn = chosen_positions(24, sample=5, seed=1)
    assert len(drawn) == 5 and drawn == sorted(drawn) and drawn == chosen_positions(24, sample=5, seed=1)
    assert drawn != chosen_positions(24, sample=5, seed=2)
    items, selection = select_items(list("abcdef"), sample=3, seed=0)
    assert len(items) == 3 and sorted(items) == items
    assert selection is not None
    assert selection.to_dict() == {"limit": None, "sample": 3, "seed": 0, "used": 3, "total": 6}
    assert select_items(list("abc")) == (["a", "b", "c"], None)
    assert "the first 2 of 3 queries" in select_items(list("abc"), limit=2)[1].describe()  # type: ignore[union-attr]


@pytest.mark.parametrize(("limit", "sample", "param"), [(0, None, "limit"), (None, -1, "sample"), (2, 2, "sample")])
def test_bad_selections_name_the_parameter(limit: int | None, sample: int | None, param: str) -> None:
    with pytest.raises(ConfigError) as raised:
        select_source(_instances(), limit=limit, sample=sample)
    assert raised.value.param == param


def test_select_source_on_each_kind(tmp_path: Path) -> None:
    instances = _instances()
    ids = [i.query_id for i in instances]
    from_file, selection = select_source(sample_train_path(), limit=5)
    assert [i.query_id for i in from_file] == ids[:5] == [i.query_id for i in from_file]  # re-iterable
    assert from_file.validate() == len(from_file) == 5
    assert selection is not None and (selection.used, selection.total) == (5, 24)
    drawn, selection = select_source(str(sample_train_path()), sample=4, seed=3)
    picked = [i.query_id for i in drawn]
    assert len(picked) == 4 and picked == [q for q in ids if q in picked]  # input order kept
    assert picked == [i.query_id for i in select_source(instances, sample=4, seed=3)[0]]  # same seed, same ones
    whole, none = select_source(instances)
    assert none is None and len(whole) == 24
    kept = filter_source(as_source(instances), lambda i: i.query_id in picked)
    assert [i.query_id for i in kept] == picked and kept.validate() == 4
    out = tmp_path / "few.jsonl"
    from_file.emit(from_file, output=out)
    assert [i.query_id for i in read_instances(out)] == ids[:5]


def test_select_source_keeps_a_dataset_a_dataset() -> None:
    pytest.importorskip("datasets")
    dataset = to_dataset(_instances())
    chosen, selection = select_source(dataset, limit=3)
    assert chosen.kind == "dataset" and len(chosen.data) == 3 and selection is not None
    assert type(chosen.emit(chosen)).__name__ == "Dataset"
