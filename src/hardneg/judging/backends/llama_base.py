"""What the in-process llama.cpp judges share: one GGUF loaded on first use, named stably, closed after the stage."""

from __future__ import annotations

import contextlib
from typing import Any

from hardneg.errors import ConfigError
from hardneg.judging.base import Judge
from hardneg.models import gguf_name, load_llama
from hardneg.progress import announce


def checked_max_tokens(kind: str, max_tokens: int, n_ctx: int, least: int = 1) -> int:
    """A generation length that leaves room for a prompt (errors name the judge `kind`)."""
    if max_tokens < least or n_ctx <= max_tokens:
        raise ConfigError(f"{kind} judge: need {least} <= max_tokens < n_ctx, got {max_tokens} and {n_ctx}")
    return max_tokens


class LlamaJudge(Judge):
    """A judge on a local GGUF (`model`: a known name or a .gguf path) with `n_ctx`, `n_threads` and `seed`."""

    def __init__(self, model: str, *, n_ctx: int, n_threads: int | None, seed: int) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self._llm: Any = None

    @property
    def model_name(self) -> str:
        return gguf_name(self.model)

    @property
    def llm(self) -> Any:
        if self._llm is None:
            announce(f"loading the {self.kind} judge's model ({self.model_name})")
            self._llm = load_llama(self.model, n_ctx=self.n_ctx, n_threads=self.n_threads, seed=self.seed)
            self._loaded(self._llm)
        return self._llm

    def chat_prompt(self, messages: list[dict[str, str]]) -> str | None:
        """`messages` laid out by the model's chat template, up to the assistant's answer (as its chat handler lays
        them out); None when the GGUF has no chat template."""
        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(llm.token_eos()),
            bos_token=llm._model.token_get_text(llm.token_bos()),
            add_generation_prompt=True,
        )
        return formatter(messages=messages).prompt  # type: ignore[arg-type]  # plain role/content dicts

    def _loaded(self, llm: Any) -> None:
        """Called once after the model is loaded (e.g. to look up answer tokens)."""

    def close(self) -> None:
        if self._llm is not None:
            with contextlib.suppress(Exception):
                self._llm.close()
        self._llm = None
