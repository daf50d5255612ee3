"""Reading listwise verdicts out of what LLMs actually write, and merging per-chunk outputs.

A verdict is a `<verdict>` section holding a `<better>` and a `<worse>` list of `Doc (i)` references,
where i numbers the negatives shown in the prompt from 1. The parser tolerates the noise real models add
(prose around the lists, markdown, labels before the list, `Doc(3)` / `Doc 3` / `[3, 5]`, repeats) but is
strict about meaning: a missing verdict, an index outside 1..n, an unreadable list or a truncated answer is a
parse failure with a reason. A failure is never read as "no false negatives" (the reference code's defect).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hardneg.judging.verdicts import REFUSED, TRUNCATED, JudgeOutput, ParsedVerdict, normalize_finish_reason

# `Doc (3)`, `Doc(3)`, `Doc 3`, `doc #3`, `Document (3)`, `**Doc (3)**`
_DOC_REF = re.compile(r"\bdoc(?:ument)?s?\s*[#(\[]?\s*(\d+)\s*[)\]]?", re.IGNORECASE)
# a bare bracketed list of numbers: `[3, 5]`
_BARE_LIST = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\]")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class VerdictTags:
    """Names of the tags a template asks for (custom templates may rename them)."""

    verdict: str = "verdict"
    better: str = "better"
    worse: str = "worse"


DEFAULT_TAGS = VerdictTags()


def _fail(reason: str) -> ParsedVerdict:
    return ParsedVerdict(False, reason, [], [])


def _section(text: str, tag: str) -> str | None:
    """Content of the last `<tag>...</tag>` in text; an unclosed last tag runs to the end of text."""
    opens = list(re.finditer(rf"<\s*{re.escape(tag)}\s*>", text, re.IGNORECASE))
    if not opens:
        return None
    start = opens[-1].end()
    close = re.compile(rf"<\s*/\s*{re.escape(tag)}\s*>", re.IGNORECASE).search(text, start)
    return text[start : close.start()] if close else text[start:]


def _indices(content: str, tag: str, n: int) -> list[int] | str:
    """Indices listed in one tag's content, or a failure reason."""
    found = [int(m) for m in _DOC_REF.findall(content)]
    if not found:
        bare = _BARE_LIST.findall(content)
        found = [int(x) for group in bare for x in group.split(",")]
    if not found:
        # `[]`, `None`, a label alone: an empty list. Digits we cannot attribute to a Doc: unreadable.
        if _DIGIT.search(content):
            return f"unreadable <{tag}> list: {content.strip()[:80]!r}"
        return []
    bad = sorted({i for i in found if i < 1 or i > n})
    if bad:
        return f"<{tag}> refers to Doc ({bad[0]}) but only Doc (1)..Doc ({n}) were shown"
    return found


def parse_verdict(
    response: str | None,
    docids: Sequence[str],
    finish_reason: str | Sequence[str] | None = None,
    *,
    tags: VerdictTags = DEFAULT_TAGS,
) -> ParsedVerdict:
    """Parse one listwise response; `docids` are the negatives in prompt order (Doc (i) -> docids[i-1])."""
    reason = normalize_finish_reason(finish_reason)
    if reason is not None and reason.lower() in TRUNCATED:
        return _fail(f"truncated response (finish_reason={reason})")
    if reason is not None and reason.lower() in REFUSED:
        return _fail(f"response withheld (finish_reason={reason})")
    if response is None or not response.strip():
        return _fail("empty response")
    verdict = _section(response, tags.verdict)
    if verdict is None:
        return _fail(f"no <{tags.verdict}> section")
    n = len(docids)
    lists: dict[str, list[int]] = {}
    for tag in (tags.better, tags.worse):
        content = _section(verdict, tag)
        if content is None:
            return _fail(f"<{tags.verdict}> has no <{tag}> list")
        got = _indices(content, tag, n)
        if isinstance(got, str):
            return _fail(got)
        lists[tag] = got
    better_set = set(lists[tags.better])
    # A document in both lists is relevant either way; keep the stronger label once.
    worse_set = set(lists[tags.worse]) - better_set
    return ParsedVerdict(
        ok=True,
        reason="",
        better=[docids[i - 1] for i in sorted(better_set)],
        worse=[docids[i - 1] for i in sorted(worse_set)],
    )


def verdict_output(
    response: str | None,
    docids: Sequence[str],
    finish_reason: str | Sequence[str] | None = None,
    *,
    tags: VerdictTags = DEFAULT_TAGS,
    **fields: object,
) -> JudgeOutput:
    """A `JudgeOutput` for one listwise call: parsed verdict, or status parse_error with the reason.

    Extra keyword fields (tokens_in, tokens_out, latency_s, template_hash, extra) are passed through.
    """
    parsed = parse_verdict(response, docids, finish_reason, tags=tags)
    reason = normalize_finish_reason(finish_reason)
    return JudgeOutput(
        docids=list(docids),
        status="ok" if parsed.ok else "parse_error",
        reason=parsed.reason,
        better=parsed.better if parsed.ok else None,
        worse=parsed.worse if parsed.ok else None,
        raw_response=response,
        finish_reason=reason,
        **fields,  # type: ignore[arg-type]
    )
