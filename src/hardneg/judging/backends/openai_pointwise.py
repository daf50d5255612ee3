"""Pointwise judging through an OpenAI-compatible server: one request per (query, negative), one answer token.

The score comes from the server's `logprobs` / `top_logprobs` of the first generated token (vLLM, llama.cpp's
server and OpenAI return them): P(yes) on the yes/no scale, the expected grade on the 0-3 scale, with the same
prompts as the local judges (`hardneg.judging.prompts.pointwise`). Requests go out concurrently with the retries,
rate limits and budget of `OpenAIJudge`. A reply whose top tokens hold no answer token is a `parse_error`,
never a score of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.backends.endpoint_settings import EndpointSettings, flat_options
from hardneg.judging.backends.openai_chat import PerNegativeJudge, completion_data, reply_text, usage_tokens
from hardneg.judging.cost import Budget
from hardneg.judging.prompts.pointwise import (
    PROMPTS,
    REFERENCE_BUDGET,
    SCALES,
    Scale,
    answer_class,
    candidate_text,
    score_from_probabilities,
    user_prefix,
)
from hardneg.judging.verdicts import JudgeOutput


class OpenAIPointwiseJudge(PerNegativeJudge):
    """P(yes) or the expected grade of each negative, from a chat server's top logprobs."""

    kind = "openai-pointwise"

    @flat_options()
    def __init__(
        self,
        settings: EndpointSettings,
        *,
        scale: Scale = "yes_no",
        max_passage_chars: int = 1500,
        top_logprobs: int = 20,
        budget: Budget | None = None,
    ) -> None:
        if scale not in SCALES:
            raise ConfigError(f"openai-pointwise judge: scale must be one of {', '.join(SCALES)}, not {scale!r}")
        if not 1 <= top_logprobs <= 20:
            raise ConfigError(f"openai-pointwise judge: top_logprobs must be in 1..20, not {top_logprobs}")
        super().__init__(settings, max_tokens=1, budget=budget)
        self.scale: Scale = scale
        self.max_passage_chars = max_passage_chars
        self.top_logprobs = top_logprobs

    def config(self) -> dict[str, Any]:
        system, user = PROMPTS[self.scale]
        return {
            "kind": self.kind,
            "model": self.model,
            "scale": self.scale,
            "prompt": {"system": system, "user": user},
            "max_passage_chars": self.max_passage_chars,
            "reference_budget": REFERENCE_BUDGET,
            "top_logprobs": self.top_logprobs,
        }

    def messages(self, instance: Instance, docid: str) -> list[dict[str, str]]:
        limit = self.max_passage_chars
        user = user_prefix(instance, self.scale, limit) + candidate_text(instance.negative(docid), limit)
        return [{"role": "system", "content": PROMPTS[self.scale][0]}, {"role": "user", "content": user}]

    def request_body(self, prompt: Any) -> dict[str, Any]:
        return {**super().request_body(prompt), "logprobs": True, "top_logprobs": self.top_logprobs}

    def output_from_completion(
        self, completion: Any, docids: Sequence[str], *, latency_s: float = 0.0, attempts: int = 1
    ) -> JudgeOutput:
        data = completion_data(completion)
        (docid,) = docids
        fields: dict[str, Any] = {
            **usage_tokens(data),
            "latency_s": latency_s,
            "extra": {"attempts": attempts, "served_model": data.get("model")},
        }
        choices = data.get("choices") or []
        content = ((choices[0].get("logprobs") or {}).get("content") or []) if choices else []
        top = (content[0].get("top_logprobs") or []) if content else []
        probabilities: dict[int, float] = {}
        for entry in top:
            value = answer_class(str(entry.get("token", "")), self.scale)
            logprob = entry.get("logprob")
            if value is not None and isinstance(logprob, int | float) and math.isfinite(logprob):
                probabilities[value] = probabilities.get(value, 0.0) + math.exp(logprob)
        if not probabilities:
            text = reply_text(data)
            reason = "no logprobs in the response (does the server return top_logprobs?)" if not top else (
                f"no answer token among the top {len(top)} logprobs (it wrote {text[:20]!r})"
            )  # fmt: skip
            return JudgeOutput(docids=[docid], status="parse_error", reason=reason, raw_response=text, **fields)
        return JudgeOutput(
            docids=[docid], scores={docid: score_from_probabilities(self.scale, probabilities)}, **fields
        )
