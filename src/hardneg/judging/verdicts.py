"""The vocabulary of judging: what a judge call returns, what the store keeps, what relabelling reads.

- `JudgeOutput`: one judge call's (or merged calls') answer for one instance.
- `Judgment`: a stored judge call (the latest attempt for its call identity), as the store returns it.
- `StageVerdict`: a stage's verdict on one instance, derived from a `Judgment` under a cascade's thresholds,
  fusion and routing.
- `FinalVerdict`: an instance's verdict after the cascade (that of the last stage that judged it).
- `ParsedVerdict`: what a listwise answer means once parsed (better / worse docids, or why it could not be read).

A status other than ``ok`` is never read as "no false negatives".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "parse_error", "failed"]
STATUS_ORDER = {"ok": 0, "parse_error": 1, "failed": 2}

# Why calls fail, in the order they are recognised in a failure's reason (`failure_kind`).
_FAILURE_KINDS = (
    ("auth", ("HTTP 401", "HTTP 403", "AuthenticationError", "PermissionDeniedError", "no API key")),
    ("timeout", ("Timeout", "timed out", "timeout")),
    ("connection refused", ("Connection refused", "ConnectError", "APIConnectionError")),
    ("rate limited", ("HTTP 429", "RateLimitError")),
    ("server error", ("HTTP 5", "InternalServerError", "ServiceUnavailable")),
    ("budget", ("budget",)),
)


def failure_kind(status: str, reason: str) -> str:
    """A failed call's reason grouped for reports: auth, timeout, connection refused, rate limited, server error,
    budget, parse error, or other."""
    if status == "parse_error":
        return "parse error"
    for kind, markers in _FAILURE_KINDS:
        if any(marker in reason for marker in markers):
            return kind
    return "other"


# finish reasons that mean the answer was cut off or withheld (OpenAI, Anthropic-style and llama.cpp names)
TRUNCATED = frozenset({"length", "max_tokens", "max_output_tokens"})
REFUSED = frozenset({"content_filter", "refusal", "safety"})


def normalize_finish_reason(finish_reason: str | Sequence[str] | None) -> str | None:
    """One finish reason: a list (as in the reference's stage-2 rows) reduces to its worst element."""
    if finish_reason is None:
        return None
    if isinstance(finish_reason, str):
        return finish_reason
    reasons = [str(r) for r in finish_reason if r is not None]
    if not reasons:
        return None
    for reason in reasons:
        if reason.lower() in TRUNCATED or reason.lower() in REFUSED:
            return reason
    return reasons[-1]


@dataclass(slots=True)
class JudgeOutput:
    """What one judge call (or merged calls) returns for one instance."""

    docids: list[str]  # the negatives judged, in prompt order
    status: Status = "ok"
    reason: str = ""  # why status is not ok
    better: list[str] | None = None  # listwise verdicts; None for score-only judges
    worse: list[str] | None = None
    scores: dict[str, float] | None = None  # pointwise scores per docid (higher = more likely relevant)
    raw_response: str | None = None
    finish_reason: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    template_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Judgment:
    """One stored judge call (the latest attempt for its query, stage, call identity and docset).

    `better` / `worse`: a verdict judge's own lists. A score judge gives none; for its records they hold the flags
    the most recent cascade run derived (None before any), so that readers of raw records (annotate, agreement,
    `stage_summary`) see flags. The verdicts a cascade uses are in the `verdicts` table (`StageVerdict`).
    """

    query_id: str
    stage: int
    config_hash: str
    judge_name: str
    backend: str
    model: str
    params: dict[str, Any]
    template_hash: str | None
    docids: list[str]
    raw_response: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    latency_s: float
    status: Status
    reason: str
    better: list[str] | None
    worse: list[str] | None
    scores: dict[str, float] | None
    extra: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
    docset: str = ""

    @property
    def flagged(self) -> list[str]:
        """Negatives listed in either list (better first)."""
        better = self.better or []
        return better + [d for d in self.worse or [] if d not in better]

    def to_output(self) -> JudgeOutput:
        return JudgeOutput(
            docids=list(self.docids),
            status=self.status,
            reason=self.reason,
            better=self.better,
            worse=self.worse,
            scores=self.scores,
            raw_response=self.raw_response,
            finish_reason=self.finish_reason,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            latency_s=self.latency_s,
            template_hash=self.template_hash,
            extra=dict(self.extra),
        )


@dataclass(slots=True)
class StageVerdict:
    """A stage's verdict on one instance, derived from a stored judgment under one cascade's settings."""

    query_id: str
    stage: int
    view_hash: str
    config_hash: str  # the judgment (call identity) it was derived from
    judge_name: str
    docids: list[str]  # the negatives this stage judged for the instance under this view
    status: Status
    reason: str
    better: list[str]
    worse: list[str]
    scores: dict[str, float] | None = None  # the scores the thresholds were applied to (fused where the stage fuses)
    raw_scores: dict[str, float] | None = None  # the judge's own scores of `docids`
    routed: list[str] | None = None  # negatives passed on to the next stage; None: the instance stops here
    updated_at: float = 0.0

    @property
    def flagged(self) -> list[str]:
        return self.better + [d for d in self.worse if d not in self.better]


@dataclass(slots=True)
class FinalVerdict:
    """An instance's verdict after the cascade: that of the last stage that judged it."""

    query_id: str
    stage: int
    better: list[str]  # docids of negatives judged relevant and at least as good as the positive
    worse: list[str]  # docids of negatives judged relevant but weaker
    status: Status = "ok"  # not ok: the last stage failed; relabel must not treat the instance as clean
    reason: str = ""


@dataclass(slots=True)
class ParsedVerdict:
    """The meaning of one response: docids (prompt order, no repeats) or why it could not be read."""

    ok: bool
    reason: str
    better: list[str]
    worse: list[str]

    @property
    def flagged(self) -> list[str]:
        return self.better + [d for d in self.worse if d not in self.better]


RESPONSE_SEPARATOR = "\n\n----- next call -----\n\n"


def merge_outputs(outputs: Sequence[JudgeOutput]) -> JudgeOutput:
    """One output for an instance judged in several calls (chunks of its negatives).

    Docids, verdict lists and scores are concatenated in call order; tokens and latency add up. The status is
    the worst of the parts: if any chunk failed, the instance is not judged (a partial verdict would pass the
    unjudged negatives as clean).
    """
    if not outputs:
        raise ValueError("merge_outputs needs at least one output")
    if len(outputs) == 1:
        return outputs[0]
    worst = max(outputs, key=lambda o: STATUS_ORDER[o.status])
    docids: list[str] = []
    better: list[str] = []
    worse: list[str] = []
    scores: dict[str, float] = {}
    has_verdict = has_scores = False
    for out in outputs:
        docids.extend(out.docids)
        if out.better is not None or out.worse is not None:
            has_verdict = True
            better.extend(d for d in out.better or [] if d not in better)
            worse.extend(d for d in out.worse or [] if d not in worse)
        if out.scores is not None:
            has_scores = True
            scores.update(out.scores)
    ok = worst.status == "ok"
    reasons = [f"call {i + 1}: {o.reason}" for i, o in enumerate(outputs) if o.status != "ok"]
    responses = [o.raw_response for o in outputs]
    finish = [o.finish_reason for o in outputs if o.finish_reason is not None]
    extra: dict[str, object] = {"calls": len(outputs)}
    for out in outputs:
        for key, value in out.extra.items():
            extra.setdefault(key, value)
    return JudgeOutput(
        docids=docids,
        status=worst.status,
        reason="; ".join(reasons),
        better=[d for d in better] if has_verdict and ok else None,
        worse=[d for d in worse if d not in better] if has_verdict and ok else None,
        scores=scores if has_scores else None,
        raw_response=None if all(r is None for r in responses) else RESPONSE_SEPARATOR.join(r or "" for r in responses),
        finish_reason=normalize_finish_reason(finish) if finish else None,
        tokens_in=sum(o.tokens_in for o in outputs),
        tokens_out=sum(o.tokens_out for o in outputs),
        latency_s=sum(o.latency_s for o in outputs),
        template_hash=outputs[0].template_hash,
        extra=extra,
    )


def vote_outputs(outputs: Sequence[JudgeOutput]) -> JudgeOutput:
    """One output from K judgments of the same negatives shown in K orders (listwise position bias): a docid is
    `better` when more than half the calls say so, `worse` when more than half flag it and it is not better.
    Any call that failed makes the whole vote fail (as for chunks); tokens and latency add up."""
    if len(outputs) == 1:
        return outputs[0]
    worst = max(outputs, key=lambda o: STATUS_ORDER[o.status])
    docids = list(outputs[0].docids)
    tokens_in, tokens_out = sum(o.tokens_in for o in outputs), sum(o.tokens_out for o in outputs)
    raw = RESPONSE_SEPARATOR.join(o.raw_response or "" for o in outputs)
    if worst.status != "ok":
        reasons = "; ".join(f"order {i + 1}: {o.reason}" for i, o in enumerate(outputs) if o.status != "ok")
        return JudgeOutput(
            docids=docids, status=worst.status, reason=reasons, raw_response=raw,
            latency_s=sum(o.latency_s for o in outputs), template_hash=outputs[0].template_hash,
            tokens_in=tokens_in, tokens_out=tokens_out,
        )  # fmt: skip
    half = len(outputs) / 2
    better_votes = {d: sum(d in (o.better or []) for o in outputs) for d in docids}
    any_votes = {d: sum(d in (o.better or []) or d in (o.worse or []) for o in outputs) for d in docids}
    better = [d for d in docids if better_votes[d] > half]
    worse = [d for d in docids if any_votes[d] > half and d not in better]
    return JudgeOutput(
        docids=docids, better=better, worse=worse, raw_response=raw, latency_s=sum(o.latency_s for o in outputs),
        template_hash=outputs[0].template_hash, extra={"permutations": len(outputs), "votes": any_votes},
        tokens_in=tokens_in, tokens_out=tokens_out,
    )  # fmt: skip
