"""What the in-process llama.cpp judges share: one GGUF loaded on first use, named stably, closed after the stage."""

from __future__ import annotations

import contextlib
from typing import Any

from hardneg.judging.base import Judge
from hardneg.models import gguf_name, load_llama
from hardneg.progress import announce


class LlamaJudge(Judge):
    """A judge on a local GGUF (`model`: a known name or a .gguf path) with `n_ctx`, `n_threads` and `seed`."""

    model: str
    n_ctx: int
    n_threads: int | None
    seed: int
    _llm: Any = None

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

    def _loaded(self, llm: Any) -> None:
        """Called once after the model is loaded (e.g. to look up answer tokens)."""

    def close(self) -> None:
        if self._llm is not None:
            with contextlib.suppress(Exception):
                self._llm.close()
        self._llm = None
