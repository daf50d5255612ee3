"""The answer-centric judge through an OpenAI-compatible server: one request per (query, negative).

Same prompt and reading as the local judge (`hardneg.judging.prompts.answer`); concurrency, retries, rate limits
and the budget are `OpenAIJudge`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardneg.data.records import Instance
from hardneg.judging.backends.endpoints import DEFAULT_COOLDOWN_S
from hardneg.judging.backends.openai_chat import OpenAIJudge, _Prepared
from hardneg.judging.cost import Budget, prompt_tokens
from hardneg.judging.prompts.answer import SYSTEM_PROMPT, USER_PROMPT, answers_output, messages, parse_answer
from hardneg.judging.verdicts import JudgeOutput


class OpenAIAnswerJudge(OpenAIJudge):
    """Per negative: the verbatim answer span or NONE (kind "openai-answer")."""

    kind = "openai-answer"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 96,
        max_passage_chars: int = 1200,
        concurrency: int = 8,
        rpm: float | None = None,
        tpm: float | None = None,
        timeout: float | str = "auto",
        max_retries: int = 5,
        azure: bool = False,
        api_version: str | None = None,
        *,
        budget: Budget | None = None,
        seed: int | None = None,
        base_urls: Sequence[str] | None = None,
        endpoint_cooldown: float = DEFAULT_COOLDOWN_S,
    ) -> None:
        super().__init__(
            model, base_url=base_url, api_key_env=api_key_env, template="compact", temperature=0.0,
            max_tokens=max_tokens, concurrency=concurrency, rpm=rpm, tpm=tpm, timeout=timeout,
            max_retries=max_retries, max_negatives_per_call=1, azure=azure, api_version=api_version, budget=budget,
            seed=seed, base_urls=base_urls, endpoint_cooldown=endpoint_cooldown,
        )  # fmt: skip
        self.max_passage_chars = max_passage_chars
        # docid -> [passage text, calls in flight]: the text each answer is checked against, held only while needed
        self._passages: dict[str, list[Any]] = {}

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_PROMPT},
            "max_tokens": self.max_tokens,
            "max_passage_chars": self.max_passage_chars,
        }

    def _prepare(self, instance: Instance, docids: Sequence[str]) -> _Prepared:
        chunks = [[docid] for docid in docids]
        prompts = []
        for docid in docids:
            passage = instance.negative(docid)
            prompts.append(messages(instance, passage, self.max_passage_chars))
            held = self._passages.setdefault(docid, [passage.text, 0])
            held[1] += 1
        return _Prepared(instance, chunks, prompts, sum(prompt_tokens(p, self.model) for p in prompts))

    def request_body(self, prompt: Any) -> dict[str, Any]:
        return {"model": self.model, "messages": prompt, "temperature": 0.0, "max_tokens": self.max_tokens}

    def output_from_completion(
        self, completion: Any, docids: Sequence[str], *, latency_s: float = 0.0, attempts: int = 1
    ) -> JudgeOutput:
        data = completion if isinstance(completion, dict) else completion.model_dump()
        (docid,) = docids
        choices = data.get("choices") or []
        text = ((choices[0].get("message") or {}).get("content") if choices else None) or ""
        usage = data.get("usage") or {}
        held = self._passages.get(docid, ["", 1])
        held[1] -= 1
        if held[1] <= 0:
            self._passages.pop(docid, None)
        answer = parse_answer(text, held[0])
        return answers_output(
            [docid], {docid: answer}, {docid: text}, tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0), latency_s=latency_s,
        )  # fmt: skip
