"""What the in-process pointwise judges (llama.cpp and transformers) share: the checks, the judgments' key, the
prompt split into a shared prefix and one suffix per candidate, the answer tokens, the score read from the logits,
and the output around scoring one instance's candidates. Each judge brings its own tokenizer, chat template and
forward passes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.prompts.pointwise import (
    ANSWERS,
    PROMPTS,
    REFERENCE_BUDGET,
    SCALES,
    Scale,
    candidate_text,
    score_from_probabilities,
    user_prefix,
)
from hardneg.judging.verdicts import JudgeOutput

# Splits the rendered chat prompt into the shared prefix and the per-candidate suffix.
_SENTINEL = "\u0000CANDIDATE\u0000"


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


def pointwise_config(kind: str, model_name: str, scale: Scale, n_ctx: int, max_passage_chars: int) -> dict[str, Any]:
    """The part of a pointwise judge's key (`config()`) every such judge has, in this order; the judge adds its own."""
    system, user = PROMPTS[scale]
    return {
        "kind": kind,
        "model": model_name,
        "n_ctx": n_ctx,
        "max_passage_chars": max_passage_chars,
        "prompt": {"system": system, "user": user},
        "reference_budget": REFERENCE_BUDGET,
    }


def answer_token_ids(
    kind: str, model: str, scale: Scale, tokenize: Callable[[str], Sequence[int]]
) -> dict[int, list[int]]:
    """Answer class -> the ids of its one-token spellings (`tokenize`: a text's ids, no special tokens). A
    multi-token spelling's first piece is not an answer by itself, so it is left out; a class with no one-token
    spelling is a ConfigError (the model cannot be scored on this scale)."""
    ids = {
        value: sorted({int(t[0]) for t in map(tokenize, texts) if len(t) == 1})
        for value, texts in ANSWERS[scale].items()
    }
    missing = [value for value, found in ids.items() if not found]
    if missing:
        raise ConfigError(f"{kind} judge: model {model} has no single-token answer for {missing}")
    return ids


def chat_split(scale: Scale, render: Callable[[list[dict[str, str]]], str | None]) -> tuple[str, str]:
    """(text before the user content's candidate, text after it): the system prompt and a user message laid out by
    the model's chat template (`render`, up to the assistant's answer), or by a plain instruction layout when
    `render` gives None (a model without a chat template). "{user}" in the first part stands for the user text
    before the candidate."""
    system = PROMPTS[scale][0]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "{user}" + _SENTINEL}]
    rendered = render(messages)
    if rendered is None:
        rendered = f"{system}\n\n{{user}}{_SENTINEL}\n\nAnswer:"
    before, after = rendered.split(_SENTINEL, 1)
    return before, after


def tokenized_parts(
    instance: Instance,
    docids: Sequence[str],
    *,
    scale: Scale,
    max_passage_chars: int,
    split: tuple[str, str],
    tokenize: Callable[..., list[int]],
) -> PromptParts:
    """Token ids of the shared prefix (instructions, query, reference) and of each candidate (its text and the chat
    template's answer header). `split`: from `chat_split`; `tokenize(text, first=...)`: ids, a BOS first where the
    model wants one."""
    before, after = split
    prefix = tokenize(before.replace("{user}", user_prefix(instance, scale, max_passage_chars)), first=True)
    known = {p.docid: p for p in instance.negatives}
    after_tokens = tokenize(after, first=False)
    candidates = {
        docid: tokenize(candidate_text(known[docid], max_passage_chars), first=False) + after_tokens for docid in docids
    }
    return PromptParts(prefix=prefix, candidates=candidates)


def score_from_logits(scale: Scale, logits: Any, answer_ids: dict[int, list[int]]) -> float:
    """The score at one position from its logits (a vector over the vocabulary), by a softmax restricted to the
    answer tokens: P(yes), or the expected grade."""
    import numpy as np

    classes = {value: np.asarray(logits[ids], dtype=np.float64) for value, ids in answer_ids.items()}
    top = max(float(values.max()) for values in classes.values())
    return score_from_probabilities(scale, {value: float(np.exp(x - top).sum()) for value, x in classes.items()})


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
