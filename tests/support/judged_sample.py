"""The shipped sample, judged: rows in the reference implementation's layout, for tests that need judged rows
without ../shared (whose rlhn-sample holds the real GPT-4o-mini / GPT-4o rows).

A judged row is a Tevatron row of `hardneg.data.sample.sample_train_path()` plus `positive_passage_ids`,
`negative_passage_ids` (prompt order: `Doc (i)` is the i-th id), `response` (the raw judge text) and
`finish_reason` (a string in stage 1, a list in stage 2, as in the real files).

- Stage 1 judges all 24 instances: each known false negative (`sample_false_negatives()`) is listed in
  `<better>`, and for the queries of `EXTRA_WORSE` one more negative is listed in `<worse>`.
- Stage 2 judges the rows stage 1 flagged (`STAGE1_FLAGGED`, 9 of them): it keeps the false negatives and
  clears the extra ones, so the final verdicts flag exactly the false negatives (`FINAL_FLAGGED`, 5 queries).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from hardneg.data.sample import sample_false_negatives, sample_train_path

# query_id -> a negative that stage 1 calls relevant and stage 2 does not (none of them is a false negative)
EXTRA_WORSE = {"cq03": "ck13", "cq07": "ck12", "fq04": "fi24", "fq11": "fi31"}
FALSE_NEGATIVES = sample_false_negatives()
STAGE1_FLAGGED = frozenset(FALSE_NEGATIVES) | frozenset(EXTRA_WORSE)
FINAL_FLAGGED = frozenset(FALSE_NEGATIVES)


def _train_rows() -> list[dict[str, Any]]:
    with open(sample_train_path(), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _response(ids: list[str], better: list[str], worse: list[str], judge: str) -> str:
    def refs(docids: list[str]) -> str:
        return ", ".join(f"Doc ({ids.index(d) + 1})" for d in docids)

    lines = [f"Doc ({i}): {'relevant' if d in better or d in worse else 'not relevant'}." for i, d in enumerate(ids, 1)]
    return (
        f"<thinking>\n{judge}: evaluate the reasoning individually for all documents to answer the question\n"
        + "\n".join(lines)
        + "\n</thinking>\n\n<verdict> \n"
        f"<better> Preferred over ground truth: [{refs(better)}] </better>, \n"
        f"<worse> Relevant but not preferred over ground truth:  [{refs(worse)}] </worse>\n</verdict>"
    )


def judged_rows(stage: int) -> list[dict[str, Any]]:
    """The stage-1 rows (every instance) or the stage-2 rows (those stage 1 flagged), in file order."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, not {stage}")
    out = []
    for row in _train_rows():
        qid = row["query_id"]
        if stage == 2 and qid not in STAGE1_FLAGGED:
            continue
        ids = [p["docid"] for p in row["negative_passages"]]
        better = list(FALSE_NEGATIVES.get(qid, []))
        worse = [EXTRA_WORSE[qid]] if stage == 1 and qid in EXTRA_WORSE else []
        out.append(
            {
                **row,
                "positive_passage_ids": [p["docid"] for p in row["positive_passages"]],
                "negative_passage_ids": ids,
                "response": _response(ids, better, worse, "stage-1 judge" if stage == 1 else "stage-2 judge"),
                "finish_reason": "stop" if stage == 1 else ["stop"],
            }
        )
    return out


def write_judged_sample(folder: Path) -> tuple[Path, Path]:
    """Write `sample.stage_1.jsonl.gz` and `sample.stage_2.jsonl.gz` into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stage in (1, 2):
        path = folder / f"sample.stage_{stage}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in judged_rows(stage))
        paths.append(path)
    return paths[0], paths[1]
