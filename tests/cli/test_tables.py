"""Every verb that prints a table prints every cell whole: at 80 columns, through a pipe, into a file.

Each verb runs as a real process (`hardneg ...` with stdout a pipe and COLUMNS=80) on the shipped sample, with the
fast lexical judges of tests/support (named by their module path, so no registration is needed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hardneg.data.sample import sample_beir_dir, sample_train_path
from support.experiment_yaml import sample_experiment

TESTS = Path(__file__).resolve().parents[1]
ELLIPSIS = "\u2026"

LISTWISE = "'support.lexical_judges:LexicalListwiseJudge'"
CASCADE = (
    "name: lexical-two-stage\n"
    "stages:\n"
    f"  - {{name: cheap, backend: {LISTWISE}, mode: verdict, params: {{threshold: 0.2}}}}\n"
    f"  - {{name: strong, backend: {LISTWISE}, mode: verdict, params: {{threshold: 0.25, template: stage2}}}}\n"
)
SCORE_CASCADE = (
    "name: lexical-score-with-a-long-name-for-a-narrow-table\n"
    "stages:\n"
    "  - {name: overlap, backend: 'support.lexical_judges:LexicalJudge', t_better: 0.3, t_worse: 0.3}\n"
)


def hardneg(*args: str, cwd: Path, columns: str | None = "80") -> subprocess.CompletedProcess[str]:
    """One `hardneg` process; stdout and stderr are pipes (not a terminal)."""
    exe = shutil.which("hardneg", path=os.path.dirname(sys.executable)) or shutil.which("hardneg")
    assert exe, "the hardneg console script is not installed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(TESTS)}
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    done = subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"hardneg {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
    return done


def whole(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The table's text: no cell cut, the given texts present (as printed: one cell each)."""
    assert ELLIPSIS not in done.stdout, done.stdout
    for text in expected:
        assert text in done.stdout, (text, done.stdout)
    return done.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    (folder / "cascade.yaml").write_text(CASCADE, encoding="utf-8")
    (folder / "score.yaml").write_text(SCORE_CASCADE, encoding="utf-8")
    return folder


def test_stats_table_through_a_pipe(work: Path) -> None:
    for columns in ("80", None):  # COLUMNS=80, and a pipe's default width
        whole(hardneg("stats", str(sample_train_path()), cwd=work, columns=columns), "(all)", "instances")


def test_judge_relabel_clean_and_agreement_tables(work: Path) -> None:
    train = str(sample_train_path())
    judged = whole(hardneg("judge", train, "--config", "cascade.yaml", "--store", "j.db", cwd=work), "routed on")
    assert "1: cheap" in judged and "2: strong" in judged
    whole(hardneg("relabel", train, "--store", "j.db", "-o", "relabelled.jsonl", cwd=work), "negatives moved")
    cleaned = hardneg("clean", train, "--config", "cascade.yaml", "--store", "j.db", "-o", "clean.jsonl", cwd=work)
    whole(cleaned, "routed on", "clean.jsonl")
    agreement = hardneg("agreement", "--store", "j.db", "--a", "stage:2", "--b", "stage:1", cwd=work)
    whole(agreement, "relevant / not relevant")
    estimate = hardneg("estimate", train, "--config", "cascade.yaml", cwd=work)
    whole(estimate, "total", "prompt tok")
    whole(hardneg("batch", "status", "--store", "j.db", cwd=work), "collected")


def test_evaluate_and_compare_tables(work: Path) -> None:
    beir = sample_beir_dir()
    evaluated = hardneg("evaluate", "--bm25", str(beir), "--split", "test", "--save-run", "bm25.trec", cwd=work)
    whole(evaluated, "ndcg@10")
    # a second run: the same hits in reverse order per query
    by_query: dict[str, list[list[str]]] = {}
    for line in (work / "bm25.trec").read_text().splitlines():
        fields = line.split()
        by_query.setdefault(fields[0], []).append(fields)
    with (work / "reversed.trec").open("w") as out:
        for query, hits in by_query.items():
            for rank, fields in enumerate(reversed(hits), start=1):
                out.write(f"{query} Q0 {fields[2]} {rank} {1.0 / rank:.4f} reversed-bm25-with-a-long-name\n")
    qrels = str(beir / "qrels" / "test.tsv")
    compared = hardneg("compare", qrels, "bm25.trec", "reversed.trec", "--iterations", "200", cwd=work)
    whole(compared, "reversed", "rand. p")


def test_testbed_judge_eval_and_experiment_plan_tables(work: Path) -> None:
    hardneg("testbed", str(sample_beir_dir()), "--split", "test", "-o", "tb", cwd=work)
    report = hardneg("judge-eval", "tb", "--config", "score.yaml", "--store", "tb.db", cwd=work)
    whole(report, "ROC-AUC", "lexical-score-with-a-long-name-for-a-narrow-table")
    body = "mine: {method: bm25, negatives: 4, range: 0-20}\nvariants: [default]\n"
    body += "training: {epochs: 1, batch_size: 4, max_length: 48, negatives: 2, max_steps: 2}\n"
    (work / "exp.yaml").write_text(sample_experiment(body, name="tables"), encoding="utf-8")
    whole(hardneg("experiment", "exp.yaml", "--dry-run", cwd=work), "would run")
