"""The local LLM pointwise judge: P(yes) from a small GGUF model's next-token logits, run in process.

For each negative the model is asked whether the candidate answers the query as the reference (the positives)
does; the score is P(yes) = softmax over the yes/no answer tokens of the first generated position. Nothing is
generated, so nothing can fail to parse.

Prefix reuse: instructions, query and reference form a shared prefix that is evaluated once per instance; for
every negative the KV cache is truncated back to the prefix length and only the candidate (plus the chat
template's assistant header) is evaluated. `llama_cpp.Llama.eval` removes KV entries past `n_tokens` before it
decodes, so setting `n_tokens` to the prefix length is the truncation. This is cheaper than `save_state` /
`load_state`, which copies the whole context state (and a logits buffer of n_batch x n_vocab floats) per call.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judge.base import Judge
from hardneg.judge.verdicts import JudgeOutput
from hardneg.models import gguf_name, load_llama

SYSTEM_PROMPT = "You assess search results. You reply with a single word: yes or no."

# The candidate comes last, so that everything before it is shared by all negatives of an instance.
USER_PROMPT = (
    "A user searched for: {query}\n\n"
    "Reference answer (a passage known to answer the search):\n{reference}\n\n"
    "Question: does the candidate passage below answer the search as the reference answer does "
    "(relevant and useful to this user)? Reply yes or no.\n\n"
    "Candidate passage:\n"
)
# Splits the rendered chat prompt into the shared prefix and the per-candidate suffix.
_SENTINEL = "\u0000CANDIDATE\u0000"

# The reference (all positives together) gets at most this many times `max_passage_chars`.
REFERENCE_BUDGET = 2

YES_VARIANTS = ("yes", "Yes", "YES", " yes", " Yes", " YES")
NO_VARIANTS = ("no", "No", "NO", " no", " No", " NO")


@dataclass(slots=True)
class PromptParts:
    """Token ids of one instance's prompt: the shared prefix, then one candidate's tokens each."""

    prefix: list[int]
    candidates: dict[str, list[int]]


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


class LlamaPointwiseJudge(Judge):
    """Scores each negative by the model's P(yes) that it answers the query as the reference does."""

    kind: ClassVar[str] = "llm-pointwise"

    def __init__(
        self,
        model: str = "qwen2.5-coder-1.5b",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_passage_chars: int = 1500,
        seed: int = 0,
        prefix_reuse: bool = True,
    ) -> None:
        if n_ctx < 256:
            raise ConfigError(f"llm-pointwise judge: n_ctx must be >= 256, not {n_ctx}")
        if max_passage_chars < 50:
            raise ConfigError(f"llm-pointwise judge: max_passage_chars must be >= 50, not {max_passage_chars}")
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.max_passage_chars = max_passage_chars
        self.seed = seed
        self.prefix_reuse = prefix_reuse
        self._llm: Any = None
        self._yes_ids: list[int] = []
        self._no_ids: list[int] = []
        self._split: tuple[str, str, str] | None = None  # (before user content, after candidate, chat template)

    @property
    def model_name(self) -> str:
        return gguf_name(self.model)

    def config(self) -> dict[str, Any]:
        # prefix_reuse and n_threads do not change the answers (tested), so they stay out of the hash.
        return {
            "kind": self.kind,
            "model": self.model_name,
            "n_ctx": self.n_ctx,
            "max_passage_chars": self.max_passage_chars,
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_PROMPT},
            "reference_budget": REFERENCE_BUDGET,
        }

    # ----- model -------------------------------------------------------------------------------------------

    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = load_llama(self.model, n_ctx=self.n_ctx, n_threads=self.n_threads, seed=self.seed)
            self._yes_ids = self._single_token_ids(YES_VARIANTS)
            self._no_ids = self._single_token_ids(NO_VARIANTS)
            if not self._yes_ids or not self._no_ids:
                raise ConfigError(f"llm-pointwise judge: model {self.model} has no single-token 'yes'/'no'")
        return self._llm

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
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
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
                rendered = f"{SYSTEM_PROMPT}\n\n{{user}}{_SENTINEL}\n\nAnswer:"
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
        # Several positives share a budget of REFERENCE_BUDGET passages, so that query + reference + candidate fit
        # n_ctx also for instances with many positives (FiQA averages 2.6).
        per_positive = min(limit, REFERENCE_BUDGET * limit // max(1, len(instance.positives)))
        positives = [_truncate(p.text, per_positive) for p in instance.positives]
        if len(positives) == 1:
            reference = positives[0]
        else:
            reference = "\n".join(f"[{i}] {text}" for i, text in enumerate(positives, start=1))
        user = USER_PROMPT.format(query=_truncate(instance.query, limit), reference=reference)
        prefix = self._tokenize(before.replace("{user}", user), first=True)
        known = {p.docid: p for p in instance.negatives}
        after_tokens = self._tokenize(after, first=False)
        candidates = {}
        for docid in docids:
            body = self._tokenize(_truncate(known[docid].text, limit), first=False)
            candidates[docid] = body + after_tokens
        return PromptParts(prefix=prefix, candidates=candidates)

    # ----- scoring -----------------------------------------------------------------------------------------

    def _p_yes(self) -> float:
        """P(yes) at the last evaluated position: softmax restricted to the yes/no answer tokens."""
        import llama_cpp
        import numpy as np

        llm = self.llm
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),))
        yes = logits[self._yes_ids].astype(np.float64)
        no = logits[self._no_ids].astype(np.float64)
        top = max(yes.max(), no.max())
        p_yes = np.exp(yes - top).sum()
        p_no = np.exp(no - top).sum()
        return float(p_yes / (p_yes + p_no))

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
            scores[docid] = self._p_yes()
        return scores, evaluated

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
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
        parts = self.prompt_parts(instance, docids)
        too_long = [d for d, t in parts.candidates.items() if len(parts.prefix) + len(t) + 1 > self.n_ctx]
        if too_long:
            longest = max(len(parts.prefix) + len(t) for t in parts.candidates.values())
            return JudgeOutput(
                docids=docids,
                status="failed",
                reason=f"prompt of {longest} tokens does not fit n_ctx={self.n_ctx} "
                f"(lower max_passage_chars or raise n_ctx); {len(too_long)} negatives affected",
            )
        scores, evaluated = self.score_pairs(parts)
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
                "prefix_reuse": self.prefix_reuse,
            },
        )

    def close(self) -> None:
        if self._llm is not None:
            with contextlib.suppress(Exception):
                self._llm.close()
        self._llm = None
        self._split = None
