"""A tiny real experiment on the shipped sample: BM25 mining, the embedding judge, two variants, MiniLM training
(a few steps), evaluation; then resume after one variant's model is deleted, and the leave-one-out study."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hardneg.cli.experiment_cmds  # noqa: F401 (registers the verbs)
from hardneg.cli import app
from hardneg.data.sample import sample_beir_dir, sample_train_path
from hardneg.experiment import load_config, run_experiment, run_prune
from hardneg.experiment.steps import STEP_LOG

pytestmark = pytest.mark.slow

TRAINING = "training: {epochs: 1, batch_size: 4, max_length: 64, negatives: 2, max_steps: 2}"


def tiny_config(tmp_path: Path) -> Path:
    beir = sample_beir_dir()
    text = f"""\
name: tiny
output: exp
train:
  - name: sample
    beir: {beir}
    split: train
mine: {{method: bm25, negatives: 4, range: 0-20}}
judge:
  stages:
    - {{name: emb, backend: embedding, t_better: 0.55}}
variants: [default, rlhn]
verdicts: [cascade]
{TRAINING}
evaluate:
  - name: sample
    beir: {beir}
    split: test
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def read_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_experiment_end_to_end_and_resume(tmp_path: Path) -> None:
    cfg = load_config(tiny_config(tmp_path))
    first = run_experiment(cfg)
    assert {r.status for r in first.records} == {"ran"}
    results = first.results
    assert results is not None
    names = [v["name"] for v in results["variants"]]
    assert names == ["default", "rlhn-cascade"]
    for variant in results["variants"]:
        score = variant["scores"]["sample"]["mean"]
        assert 0.0 <= score <= 1.0
        assert variant["train"]["instances"] == 24
    rlhn = results["variants"][1]
    assert rlhn["delta"]["sample"] == pytest.approx(
        rlhn["scores"]["sample"]["mean"] - results["variants"][0]["scores"]["sample"]["mean"]
    )
    assert rlhn["significance"]["sample"]["n_queries"] == 8
    assert results["judge"]["flagged_cascade"] > 0

    # The judge's flags really changed the rlhn data: flagged negatives became positives, keyed by docid.
    folders = {r.id: r.folder for r in first.records}
    default_rows = {r["query_id"]: r for r in read_rows(folders["variant/default"] / "train.jsonl.gz")}
    rlhn_rows = {r["query_id"]: r for r in read_rows(folders["variant/rlhn-cascade"] / "train.jsonl.gz")}
    moved = 0
    for qid, row in rlhn_rows.items():
        before = {p["docid"] for p in default_rows[qid]["positive_passages"]}
        after = {p["docid"] for p in row["positive_passages"]}
        assert before <= after
        gained = after - before
        assert gained <= {n["docid"] for n in default_rows[qid]["negative_passages"]}
        assert not gained & {n["docid"] for n in row["negative_passages"]}
        moved += len(gained)
    assert moved > 0
    # ... and the results say how much: the count of negatives that became positives, none removed.
    assert rlhn["train"]["negatives_moved"] == moved
    assert rlhn["train"]["negatives_removed"] == 0
    assert results["variants"][0]["train"]["negatives_moved"] == 0

    out = cfg.output
    for name in ("results.json", "results.md", "results.csv", "plots/scores.png", "plots/delta.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "results.json").read_text())["schema"] == "hardneg-experiment/1"

    # Delete one variant's model: the dry run says only that training (and what follows) would run...
    shutil.rmtree(folders["train/rlhn-cascade/seed0"] / "model")
    plan = CliRunner().invoke(app, ["experiment", str(cfg.path), "--dry-run", "--json"])
    assert plan.exit_code == 0, plan.output
    steps = {s["step"]: s["status"] for s in json.loads(plan.stdout)["steps"]}
    would_run = {k for k, v in steps.items() if v == "would run"}
    assert would_run == {"train/rlhn-cascade/seed0", "evaluate/rlhn-cascade/seed0/sample"}
    assert steps["train/default/seed0"] == "cached"

    # ... and the re-run does exactly that: nothing of the default variant, mining or judging runs again.
    log_before = len((out / STEP_LOG).read_text().splitlines())
    second = run_experiment(load_config(cfg.path))
    ran = set(second.ran)
    assert "train/rlhn-cascade/seed0" in ran
    assert ran <= {"train/rlhn-cascade/seed0", "evaluate/rlhn-cascade/seed0/sample"}
    new_log = [json.loads(x) for x in (out / STEP_LOG).read_text().splitlines()[log_before:]]
    assert {e["step"] for e in new_log if e["status"] == "ran"} == ran
    assert second.results is not None and [v["name"] for v in second.results["variants"]] == names

    # A third run is fully cached, and --json prints only the results object on stdout.
    result = CliRunner().invoke(app, ["experiment", str(cfg.path), "--json", "--no-plots"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert all(s["status"] == "cached" for s in payload["steps"])


def test_prune_leave_one_out(tmp_path: Path) -> None:
    beir = sample_beir_dir()
    text = f"""\
name: prune-tiny
output: exp
train:
  - name: mined
    beir: {beir}
    split: train
  - name: given
    file: {sample_train_path()}
mine: {{method: bm25, negatives: 4}}
{TRAINING}
evaluate:
  - name: sample
    beir: {beir}
    split: test
prune: {{threshold: 0.01}}
"""
    path = tmp_path / "prune.yaml"
    path.write_text(text)
    result = run_prune(load_config(path, require_judge=False))
    table = result.table
    assert table is not None
    assert [row["left_out"] for row in table["rows"]] == ["mined", "given"]
    # Both sources hold the same 24 query ids: combining them prefixes the ids, so nothing collides.
    assert table["all"]["train_instances"] == 48
    assert [row["train_instances"] for row in table["rows"]] == [24, 24]
    assert sorted(table["suggested_keep"] + table["suggested_drop"]) == ["given", "mined"]
    for row in table["rows"]:
        assert row["suggestion"] == ("drop" if row["delta_average"] > 0.01 and row["improved"] else "keep")
    assert (tmp_path / "exp" / "prune.md").read_text().startswith("# prune-tiny: leave-one-subset-out")
