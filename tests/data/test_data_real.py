"""Integration on real files: the reference implementation's judged rows and SciFact (skipped when
../shared/data is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.beir import load_beir
from hardneg.data.io import iter_jsonl, iter_raw_rows, read_instances, write_instances, write_rows

pytestmark = [pytest.mark.shared]


def raw(path: Path) -> list[dict]:
    return [row for _n, row in iter_jsonl(path)]


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


def test_rlhn_both_files_in_one_parquet(rlhn_stage1: Path, rlhn_stage2: Path, tmp_path: Path) -> None:
    # finish_reason is a string in stage 1 and a list in stage 2: one file must hold both.
    stage2 = [dict(r, query_id=r["query_id"] + ":2") for r in raw(rlhn_stage2)]
    rows = raw(rlhn_stage1) + stage2
    assert {type(r["finish_reason"]) for r in rows} == {str, list}
    for order in (rows, rows[::-1]):
        write_rows(tmp_path / "both.parquet", order)
        assert [r for _n, r in iter_raw_rows(tmp_path / "both.parquet")] == order


def test_rlhn_cli_stats(rlhn_stage1: Path) -> None:
    result = CliRunner().invoke(app, ["--quiet", "stats", str(rlhn_stage1), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["instances"], data["problems"]) == (25, 0)
    assert data["subsets"]["fiqa"]["negatives_mean"] == 15.0


@pytest.mark.slow
def test_scifact(scifact_dir: Path) -> None:
    train = load_beir(scifact_dir, "train")
    test = load_beir(scifact_dir, "test")
    assert len(train.corpus) == 5183
    assert (len(train.queries), sum(len(q) for q in train.qrels.values())) == (809, 919)
    assert (len(test.queries), sum(len(q) for q in test.qrels.values())) == (300, 339)
    assert all(p.text for p in train.corpus.values())
