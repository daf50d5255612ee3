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
from hardneg.errors import ConfigError
from hardneg.judging.backends.llama_base import LlamaJudge
from hardneg.judging.backends.pointwise_scoring import PromptParts, checked_scale, judge_candidates
from hardneg.judging.prompts.pointwise import (
    ANSWERS,
    PROMPTS,
    REFERENCE_BUDGET,
    Scale,
    candidate_text,
    score_from_probabilities,
    user_prefix,
)
from hardneg.judging.verdicts import JudgeOutput

# Splits the rendered chat prompt into the shared prefix and the per-candidate suffix.
_SENTINEL = "\u0000CANDIDATE\u0000"


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
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.max_passage_chars = max_passage_chars
        self.seed = seed
        self.prefix_reuse = prefix_reuse
        self.scale: Scale = scale
        self._llm: Any = None
        self._answer_ids: dict[int, list[int]] = {}  # answer class -> its single-token spellings
        self._split: tuple[str, str, str] | None = None  # (before user content, after candidate, chat template)

    def config(self) -> dict[str, Any]:
        # prefix_reuse and n_threads do not change the answers (tested), so they stay out of the hash.
        system, user = PROMPTS[self.scale]
        config: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model_name,
            "n_ctx": self.n_ctx,
            "max_passage_chars": self.max_passage_chars,
            "prompt": {"system": system, "user": user},
            "reference_budget": REFERENCE_BUDGET,
        }
        if self.scale != "yes_no":  # the yes/no judge's key is what it was before scales existed
            config["scale"] = self.scale
        return config

    # ----- model -------------------------------------------------------------------------------------------

    def _loaded(self, llm: Any) -> None:
        self._answer_ids = {v: self._single_token_ids(texts) for v, texts in ANSWERS[self.scale].items()}
        missing = [v for v, ids in self._answer_ids.items() if not ids]
        if missing:
            raise ConfigError(f"{self.kind} judge: model {self.model} has no single-token answer for {missing}")

    def _single_token_ids(self, variants: Sequence[str]) -> list[int]:
        ids: set[int] = set()
        for text in variants:
            tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if len(tokens) == 1:  # a multi-token spelling's first piece is not an answer by itself
                ids.add(tokens[0])
        return sorted(ids)

    def _chat_split(self) -> tuple[str, str]:
        """(text before the user content's candidate, text after it) for this model's chat template."""
        llm = self.llm
        if self._split is None:
            template = llm.metadata.get("tokenizer.chat_template")
            system = PROMPTS[self.scale][0]
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": "{user}" + _SENTINEL},
            ]
            if template:
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                model = llm._model
                formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=model.token_get_text(llm.token_eos()),
                    bos_token=model.token_get_text(llm.token_bos()),
                    add_generation_prompt=True,
                )
                rendered = formatter(messages=messages).prompt
            else:  # a GGUF without a chat template: a plain instruction layout
                rendered = f"{system}\n\n{{user}}{_SENTINEL}\n\nAnswer:"
            before, after = rendered.split(_SENTINEL, 1)
            self._split = (before, after, template or "")
        return self._split[0], self._split[1]

    def _tokenize(self, text: str, *, first: bool) -> list[int]:
        llm = self.llm
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if first and llm._model.add_bos_token() and (not tokens or tokens[0] != llm.token_bos()):
            tokens = [llm.token_bos(), *tokens]
        return tokens

    def prompt_parts(self, instance: Instance, docids: Sequence[str]) -> PromptParts:
        """Token ids of the shared prefix and of each candidate (candidate text + assistant header)."""
        before, after = self._chat_split()
        limit = self.max_passage_chars
        prefix = self._tokenize(before.replace("{user}", user_prefix(instance, self.scale, limit)), first=True)
        known = {p.docid: p for p in instance.negatives}
        after_tokens = self._tokenize(after, first=False)
        candidates = {}
        for docid in docids:
            body = self._tokenize(candidate_text(known[docid], limit), first=False)
            candidates[docid] = body + after_tokens
        return PromptParts(prefix=prefix, candidates=candidates)

    # ----- scoring -----------------------------------------------------------------------------------------

    def _score(self) -> float:
        """The score at the last evaluated position, from a softmax restricted to the answer tokens: P(yes), or
        the expected grade."""
        import llama_cpp
        import numpy as np

        llm = self.llm
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),))
        classes = {v: logits[ids].astype(np.float64) for v, ids in self._answer_ids.items()}
        top = max(float(values.max()) for values in classes.values())
        return score_from_probabilities(self.scale, {v: float(np.exp(x - top).sum()) for v, x in classes.items()})

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
