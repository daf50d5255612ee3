"""The local LLM pointwise judges: one score per negative from a small GGUF model's next-token logits, in process.

`llm-pointwise` asks whether the candidate answers the query as the reference (the positives) does; the score is
P(yes) = softmax over the yes/no answer tokens of the first generated position. `llm-graded` asks for a grade
on a 0-3 scale (`hardneg.judging.prompts.pointwise`); the score is the expected grade over the grade tokens.
Nothing is generated, so nothing can fail to parse.

Prefix reuse: instructions, query and reference form a shared prefix that is evaluated once per instance; for
every negative the KV cache is truncated back to the prefix length and only the candidate (plus the chat
template's assistant header) is evaluated. `llama_cpp.Llama.eval` removes KV entries past `n_tokens` before it
decodes, so setting `n_tokens` to the prefix length is the truncation. This is cheaper than `save_state` /
`load_state`, which copies the whole context state (and a logits buffer of n_batch x n_vocab floats) per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.judging.backends.llama_base import LlamaJudge
from hardneg.judging.backends.pointwise_scoring import (
    PromptParts,
    answer_token_ids,
    chat_split,
    checked_scale,
    judge_candidates,
    pointwise_config,
    score_from_logits,
    tokenized_parts,
)
from hardneg.judging.prompts.pointwise import Scale
from hardneg.judging.verdicts import JudgeOutput


class LlamaPointwiseJudge(LlamaJudge):
    """Scores each negative by the model's P(yes) that it answers the query as the reference does
    (`scale="yes_no"`), or by its expected grade on a 0-3 scale (`scale="graded"`, see `LlamaGradedJudge`)."""

    kind: ClassVar[str] = "llm-pointwise"
    default_scale: ClassVar[str] = "yes_no"

    def __init__(
        self,
        model: str = "qwen2.5-coder-1.5b",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_passage_chars: int = 1500,
        seed: int = 0,
        prefix_reuse: bool = True,
        scale: Scale | None = None,
    ) -> None:
        scale = checked_scale(self.kind, scale or self.default_scale, n_ctx, max_passage_chars)
        super().__init__(model, n_ctx=n_ctx, n_threads=n_threads, seed=seed)
        self.max_passage_chars = max_passage_chars
        self.prefix_reuse = prefix_reuse
        self.scale: Scale = scale
        self._answer_ids: dict[int, list[int]] = {}  # answer class -> its single-token spellings
        self._split: tuple[str, str] | None = None  # (before the user content, after the candidate)

    def config(self) -> dict[str, Any]:
        # prefix_reuse and n_threads do not change the answers (tested), so they stay out of the hash.
        config = pointwise_config(self.kind, self.model_name, self.scale, self.n_ctx, self.max_passage_chars)
        if self.scale != "yes_no":  # the yes/no judge's key is what it was before scales existed
            config["scale"] = self.scale
        return config

    # ----- model -------------------------------------------------------------------------------------------

    def _loaded(self, llm: Any) -> None:
        def tokenize(text: str) -> list[int]:
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

        self._answer_ids = answer_token_ids(self.kind, self.model, self.scale, tokenize)

    def _chat_split(self) -> tuple[str, str]:
        """(text before the user content's candidate, text after it) for this model's chat template."""
        if self._split is None:
            self._split = chat_split(self.scale, self.chat_prompt)
        return self._split

    def _tokenize(self, text: str, *, first: bool) -> list[int]:
        llm = self.llm
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if first and llm._model.add_bos_token() and (not tokens or tokens[0] != llm.token_bos()):
            tokens = [llm.token_bos(), *tokens]
        return tokens

    def prompt_parts(self, instance: Instance, docids: Sequence[str]) -> PromptParts:
        """Token ids of the shared prefix and of each candidate (candidate text + assistant header)."""
        return tokenized_parts(
            instance, docids, scale=self.scale, max_passage_chars=self.max_passage_chars, split=self._chat_split(),
            tokenize=self._tokenize,
        )  # fmt: skip

    # ----- scoring -----------------------------------------------------------------------------------------

    def _score(self) -> float:
        """The score at the last evaluated position, from a softmax restricted to the answer tokens: P(yes), or
        the expected grade."""
        import llama_cpp
        import numpy as np

        llm = self.llm
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),))
        return score_from_logits(self.scale, logits, self._answer_ids)

    # P(yes) is the yes/no scale's score (the name benches and tests use).
    _p_yes = _score

    def _eval_from(self, n_past: int, tokens: list[int]) -> None:
        llm = self.llm
        llm.n_tokens = n_past  # eval() drops the KV cache past n_tokens before decoding
        llm.eval(tokens)

    def score_pairs(self, parts: PromptParts, *, prefix_reuse: bool | None = None) -> tuple[dict[str, float], int]:
        """P(yes) per candidate and the number of tokens evaluated."""
        reuse = self.prefix_reuse if prefix_reuse is None else prefix_reuse
        scores: dict[str, float] = {}
        evaluated = 0
        prefix = parts.prefix
        if reuse and parts.candidates:
            self._eval_from(0, prefix)
            evaluated += len(prefix)
        for docid, tokens in parts.candidates.items():
            if reuse:
                self._eval_from(len(prefix), tokens)
                evaluated += len(tokens)
            else:
                self._eval_from(0, prefix + tokens)
                evaluated += len(prefix) + len(tokens)
            scores[docid] = self._score()
        return scores, evaluated

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        return judge_candidates(
            instance, docids, n_ctx=self.n_ctx, prefix_reuse=self.prefix_reuse, prompt_parts=self.prompt_parts,
            score_pairs=self.score_pairs,
        )  # fmt: skip

    def close(self) -> None:
        super().close()
        self._split = None


class LlamaGradedJudge(LlamaPointwiseJudge):
    """The expected grade (0-3, reference shown) from the next-token probabilities of the grade tokens."""

    kind: ClassVar[str] = "llm-graded"
    default_scale: ClassVar[str] = "graded"
