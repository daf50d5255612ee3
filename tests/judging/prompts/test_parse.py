"""Verdict parsing: every real response of the rlhn-sample, each tolerated form, each failure reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.data.io import iter_raw_rows
from hardneg.judging.prompts.parse import VerdictTags, normalize_finish_reason, parse_verdict, verdict_output
from support.judged_sample import EXTRA_WORSE, FALSE_NEGATIVES, STAGE1_FLAGGED

IDS = [f"d{i}" for i in range(1, 16)]


def wrap(better: str, worse: str) -> str:
    return (
        f"<thinking>Doc (1): meh</thinking>\n<verdict>\n<better>{better}</better>\n<worse>{worse}</worse>\n</verdict>"
    )


@pytest.mark.shared
def test_every_reference_response_parses(rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    stage1 = {row["query_id"]: row for _, row in iter_raw_rows(rlhn_stage1)}
    stage2 = {row["query_id"]: row for _, row in iter_raw_rows(rlhn_stage2)}
    assert len(stage1) == 25 and len(stage2) == 17
    flagged = set()
    for rows in (stage1, stage2):
        for qid, row in rows.items():
            parsed = parse_verdict(row["response"], row["negative_passage_ids"], row["finish_reason"])
            assert parsed.ok, (qid, parsed.reason)
            assert set(parsed.better) <= set(row["negative_passage_ids"])
            if rows is stage1 and (parsed.better or parsed.worse):
                flagged.add(qid)
    assert len(flagged) == 17
    assert flagged == set(stage2)


@pytest.mark.shared
def test_index_maps_to_prompt_order(rlhn_stage1: Path) -> None:
    for _, row in iter_raw_rows(rlhn_stage1):
        if "[Doc (2), Doc (7), Doc (10)]" in row["response"]:
            ids = row["negative_passage_ids"]
            parsed = parse_verdict(row["response"], ids, row["finish_reason"])
            assert parsed.better == [] and parsed.worse == [ids[1], ids[6], ids[9]]
            return
    pytest.fail("the known verdict was not found in the sample")


def test_every_judged_sample_response_parses(sample_stage1: Path, sample_stage2: Path) -> None:
    """The same on the shipped sample judged in the reference layout: Doc (i) is the i-th id in prompt order."""
    stage1 = {row["query_id"]: row for _, row in iter_raw_rows(sample_stage1)}
    stage2 = {row["query_id"]: row for _, row in iter_raw_rows(sample_stage2)}
    assert len(stage1) == 24 and set(stage2) == STAGE1_FLAGGED
    flagged = set()
    for rows in (stage1, stage2):
        for qid, row in rows.items():
            parsed = parse_verdict(row["response"], row["negative_passage_ids"], row["finish_reason"])
            assert parsed.ok, (qid, parsed.reason)
            assert parsed.better == FALSE_NEGATIVES.get(qid, [])
            assert parsed.worse == ([EXTRA_WORSE[qid]] if rows is stage1 and qid in EXTRA_WORSE else [])
            if rows is stage1 and (parsed.better or parsed.worse):
                flagged.add(qid)
    assert flagged == set(stage2)


@pytest.mark.parametrize(
    ("better", "worse", "want_better", "want_worse"),
    [
        ("Preferred over ground truth: []", "Relevant but weaker: [Doc (3), Doc (5)]", [], ["d3", "d5"]),
        ("[Doc(2),Doc (2), doc 4]", "[]", ["d2", "d4"], []),  # spacing, case, repeats
        ("**Doc (9)**, Doc (1)", "None", ["d1", "d9"], []),  # markdown, no brackets, prompt order
        ("[3, 5]", "[ ]", ["d3", "d5"], []),  # bare numbers in brackets
        ("", "N/A", [], []),
        ("Document (15)", "Doc #14", ["d15"], ["d14"]),
        ("[Doc (2)]", "[Doc (2), Doc (6)]", ["d2"], ["d6"]),  # in both lists: the stronger label, once
    ],
)
def test_tolerated_forms(better: str, worse: str, want_better: list[str], want_worse: list[str]) -> None:
    parsed = parse_verdict(wrap(better, worse), IDS, "stop")
    assert parsed.ok, parsed.reason
    assert (parsed.better, parsed.worse) == (want_better, want_worse)


def test_markdown_fences_and_prose_around() -> None:
    text = (
        "Sure! Here is my answer.\n```xml\n<verdict>\n<better> [] </better>,\n"
        "<worse>[Doc (7)]</worse>\n</verdict>\n```\nHope it helps."
    )
    parsed = parse_verdict(text, IDS)
    assert parsed.ok and parsed.worse == ["d7"]


def test_the_last_verdict_counts() -> None:
    text = wrap("[Doc (1)]", "[]") + "\nCorrection:\n" + wrap("[]", "[Doc (2)]")
    parsed = parse_verdict(text, IDS)
    assert parsed.better == [] and parsed.worse == ["d2"]


def test_unclosed_verdict_with_closed_lists_is_read() -> None:
    parsed = parse_verdict("<verdict><better>[Doc (1)]</better><worse>[]</worse>", IDS, "stop")
    assert parsed.ok and parsed.better == ["d1"]


def test_finish_reason_list_as_in_stage2_rows() -> None:
    assert parse_verdict(wrap("[]", "[]"), IDS, ["stop"]).ok
    assert normalize_finish_reason(["stop", "length"]) == "length"
    assert normalize_finish_reason([]) is None


@pytest.mark.parametrize(
    ("response", "finish", "reason"),
    [
        (wrap("[Doc (16)]", "[]"), "stop", "Doc (16) but only Doc (1)..Doc (15)"),
        (wrap("[]", "[Doc (0)]"), "stop", "Doc (0)"),
        ("I think Doc (3) is relevant.", "stop", "no <verdict> section"),
        (wrap("[Doc (1)]", "[]"), "length", "truncated response (finish_reason=length)"),
        (wrap("[Doc (1)]", "[]"), ["stop", "length"], "truncated"),
        (wrap("[]", "[]"), "content_filter", "withheld"),
        ("<verdict><better>[Doc (1)]</better></verdict>", "stop", "has no <worse> list"),
        (wrap("[first, 3rd]", "[]"), "stop", "unreadable <better> list"),
        ("", "stop", "empty response"),
        (None, None, "empty response"),
    ],
)
def test_failures_have_reasons(response: str | None, finish: object, reason: str) -> None:
    parsed = parse_verdict(response, IDS, finish)  # type: ignore[arg-type]
    assert not parsed.ok
    assert reason in parsed.reason
    assert parsed.better == [] and parsed.worse == []


def test_custom_tags() -> None:
    text = "<answer><relevant>[Doc (2)]</relevant><weak>[]</weak></answer>"
    parsed = parse_verdict(text, IDS, tags=VerdictTags("answer", "relevant", "weak"))
    assert parsed.ok and parsed.better == ["d2"]
    assert not parse_verdict(text, IDS).ok


def test_verdict_output() -> None:
    out = verdict_output(wrap("[Doc (1)]", "[Doc (2)]"), IDS[:3], ["stop"], tokens_in=5, tokens_out=2)
    assert out.status == "ok" and out.better == ["d1"] and out.worse == ["d2"] and out.finish_reason == "stop"
    assert out.tokens_in == 5 and out.docids == IDS[:3]
    bad = verdict_output("no verdict", IDS[:3], "stop")
    assert bad.status == "parse_error" and bad.better is None and bad.reason == "no <verdict> section"
