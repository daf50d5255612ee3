"""The small sample shipped with hardneg (written for the project, no third-party text).

- `train.jsonl`: 24 Tevatron instances in two subsets (`cooking`, `finance`), 1-2 positives and 6-10
  negatives each; a few negatives are in fact relevant (false negatives, listed in `false_negatives.json`).
- `beir/`: the same passages as a BEIR folder (`corpus.jsonl`, `queries.jsonl`, `qrels/train.tsv` with
  the training labels as given, false negatives left out; `qrels/test.tsv` for 8 held-out queries).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


def sample_dir() -> Path:
    return Path(str(resources.files("hardneg") / "resources" / "sample"))


def sample_train_path() -> Path:
    """`train.jsonl`: 24 Tevatron instances (subsets `cooking` and `finance`)."""
    return sample_dir() / "train.jsonl"


def sample_beir_dir() -> Path:
    """A BEIR folder built from the same passages (splits `train` and `test`)."""
    return sample_dir() / "beir"


def sample_false_negatives() -> dict[str, list[str]]:
    """query_id -> docids that are listed as negatives in `train.jsonl` but do answer the query."""
    with open(sample_dir() / "false_negatives.json", encoding="utf-8") as handle:
        data = json.load(handle)
    return {str(qid): [str(d) for d in docids] for qid, docids in data.items()}
