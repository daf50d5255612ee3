"""What the in-process pointwise judges (llama.cpp and transformers) share: the checks and the output around
scoring one instance's candidates. Each judge brings its own tokens (`PromptParts`) and forward passes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.prompts.pointwise import SCALES, Scale
from hardneg.judging.verdicts import JudgeOutput


@dataclass(slots=True)
class PromptParts:
    """Token ids of one instance's prompt: the shared prefix, then one candidate's tokens each."""

    prefix: list[int]
    candidates: dict[str, list[int]]


def checked_scale(kind: str, scale: str, n_ctx: int, max_passage_chars: int) -> Scale:
    """The options every pointwise judge takes, checked (errors name the judge `kind`); returns the scale."""
    if scale not in SCALES:
        raise ConfigError(f"{kind} judge: scale must be one of {', '.join(SCALES)}, not {scale!r}")
    if n_ctx < 256:
        raise ConfigError(f"{kind} judge: n_ctx must be >= 256, not {n_ctx}")
    if max_passage_chars < 50:
        raise ConfigError(f"{kind} judge: max_passage_chars must be >= 50, not {max_passage_chars}")
    return scale  # type: ignore[return-value]


def judge_candidates(
    instance: Instance,
    docids: Sequence[str],
    *,
    n_ctx: int,
    prefix_reuse: bool,
    prompt_parts: Callable[[Instance, list[str]], PromptParts],
    score_pairs: Callable[[PromptParts], tuple[dict[str, float], int]],
) -> JudgeOutput:
    """Score `docids` of `instance`: unknown docids, a missing reference, a prompt longer than `n_ctx` and a
    non-finite score are failed outputs with their reason, never scores."""
    docids = list(docids)
    start = time.perf_counter()
    known = {p.docid for p in instance.negatives}
    missing = [d for d in docids if d not in known]
    if missing:
        return JudgeOutput(docids=docids, status="failed", reason=f"unknown negative docids: {missing[:5]}")
    if not instance.positives:
        return JudgeOutput(docids=docids, status="failed", reason="instance has no positive to use as reference")
    if not docids:
        return JudgeOutput(docids=[], scores={})
    parts = prompt_parts(instance, docids)
    too_long = [d for d, t in parts.candidates.items() if len(parts.prefix) + len(t) + 1 > n_ctx]
    if too_long:
        longest = max(len(parts.prefix) + len(t) for t in parts.candidates.values())
        return JudgeOutput(
            docids=docids,
            status="failed",
            reason=f"prompt of {longest} tokens does not fit n_ctx={n_ctx} "
            f"(lower max_passage_chars or raise n_ctx); {len(too_long)} negatives affected",
        )
    scores, evaluated = score_pairs(parts)
    bad = [d for d, s in scores.items() if not math.isfinite(s)]
    if bad:
        return JudgeOutput(docids=docids, status="failed", reason=f"non-finite P(yes) for {bad[:5]}")
    return JudgeOutput(
        docids=docids,
        scores=scores,
        tokens_in=evaluated,
        latency_s=time.perf_counter() - start,
        extra={
            "prefix_tokens": len(parts.prefix),
            "candidate_tokens": sum(len(t) for t in parts.candidates.values()),
            "prefix_reuse": prefix_reuse,
        },
    )
