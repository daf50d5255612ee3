"""The one output rule (`output_kind` / `check_output`), and the Python functions that write instances following it."""

from __future__ import annotations

from pathlib import Path

import pytest

import hardneg
import support.lexical_judges  # noqa: F401 (registers the lexical backend the configs name)
from hardneg.data.formats import check_output, output_kind
from hardneg.data.io import read_instances
from hardneg.data.sample import sample_beir_dir, sample_train_path
from hardneg.data.stats import file_stats
from hardneg.errors import ConfigError

# A lexical judge: no model, well under a second on the sample.
LEXICAL = {"name": "lex", "stages": [{"name": "lex", "backend": "lexical", "t_better": 0.3, "t_worse": 0.2}]}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.jsonl", "jsonl"),
        ("a.json", "jsonl"),
        ("a.jsonl.gz", "jsonl.gz"),
        ("A.PARQUET", "parquet"),
        ("a.hf", "hf"),
        ("folder/", "hf"),
        ("a.jsonl/", "hf"),
    ],
)
def test_output_kind_is_the_name_alone(tmp_path: Path, name: str, kind: str) -> None:
    assert output_kind(f"{tmp_path}/{name}") == kind


@pytest.mark.parametrize("name", ["out.txt", "outhf", "out.csv", "out.gz"])
def test_unknown_names_are_refused_naming_the_parameter(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="unknown output format") as raised:
        check_output(tmp_path / name, param="to_path")
    assert raised.value.param == "to_path" and ".hf or /" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_check_output_existing_targets(tmp_path: Path) -> None:
    (tmp_path / "old.jsonl").write_text("{}\n")
    assert check_output(tmp_path / "old.jsonl") == "jsonl"  # files are replaced, as always
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        check_output(tmp_path / "dir.jsonl")
    (tmp_path / "user.hf").mkdir()
    (tmp_path / "user.hf" / "x").write_text("x")
    with pytest.raises(ConfigError, match="hardneg did not write"):
        check_output(tmp_path / "user.hf", overwrite=True)


def test_python_functions_write_what_the_name_says(tmp_path: Path) -> None:
    store = tmp_path / "j.sqlite"
    mined = hardneg.mine(sample_beir_dir(), split="train", negatives=5, output=tmp_path / "mined.hf")
    assert mined == tmp_path / "mined.hf" and (mined / "state.json").is_file()
    cleaned = hardneg.clean(mined, store=store, config=LEXICAL, output=f"{tmp_path}/cleaned/")
    assert (tmp_path / "cleaned" / "state.json").is_file()
    assert file_stats(cleaned).total.instances == 24
    relabelled = hardneg.relabel(mined, store, output=tmp_path / "relabelled.parquet", allow_partial=True)
    assert [i.query_id for i in read_instances(relabelled)] == [i.query_id for i in read_instances(cleaned)]


def test_python_output_errors_name_the_real_parameters(tmp_path: Path) -> None:
    mined = hardneg.mine(sample_beir_dir(), split="train", negatives=5, output=tmp_path / "mined.hf")
    store = tmp_path / "j.sqlite"
    with pytest.raises(ConfigError) as raised:
        hardneg.clean(mined, store=store, config=LEXICAL, output=tmp_path / "x.txt")
    assert raised.value.param == "output" and "`to`" not in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        hardneg.clean(mined, store=store, config=LEXICAL)
    assert raised.value.param == "output" and "is a file" not in str(raised.value)
    assert not store.exists()  # refused before any judging
    with pytest.raises(ConfigError, match="already exists") as raised:
        hardneg.mine(sample_beir_dir(), split="train", negatives=5, output=mined)
    assert raised.value.param == "output"
    with pytest.raises(ConfigError, match="already exists") as raised:
        hardneg.relabel(sample_train_path(), {}, output=mined)
    assert raised.value.param == "output"
    again = hardneg.mine(sample_beir_dir(), split="train", negatives=3, output=mined, overwrite=True)
    assert max(len(i.negatives) for i in read_instances(again)) == 3
