"""The README's own promises: the From Python example stays short, and the Quickstart and the example do what the
README says they do.

Both blocks run through the docs harness (tests/docs/harness.py), which runs every block of the README and the site
once per session: the Quickstart word for word on a 12-query slice of SciFact with `--limit 4` on the verbs that
take it, the example as written on the shipped sample. The tests here add what the README claims about them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from docs import harness


def _python_example() -> harness.Block:
    return harness.find_block("README.md", "from hardneg.data.sample import sample_beir_dir")


def _quickstart() -> harness.Block:
    return harness.find_block("README.md", "hardneg mine ../shared/data/scifact")


def test_the_example_is_short() -> None:
    lines = [line for line in _python_example().text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 18


def test_the_quickstart_is_the_whole_pipeline_in_order() -> None:
    verbs = [command.argv[1] for command in harness.shell_commands(_quickstart())]
    assert verbs == ["mine", "clean", "train", "train", "evaluate", "evaluate", "compare", "report"], verbs


@pytest.mark.slow
def test_the_readme_python_example_relabels_trains_and_evaluates() -> None:
    ran = harness.runner().run(_python_example())
    assert "negatives relabelled" in ran.stdout and "ndcg@10" in ran.stdout
    assert (ran.workdir / "judgments.sqlite").is_file() and (ran.workdir / "models" / "rlhn").is_dir()


@pytest.mark.slow
@pytest.mark.shared
def test_the_readme_quickstart_leaves_what_each_step_reads(scifact_dir: Path) -> None:
    ran = harness.runner().run(_quickstart())
    for produced in ("scifact.train.jsonl.gz", "scifact.rlhn.jsonl.gz", "judgments.db", "runs/default.trec",
                     "runs/rlhn.trec", "report.html", "models/default", "models/rlhn"):  # fmt: skip
        assert (ran.workdir / produced).exists(), produced
    stats = subprocess.run([str(harness.VENV_BIN / "hardneg"), "stats", "scifact.train.jsonl.gz", "--json"],
                           cwd=ran.workdir, capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(stats.stdout)["instances"] == 4  # --limit 4 of the slice's 6 train queries
