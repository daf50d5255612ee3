"""import-judgments: reference-implementation rows become stage-N judgments (the verb: tests/cli/test_judge_cmds.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hardneg.data.io import iter_jsonl
from hardneg.errors import InputError
from hardneg.judging.importer import import_judgments
from hardneg.judging.store import JudgmentStore
from support.judged_sample import EXTRA_WORSE, FALSE_NEGATIVES, FINAL_FLAGGED, STAGE1_FLAGGED


@pytest.mark.shared
def test_import_stage1_and_stage2(rlhn_stage1: Path, rlhn_stage2: Path, tmp_path: Path) -> None:
    with JudgmentStore(tmp_path / "j.db") as store:
        r1 = import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
        r2 = import_judgments([rlhn_stage2], 2, "gpt-4o", store)
        assert (r1.rows, r1.parsed, r1.failed, r1.flagged) == (25, 25, 0, 17)
        assert (r2.rows, r2.parsed, r2.failed) == (17, 17, 0)
        final = store.final_verdicts()
        assert len(final) == 25
        assert Counter(v.stage for v in final.values()) == {2: 17, 1: 8}
        assert all(v.status == "ok" for v in final.values())
        stage1 = {j.query_id: j for j in store.iter_judgments(stage=1)}
        # the 8 instances that stopped at stage 1 were judged clean by GPT-4o-mini
        assert all(not (v.better or v.worse) for v in final.values() if v.stage == 1)
        assert {q for q, j in stage1.items() if j.flagged} == {q for q, v in final.items() if v.stage == 2}
        rec = store.get(next(iter(stage1)), 1, r1.config_hash)
        assert rec is not None and rec.model == "gpt-4o-mini" and rec.backend == "import" and rec.raw_response
        # re-import changes nothing
        again = import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
        assert (again.unchanged, again.parsed) == (25, 25)
        assert store.count() == 42
        assert {j.attempts for j in store.iter_judgments()} == {1}


def test_import_stage1_and_stage2_on_the_sample(sample_stage1: Path, sample_stage2: Path, tmp_path: Path) -> None:
    """The same on the shipped sample, judged in the reference layout (tests/support/judged_sample.py)."""
    with JudgmentStore(tmp_path / "j.db") as store:
        r1 = import_judgments([sample_stage1], 1, "judge-1", store)
        r2 = import_judgments([sample_stage2], 2, "judge-2", store)
        routed = len(STAGE1_FLAGGED)  # stage 2 judged exactly the rows stage 1 flagged
        assert (r1.rows, r1.parsed, r1.failed, r1.flagged) == (24, 24, 0, routed)
        assert (r2.rows, r2.parsed, r2.failed, r2.flagged) == (routed, routed, 0, len(FINAL_FLAGGED))
        final = store.final_verdicts()
        assert len(final) == 24
        assert Counter(v.stage for v in final.values()) == {2: routed, 1: 24 - routed}
        assert all(v.status == "ok" for v in final.values())
        stage1 = {j.query_id: j for j in store.iter_judgments(stage=1)}
        # the instances that stopped at stage 1 were judged clean there
        assert all(not (v.better or v.worse) for v in final.values() if v.stage == 1)
        assert {q for q, j in stage1.items() if j.flagged} == {q for q, v in final.items() if v.stage == 2}
        # Doc (i) is the i-th id of the row's prompt order: the flags are the sample's known false negatives
        assert {q: v.better for q, v in final.items() if v.better} == FALSE_NEGATIVES
        assert {q: stage1[q].worse for q in EXTRA_WORSE} == {q: [d] for q, d in EXTRA_WORSE.items()}
        rec = store.get(next(iter(stage1)), 1, r1.config_hash)
        assert rec is not None and rec.model == "judge-1" and rec.backend == "import" and rec.raw_response
        # re-import changes nothing
        again = import_judgments([sample_stage1], 1, "judge-1", store)
        assert (again.unchanged, again.parsed) == (24, 24)
        assert store.count() == 24 + routed
        assert {j.attempts for j in store.iter_judgments()} == {1}


def test_unparsable_rows_are_counted_with_reasons(sample_stage1: Path, tmp_path: Path) -> None:
    rows = [row for _, row in iter_jsonl(sample_stage1)][:4]
    rows[0]["response"] = rows[0]["response"].split("<verdict>")[0]
    rows[1]["finish_reason"] = "length"
    rows[2]["response"] = None
    path = tmp_path / "judged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with JudgmentStore(tmp_path / "j.db") as store:
        report = import_judgments([path], 1, "gpt-4o-mini", store)
        assert (report.rows, report.parsed, report.failed) == (4, 1, 3)
        assert report.reasons == {
            "no <verdict> section": 1,
            "truncated response (finish_reason=length)": 1,
            "empty response": 1,
        }
        final = store.final_verdicts()
        assert sum(v.status == "parse_error" for v in final.values()) == 3  # never read as clean


def test_bad_rows_name_file_line_field_and_store_nothing(sample_stage1: Path, tmp_path: Path) -> None:
    rows = [row for _, row in iter_jsonl(sample_stage1)][:3]
    del rows[2]["response"]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with JudgmentStore(tmp_path / "j.db") as store:
        with pytest.raises(InputError) as info:
            import_judgments([path], 1, "m", store)
        assert (info.value.problem.line, info.value.problem.field) == (3, "response")
        assert store.count() == 0
