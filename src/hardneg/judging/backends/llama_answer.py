"""The local answer-centric judge: a GGUF model copies the span of each negative that answers the query, or NONE.

See `hardneg.judging.prompts.answer` for the prompt and how answers become better / worse. One short generation per
(query, negative); the prompt puts the candidate last, so llama-cpp-python reuses the evaluated prefix (query
and reference) from one negative to the next. An answer that cannot be read makes the instance a `parse_error`
(retried), never clean.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.judging.backends.llama_base import LlamaJudge, checked_max_tokens
from hardneg.judging.prompts.answer import SYSTEM_PROMPT, USER_PROMPT, Answer, answers_output, messages, parse_answer
from hardneg.judging.verdicts import JudgeOutput


class LlamaAnswerJudge(LlamaJudge):
    """Per negative: the verbatim answer span or NONE, checked against the passage (kind "llm-answer")."""

    kind: ClassVar[str] = "llm-answer"

    def __init__(
        self,
        model: str = "qwen2.5-coder-1.5b",
        n_ctx: int = 4096,
        max_tokens: int = 96,
        max_passage_chars: int = 1200,
        n_threads: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(model, n_ctx=n_ctx, n_threads=n_threads, seed=seed)
        self.max_tokens = checked_max_tokens(self.kind, max_tokens, n_ctx, least=8)
        self.max_passage_chars = max_passage_chars

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model_name,
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_PROMPT},
            "n_ctx": self.n_ctx,
            "max_tokens": self.max_tokens,
            "max_passage_chars": self.max_passage_chars,
            "seed": self.seed,
        }

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        docids = list(docids)
        known = {p.docid: p for p in instance.negatives}
        missing = [d for d in docids if d not in known]
        if missing:
            return JudgeOutput(docids=docids, status="failed", reason=f"unknown negative docids: {missing[:5]}")
        if not instance.positives:
            return JudgeOutput(docids=docids, status="failed", reason="instance has no positive to use as reference")
        start = time.perf_counter()
        answers: dict[str, Answer] = {}
        raw: dict[str, str] = {}
        tokens_in = tokens_out = 0
        for docid in docids:
            try:
                response = self.llm.create_chat_completion(
                    messages=messages(instance, known[docid], self.max_passage_chars),
                    max_tokens=self.max_tokens,
                    temperature=0.0,
                    seed=self.seed,
                )
            except (RuntimeError, ValueError) as exc:  # llama.cpp decode errors and context overflows
                return JudgeOutput(docids=docids, status="failed", reason=f"llama.cpp: {exc}")
            text = response["choices"][0]["message"].get("content") or ""
            usage = response.get("usage") or {}
            tokens_in += int(usage.get("prompt_tokens", 0))
            tokens_out += int(usage.get("completion_tokens", 0))
            raw[docid] = text
            answers[docid] = parse_answer(text, known[docid].text)
        return answers_output(
            docids, answers, raw, tokens_in=tokens_in, tokens_out=tokens_out, latency_s=time.perf_counter() - start
        )
