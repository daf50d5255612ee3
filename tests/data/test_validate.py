"""Every validation problem, with its exact FILE:LINE: field location (JSONL line or Parquet row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hardneg.data.io import read_instances, validate_file, write_rows
from hardneg.errors import InputError


def good(qid: str = "q1") -> dict[str, Any]:
    return {
        "query_id": qid,
        "query": "what is a bond coupon?",
        "positive_passages": [{"docid": "d1", "title": "", "text": "The coupon is the yearly interest."}],
        "negative_passages": [
            {"docid": "d2", "title": "", "text": "Stocks are shares."},
            {"docid": "d3", "title": "", "text": "Rates rise."},
        ],
        "subset": "finance",
    }


def with_change(change: Any) -> dict[str, Any]:
    row = good("bad")
    change(row)
    return row


# (name, how to break the row, expected "field: message" of the single problem)
CASES = [
    ("missing query", lambda r: r.pop("query"), "query: missing"),
    ("query not a string", lambda r: r.update(query=3), "query: expected a string, got int"),
    ("empty query", lambda r: r.update(query="  "), "query: empty text"),
    ("missing query_id", lambda r: r.pop("query_id"), "query_id: missing or empty"),
    ("query_id a list", lambda r: r.update(query_id=[1]), "query_id: expected a string, got list"),
    ("subset not a string", lambda r: r.update(subset=1), "subset: expected a string, got int"),
    ("missing positives", lambda r: r.pop("positive_passages"), "positive_passages: missing"),
    ("positives not a list", lambda r: r.update(positive_passages="d1"), "positive_passages: expected a list, got str"),
    ("no positives", lambda r: r.update(positive_passages=[]), "positive_passages: instance has no positives"),
    (
        "passage not an object",
        lambda r: r["negative_passages"].append("d9"),
        "negative_passages[2]: expected an object, got str",
    ),
    ("empty text", lambda r: r["negative_passages"][1].update(text=""), "negative_passages[1].text: empty text"),
    ("missing text", lambda r: r["positive_passages"][0].pop("text"), "positive_passages[0].text: missing"),
    (
        "text not a string",
        lambda r: r["positive_passages"][0].update(text=5),
        "positive_passages[0].text: expected a string, got int",
    ),
    ("missing docid", lambda r: r["negative_passages"][0].pop("docid"), "negative_passages[0].docid: missing or empty"),
    (
        "title not a string",
        lambda r: r["negative_passages"][0].update(title=["x"]),
        "negative_passages[0].title: expected a string, got list",
    ),
    (
        "duplicate docid in negatives",
        lambda r: r["negative_passages"][1].update(docid="d2"),
        "negative_passages[1].docid: duplicate docid 'd2' (also negative_passages[0])",
    ),
    (
        "positive and negative",
        lambda r: r["negative_passages"][1].update(docid="d1"),
        "negative_passages[1].docid: docid 'd1' is also a positive (positive_passages[0])",
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_each_problem_has_its_location(tmp_path: Path, name: str, change: Any, expected: str, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    write_rows(path, [good("q1"), good("q2"), with_change(change), good("q4")])
    problems = validate_file(path)
    assert [str(p) for p in problems] == [f"{path}:3: {expected}"]
    with pytest.raises(InputError) as info:
        list(read_instances(path))
    assert str(info.value) == f"{path}:3: {expected}"


def test_broken_json_and_not_an_object_keep_scanning(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    lines = [json.dumps(good("q1")), "{broken", "", json.dumps([1, 2]), json.dumps(good("q1"))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = [str(p) for p in validate_file(path)]
    assert found == [
        f"{path}:2: -: broken JSON: Expecting property name enclosed in double quotes at column 2",
        f"{path}:4: -: expected a JSON object, got list",
        f"{path}:5: query_id: duplicate query_id 'q1' (first at line 1)",
    ]
    assert [str(p) for p in validate_file(path, max_errors=2)] == found[:2]


def test_duplicate_query_ids_counted_by_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    write_rows(path, [good("a"), good("b"), good("a"), good("a")])
    assert [str(p) for p in validate_file(path)] == [
        f"{path}:3: query_id: duplicate query_id 'a' (first at line 1)",
        f"{path}:4: query_id: duplicate query_id 'a' (first at line 1)",
    ]


def test_parquet_problems_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    bad = good("q3")
    bad["negative_passages"][0]["text"] = " "
    write_rows(path, [good("q1"), good("q2"), bad, good("q1")])
    assert [str(p) for p in validate_file(path)] == [
        f"{path}:3: negative_passages[0].text: empty text",
        f"{path}:4: query_id: duplicate query_id 'q1' (first at line 1)",
    ]


def test_damaged_gzip_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl.gz"
    write_rows(path, [good(f"q{i}") for i in range(50)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problems = validate_file(path)
    assert len(problems) == 1
    assert "unreadable file" in problems[0].message
    assert problems[0].path == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        validate_file(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="unknown format"):
        validate_file(tmp_path / "nope.csv")


def test_valid_file_has_no_problems(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    write_rows(path, [good("q1"), good("q2")])
    assert validate_file(path) == []
    assert [i.query_id for i in read_instances(path)] == ["q1", "q2"]
