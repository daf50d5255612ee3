"""The README's "From Python" example runs as written (on the sample that ships with hardneg)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_example() -> str:
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's From Python section has no python block"
    return blocks[0]


def test_the_example_is_short() -> None:
    lines = [line for line in _python_example().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 18


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(_python_example(), str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(old)
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed
    assert (tmp_path / "judgments.sqlite").is_file() and (tmp_path / "models" / "rlhn").is_dir()


# -- the Quickstart, exactly as written, on a slice of SciFact -----------------------------------------------------

SCIFACT_IN_README = "../shared/data/scifact"


def _quickstart_commands() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Quickstart on real data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's Quickstart has no bash block"
    commands, pending = [], ""
    for line in blocks[0].splitlines():
        line = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not line:
            continue
        pending += line.removesuffix("\\")
        if not line.endswith("\\"):
            commands.append(pending.strip())
            pending = ""
    return commands


def _scifact_slice(scifact: Path, out: Path, queries_per_split: int = 6, other_docs: int = 120) -> Path:
    """SciFact in BEIR layout cut to a few queries of each split, their relevant docs and a seeded set of others."""
    import gzip
    import json
    import random

    keep_queries: set[str] = set()
    relevant: set[str] = set()
    (out / "qrels").mkdir(parents=True)
    for split in ("train", "test"):
        lines = (scifact / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        chosen: list[str] = []
        kept = [lines[0]]
        for row in lines[1:]:
            qid, docid, _ = row.split("\t")
            if qid not in chosen and len(chosen) < queries_per_split:
                chosen.append(qid)
            if qid in chosen:
                kept.append(row)
                relevant.add(docid)
        keep_queries.update(chosen)
        (out / "qrels" / f"{split}.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    with open(scifact / "queries.jsonl", encoding="utf-8") as src, open(out / "queries.jsonl", "w") as dst:
        dst.writelines(line for line in src if json.loads(line)["_id"] in keep_queries)
    with gzip.open(scifact / "corpus.jsonl.gz", "rt", encoding="utf-8") as src:
        docs = [json.loads(line) for line in src]
    others = [d for d in docs if d["_id"] not in relevant]
    chosen_docs = [d for d in docs if d["_id"] in relevant] + random.Random(0).sample(others, other_docs)
    with gzip.open(out / "corpus.jsonl.gz", "wt", encoding="utf-8") as dst:
        dst.writelines(json.dumps(d) + "\n" for d in chosen_docs)
    return out


@pytest.mark.slow
def test_the_readme_quickstart_runs_as_written_on_a_slice(tmp_path: Path, scifact_dir: Path) -> None:
    """Every Quickstart command, word for word but for the data folder (a 6+6-query slice of SciFact) and a
    `--limit 4` on mine: each exits 0 at its defaults (training included) and leaves what the next one reads."""
    import json
    import shutil
    import subprocess
    import sys

    commands = _quickstart_commands()
    verbs = [c.split()[1] for c in commands]
    assert verbs == ["mine", "clean", "train", "train", "evaluate", "evaluate", "compare", "report"], verbs
    data = _scifact_slice(scifact_dir, tmp_path / "data" / "scifact")
    work = tmp_path / "work"
    work.mkdir()
    hardneg = shutil.which("hardneg", path=str(Path(sys.executable).parent)) or "hardneg"
    env = dict(os.environ, HARDNEG_PROGRESS_INTERVAL="0")
    for command in commands:
        assert SCIFACT_IN_README in command or " mine " not in f" {command} "
        line = command.replace(SCIFACT_IN_README, str(data))
        if line.startswith("hardneg mine "):
            line += " --limit 4"
        args = [hardneg, *line.split()[1:]]
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    for produced in ("scifact.train.jsonl.gz", "scifact.rlhn.jsonl.gz", "judgments.db", "runs/default.trec",
                     "runs/rlhn.trec", "report.html", "models/default", "models/rlhn"):  # fmt: skip
        assert (work / produced).exists(), produced
    mined = subprocess.run([hardneg, "stats", "scifact.train.jsonl.gz", "--json"], cwd=work, capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert json.loads(mined.stdout)["instances"] == 4  # --limit 4 of the slice's 6 train queries
