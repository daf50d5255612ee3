"""The answer-centric judge through an OpenAI-compatible server: one request per (query, negative).

Same prompt and reading as the local judge (`hardneg.judging.prompts.answer`); concurrency, retries, rate limits
and the budget are `OpenAIJudge`'s (`PerNegativeJudge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardneg.data.records import Instance
from hardneg.judging.backends.endpoint_settings import EndpointSettings, flat_options
from hardneg.judging.backends.openai_chat import PerNegativeJudge, completion_data, reply_text, usage_tokens
from hardneg.judging.cost import Budget
from hardneg.judging.prompts.answer import SYSTEM_PROMPT, USER_PROMPT, answers_output, parse_answer
from hardneg.judging.prompts.answer import messages as answer_messages
from hardneg.judging.verdicts import JudgeOutput


class OpenAIAnswerJudge(PerNegativeJudge):
    """Per negative: the verbatim answer span or NONE (kind "openai-answer")."""

    kind = "openai-answer"

    @flat_options()
    def __init__(
        self,
        settings: EndpointSettings,
        *,
        max_tokens: int = 96,
        max_passage_chars: int = 1200,
        budget: Budget | None = None,
    ) -> None:
        super().__init__(settings, max_tokens=max_tokens, budget=budget)
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

    def messages(self, instance: Instance, docid: str) -> list[dict[str, str]]:
        passage = instance.negative(docid)
        held = self._passages.setdefault(docid, [passage.text, 0])
        held[1] += 1  # until its answer is read
        return answer_messages(instance, passage, self.max_passage_chars)

    def output_from_completion(
        self, completion: Any, docids: Sequence[str], *, latency_s: float = 0.0, attempts: int = 1
    ) -> JudgeOutput:
        data = completion_data(completion)
        (docid,) = docids
        text = reply_text(data)
        held = self._passages.get(docid, ["", 1])
        held[1] -= 1
        if held[1] <= 0:
            self._passages.pop(docid, None)
        answer = parse_answer(text, held[0])
        return answers_output([docid], {docid: answer}, {docid: text}, **usage_tokens(data), latency_s=latency_s)
