"""The pointwise prompts' answers: P(yes) and the expected grade from answer-token probabilities."""

from __future__ import annotations

import math

import pytest

from hardneg.data.io import read_instances
from hardneg.data.sample import sample_train_path
from hardneg.judging.prompts.pointwise import (
    PROMPTS,
    answer_class,
    reference_text,
    score_from_probabilities,
    user_prefix,
)


def test_yes_no_score_is_p_yes() -> None:
    assert score_from_probabilities("yes_no", {1: 3.0, 0: 1.0}) == pytest.approx(0.75)
    assert score_from_probabilities("yes_no", {0: 2.0}) == 0.0


def test_expected_grade() -> None:
    # grades 0..3 with probabilities 0.1, 0.2, 0.3, 0.4: 0 + 0.2 + 0.6 + 1.2 = 2.0
    assert score_from_probabilities("graded", {0: 1, 1: 2, 2: 3, 3: 4}) == pytest.approx(2.0)
    assert score_from_probabilities("graded", {3: 0.5}) == pytest.approx(3.0)  # only one grade seen
    assert math.isnan(score_from_probabilities("graded", {}))


def test_answer_tokens_are_read_as_classes() -> None:
    assert answer_class("Yes", "yes_no") == 1 and answer_class(" no", "yes_no") == 0
    assert answer_class("2", "graded") == 2 and answer_class(" 3", "graded") == 3
    assert answer_class("maybe", "yes_no") is None and answer_class("4", "graded") is None


def test_prompts_show_the_reference_and_end_before_the_candidate() -> None:
    instance = next(iter(read_instances(sample_train_path())))
    for scale in ("yes_no", "graded"):
        text = user_prefix(instance, scale, 1500)
        assert instance.positives[0].text[:40] in text and text.endswith("Candidate passage:\n")
    assert "0 = it is unrelated" in PROMPTS["graded"][1]
    instance.positives = instance.positives * 4
    assert reference_text(instance, 100).count("[") == 4  # several positives share the reference budget
