"""Prompts of the pointwise judges: one (query, reference, candidate) at a time, answered with one token.

Two scales, in our own wording, the reference (the instance's positives) always shown:

- ``yes_no``: does the candidate answer the search as the reference does? The score is P(yes), from the
  probabilities of the answer tokens at the first answer position.
- ``graded``: 0 unrelated, 1 on topic but not an answer, 2 answers less completely than the reference, 3
  answers as well as the reference or better (after the UMBRELA-style graded scales; our wording). The score is
  the expected grade, sum of g x P(g) over the grade tokens, in [0, 3].

The candidate comes last, so that everything before it is shared by all negatives of an instance (prefix reuse
in the local judge). The same messages go to an OpenAI-compatible server (`logprobs`/`top_logprobs`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from hardneg.data.records import Instance, Passage

Scale = Literal["yes_no", "graded"]
SCALES: tuple[str, ...] = ("yes_no", "graded")

SYSTEM_PROMPT = "You assess search results. You reply with a single word: yes or no."
USER_PROMPT = (
    "A user searched for: {query}\n\n"
    "Reference answer (a passage known to answer the search):\n{reference}\n\n"
    "Question: does the candidate passage below answer the search as the reference answer does "
    "(relevant and useful to this user)? Reply yes or no.\n\n"
    "Candidate passage:\n"
)
GRADED_SYSTEM_PROMPT = "You grade search results. You reply with a single digit: 0, 1, 2 or 3."
GRADED_USER_PROMPT = (
    "A user searched for: {query}\n\n"
    "Reference answer (a passage known to answer the search):\n{reference}\n\n"
    "Grade the candidate passage below for this search, compared with the reference answer:\n"
    "3 = it answers the search as well as the reference, or better\n"
    "2 = it answers the search, but less completely than the reference\n"
    "1 = it is about the topic, but does not answer the search\n"
    "0 = it is unrelated to the search\n"
    "Reply with the digit only.\n\n"
    "Candidate passage:\n"
)
PROMPTS: dict[str, tuple[str, str]] = {
    "yes_no": (SYSTEM_PROMPT, USER_PROMPT),
    "graded": (GRADED_SYSTEM_PROMPT, GRADED_USER_PROMPT),
}
# Answer classes of each scale, with the spellings a tokenizer may use for them.
ANSWERS: dict[str, dict[int, tuple[str, ...]]] = {
    "yes_no": {
        0: ("no", "No", "NO", " no", " No", " NO"),
        1: ("yes", "Yes", "YES", " yes", " Yes", " YES"),
    },
    "graded": {g: (str(g), f" {g}") for g in range(4)},
}
MAX_SCORE = {"yes_no": 1.0, "graded": 3.0}

# The reference (all positives together) gets at most this many times `max_passage_chars`.
REFERENCE_BUDGET = 2


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def reference_text(instance: Instance, limit: int) -> str:
    """The positives as the reference: several positives share a budget of REFERENCE_BUDGET passages, so that
    query + reference + candidate fit a small context also for instances with many positives."""
    per_positive = min(limit, REFERENCE_BUDGET * limit // max(1, len(instance.positives)))
    positives = [truncate(p.text, per_positive) for p in instance.positives]
    if len(positives) == 1:
        return positives[0]
    return "\n".join(f"[{i}] {text}" for i, text in enumerate(positives, start=1))


def user_prefix(instance: Instance, scale: Scale, limit: int) -> str:
    """The user message up to the candidate (shared by all negatives of the instance)."""
    return PROMPTS[scale][1].format(query=truncate(instance.query, limit), reference=reference_text(instance, limit))


def candidate_text(passage: Passage, limit: int) -> str:
    return truncate(passage.text, limit)


def score_from_probabilities(scale: Scale, probabilities: Mapping[int, float]) -> float:
    """P(yes) or the expected grade from the (unnormalised) probabilities of the answer classes seen."""
    total = sum(probabilities.values())
    if total <= 0 or not math.isfinite(total):
        return math.nan
    if scale == "yes_no":
        return probabilities.get(1, 0.0) / total
    return sum(grade * p for grade, p in probabilities.items()) / total


def answer_class(token: str, scale: Scale) -> int | None:
    """The answer class a generated token spells (``yes`` -> 1, ``" 2"`` -> 2), or None."""
    for value, spellings in ANSWERS[scale].items():
        if token in spellings or token.strip() in spellings:
            return value
    return None


def answer_tokens(scale: Scale) -> Sequence[tuple[int, str]]:
    return [(value, text) for value, spellings in ANSWERS[scale].items() for text in spellings]
