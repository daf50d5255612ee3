"""What a verdict flags on the page: `better`, and `worse` too under tags "both"; a failed verdict flags nothing."""

from __future__ import annotations

from hardneg.analysis.report.flags import TAGS, flag_count, flagged_docids
from hardneg.judging.verdicts import FinalVerdict


def test_tags_pick_the_lists() -> None:
    verdict = FinalVerdict("q", 1, better=["a", "b"], worse=["b", "c"])
    assert flagged_docids(verdict, "both") == {"a", "b", "c"}
    assert flagged_docids(verdict, "better") == {"a", "b"}
    assert flag_count(verdict, "both") == 3 and flag_count(verdict, "better") == 2
    assert TAGS == ("better", "both")


def test_a_failed_verdict_flags_nothing() -> None:
    failed = FinalVerdict("q", 2, better=["a"], worse=[], status="parse_error")
    assert flag_count(failed, "both") == 0
