"""Merging the outputs of chunked calls into one verdict per instance."""

from __future__ import annotations

import pytest

from hardneg.judging.base import JudgeOutput
from hardneg.judging.prompts.parse import parse_verdict
from hardneg.judging.prompts.templates import chunk_docids
from hardneg.judging.verdicts import merge_outputs


def test_merge_outputs_of_chunked_calls() -> None:
    ids = [f"d{i}" for i in range(1, 31)]
    first, second = chunk_docids(ids, 25)
    # each chunk is numbered from 1 in its own prompt
    a = parse_verdict("<verdict><better>[Doc (2)]</better><worse>[Doc (25)]</worse></verdict>", first)
    b = parse_verdict("<verdict><better>[]</better><worse>[Doc (1), Doc (5)]</worse></verdict>", second)
    outs = [
        JudgeOutput(docids=first, better=a.better, worse=a.worse, tokens_in=10, tokens_out=3, raw_response="A"),
        JudgeOutput(docids=second, better=b.better, worse=b.worse, tokens_in=7, tokens_out=2, raw_response="B"),
    ]
    merged = merge_outputs(outs)
    assert merged.status == "ok"
    assert merged.docids == ids
    assert merged.better == ["d2"] and merged.worse == ["d25", "d26", "d30"]
    assert (merged.tokens_in, merged.tokens_out) == (17, 5)
    assert "A" in merged.raw_response and "B" in merged.raw_response
    # one failed chunk fails the instance: unjudged negatives must not pass as clean
    outs[1] = JudgeOutput(docids=second, status="parse_error", reason="no <verdict> section")
    merged = merge_outputs(outs)
    assert merged.status == "parse_error" and merged.better is None and "call 2: no <verdict>" in merged.reason
    scored = merge_outputs([JudgeOutput(docids=["a"], scores={"a": 0.5}), JudgeOutput(docids=["b"], scores={"b": 1})])
    assert scored.scores == {"a": 0.5, "b": 1} and scored.better is None
    with pytest.raises(ValueError):
        merge_outputs([])


def test_votes_keep_what_a_majority_of_orders_flags() -> None:
    from hardneg.judging.verdicts import JudgeOutput, vote_outputs

    docids = ["a", "b", "c", "d"]
    outs = [
        JudgeOutput(docids=docids, better=["a"], worse=["b"], tokens_in=10, raw_response="1"),
        JudgeOutput(docids=["c", "a", "d", "b"], better=["a", "b"], worse=["c"], tokens_in=10, raw_response="2"),
        JudgeOutput(docids=["d", "c", "b", "a"], better=[], worse=["a", "d"], tokens_in=10, raw_response="3"),
    ]
    voted = vote_outputs(outs)
    # a: better 2 of 3 -> better; b: flagged 2 (worse, better), better once -> worse; c, d: flagged once -> none
    assert voted.status == "ok" and voted.better == ["a"] and voted.worse == ["b"]
    assert voted.tokens_in == 30 and voted.extra["permutations"] == 3 and voted.docids == docids
    failed = vote_outputs([outs[0], JudgeOutput(docids=docids, status="parse_error", reason="no verdict")])
    assert failed.status == "parse_error" and failed.better is None and "order 2" in failed.reason
    assert vote_outputs([outs[0]]) is outs[0]
