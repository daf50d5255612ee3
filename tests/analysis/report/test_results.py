"""`read_results`: every numeric leaf of an experiment's results.json becomes a column; bad files name the problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hardneg.analysis.report.results import read_results
from hardneg.errors import InputError


def test_numeric_leaves_become_columns(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    data = {
        "results": {
            "default": {"scifact": {"ndcg@10": 0.6, "recall@100": 1}, "ok": True, "note": "text"},
            "rlhn": {"fiqa": 0.3},
            "empty": {"note": "nothing numeric"},
        }
    }
    path.write_text(json.dumps(data))
    runs = read_results(tmp_path)  # the folder holding results.json
    assert runs == {"default": {"scifact/ndcg@10": 0.6, "scifact/recall@100": 1.0}, "rlhn": {"fiqa": 0.3}}
    assert isinstance(runs["default"]["scifact/recall@100"], float)
    path.write_text(json.dumps({"run": 2}))  # no `results` key; a run that is one number
    assert read_results(path) == {"run": {"": 2.0}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": ', "broken JSON"),
        ("[1, 2]", "expected an object {run: {metric: value}}"),
        ('{"a": {"b": "c"}, "d": true}', "no numeric results found"),
    ],
)
def test_bad_files_say_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)) as raised:
        read_results(path)
    assert raised.value.problem.path == str(path)


def test_a_folder_without_results(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape("expected an experiment folder with results.json")):
        read_results(tmp_path)
