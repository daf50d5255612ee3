"""Answer-centric judging: the span or NONE, checked against the passage, then better / worse / none."""

from __future__ import annotations

from hardneg.judging.prompts.answer import answers_output, parse_answer, span_in_passage

PASSAGE = "Spider-Man: Across the Spider-Verse features about 280 variants of Spider-Man, the crew said."


def test_a_full_answer_found_in_the_passage() -> None:
    answer = parse_answer("ANSWER: about 280 variants of Spider-Man\nCOVERAGE: full", PASSAGE)
    assert answer.ok and answer.coverage == "full" and answer.span == "about 280 variants of Spider-Man"


def test_none_and_a_partial_answer() -> None:
    assert parse_answer("ANSWER: NONE\nCOVERAGE: none", PASSAGE).coverage == "none"
    assert parse_answer("answer: none", PASSAGE).ok  # no COVERAGE needed when there is no answer
    partial = parse_answer("**ANSWER:** Across the  Spider-Verse\n**COVERAGE:** partial", PASSAGE)
    assert partial.ok and partial.coverage == "partial"  # markdown and whitespace do not matter


def test_a_span_not_in_the_passage_counts_as_none_and_is_recorded() -> None:
    made_up = parse_answer("ANSWER: 280 different Spider-People\nCOVERAGE: full", PASSAGE)
    assert made_up.ok and made_up.coverage == "none"
    assert made_up.span == "280 different Spider-People" and "does not occur" in made_up.reason
    assert span_in_passage('"ABOUT 280 variants"', PASSAGE)  # quotes and case aside
    assert not span_in_passage("", PASSAGE)


def test_unreadable_answers_fail_never_clean() -> None:
    assert not parse_answer("", PASSAGE).ok
    assert not parse_answer("It is about spiders.", PASSAGE).ok
    assert not parse_answer("ANSWER: about 280 variants", PASSAGE).ok  # an answer without its coverage
    answers = {"a": parse_answer("ANSWER: about 280 variants\nCOVERAGE: full", PASSAGE), "b": parse_answer("?", "")}
    out = answers_output(["a", "b"], answers, {"a": "...", "b": "?"})
    assert out.status == "parse_error" and out.better is None and "b" in out.reason


def test_answers_become_better_worse_and_scores() -> None:
    answers = {
        "full": parse_answer("ANSWER: about 280 variants\nCOVERAGE: full", PASSAGE),
        "part": parse_answer("ANSWER: the crew said\nCOVERAGE: partial", PASSAGE),
        "none": parse_answer("ANSWER: NONE", PASSAGE),
        "fake": parse_answer("ANSWER: 300 spiders\nCOVERAGE: full", PASSAGE),
    }
    out = answers_output(list(answers), answers, {})
    assert out.status == "ok" and out.better == ["full"] and out.worse == ["part"]
    assert out.scores == {"full": 1.0, "part": 0.5, "none": 0.0, "fake": 0.0}
    assert out.extra["answer:fake"]["span"] == "300 spiders"
