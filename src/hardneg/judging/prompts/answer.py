"""The answer-centric prompt (after ARHN, arXiv 2604.11092; our own wording) and reading its answers.

Per (query, negative) the judge is asked to copy, verbatim, the shortest part of the candidate that answers the
query, or NONE, and to say whether it answers fully (as well as the reference) or only partly. The answer is
checked against the passage: a span that does not occur in it (whitespace and case aside) counts as NONE and is
recorded as such, since a model that paraphrases or invents an answer has not found one. Then:

- a span that answers fully -> `better` (relabel it: the RLHN treatment moves it to the positives);
- a span that answers partly -> `worse` (`rlhn+filter` removes it: it is neither a clean negative nor a positive);
- NONE -> not flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hardneg.data.records import Instance, Passage
from hardneg.judging.prompts.pointwise import candidate_text, reference_text, truncate
from hardneg.judging.verdicts import JudgeOutput

SYSTEM_PROMPT = "You find answers in passages. You copy text exactly as it is written."
USER_PROMPT = (
    "A user searched for: {query}\n\n"
    "Reference answer (a passage known to answer the search):\n{reference}\n\n"
    "Candidate passage:\n{candidate}\n\n"
    "Copy, word for word, the shortest part of the candidate passage that answers the search, or write NONE if "
    "the candidate does not answer it. Then say whether that part answers the search fully (as well as the "
    "reference answer) or only partly. Reply in exactly two lines:\n"
    "ANSWER: <the copied text, or NONE>\n"
    "COVERAGE: <full or partial>"
)
Coverage = Literal["full", "partial", "none"]
# `ANSWER: ...`, also as markdown (`**ANSWER:** ...`, `**ANSWER**: ...`)
_ANSWER = re.compile(r"^\s*\**\s*answer\s*\**\s*:\s*\**\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_COVERAGE = re.compile(r"^\s*\**\s*coverage\s*\**\s*:\s*\**\s*(full|partial|none)\b", re.IGNORECASE | re.MULTILINE)
_NONE = re.compile(r"^\W*none\W*$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def messages(instance: Instance, passage: Passage, limit: int) -> list[dict[str, str]]:
    user = USER_PROMPT.format(
        query=truncate(instance.query, limit),
        reference=reference_text(instance, limit),
        candidate=candidate_text(passage, limit),
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass(slots=True)
class Answer:
    """What one answer means: the span (or None), its coverage, and whether it was read at all."""

    ok: bool
    coverage: Coverage
    span: str | None
    reason: str = ""  # why it was not read, or why a span counts as NONE

    def to_dict(self) -> dict[str, object]:
        return {"coverage": self.coverage, "span": self.span, "reason": self.reason}


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def span_in_passage(span: str, passage: str) -> bool:
    """The span occurs in the passage, whitespace and case aside (quotes around it dropped)."""
    wanted = _norm(span.strip().strip("\"“”'`"))
    return bool(wanted) and wanted in _norm(passage)


def parse_answer(text: str | None, passage: str) -> Answer:
    """Read `ANSWER: ...` / `COVERAGE: ...`; a span not in `passage` is NONE (recorded); no ANSWER line fails."""
    if not text or not text.strip():
        return Answer(False, "none", None, "empty response")
    answer = _ANSWER.search(text)
    if answer is None:
        return Answer(False, "none", None, f"no ANSWER line in {text.strip()[:80]!r}")
    span = answer.group(1).strip()
    if not span or _NONE.match(span):
        return Answer(True, "none", None)
    coverage = _COVERAGE.search(text)
    if coverage is None:
        return Answer(False, "none", span, "no COVERAGE line after the answer")
    if not span_in_passage(span, passage):
        return Answer(True, "none", span, "the span does not occur in the passage")
    value = coverage.group(1).lower()
    return Answer(True, "none" if value == "none" else value, span)  # type: ignore[arg-type]


# A score for each coverage, so answer-centric judges can also be fused and thresholded like score judges.
COVERAGE_SCORE = {"full": 1.0, "partial": 0.5, "none": 0.0}


def answers_output(docids: list[str], answers: dict[str, Answer], raw: dict[str, str], **fields: object) -> JudgeOutput:
    """One instance's output from its per-negative answers: better (full), worse (partial), a coverage score per
    negative, each answer kept in `extra` ("answer:<docid>"). Any unreadable answer makes it a parse_error."""
    bad = [d for d in docids if not answers[d].ok]
    extra = {f"answer:{d}": answers[d].to_dict() for d in docids}
    raw_response = "\n\n".join(f"[{d}] {raw.get(d, '')}" for d in docids)
    if bad:
        reason = f"{len(bad)} unreadable answer(s), e.g. {bad[0]}: {answers[bad[0]].reason}"
        return JudgeOutput(
            docids=list(docids), status="parse_error", reason=reason, raw_response=raw_response, extra=extra,
            **fields,  # type: ignore[arg-type]
        )  # fmt: skip
    return JudgeOutput(
        docids=list(docids),
        better=[d for d in docids if answers[d].coverage == "full"],
        worse=[d for d in docids if answers[d].coverage == "partial"],
        scores={d: COVERAGE_SCORE[answers[d].coverage] for d in docids},
        raw_response=raw_response,
        extra=extra,
        **fields,  # type: ignore[arg-type]
    )
