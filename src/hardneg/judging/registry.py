"""Judge backends by name, imported only when used (so `hardneg --help` never loads torch or llama.cpp).

A backend name maps to `module:Class`; `build_judge(backend, **params)` imports the module and calls
`Class(**params)`. Users (and tests) can add their own with `register_backend`, or name any importable
`package.module:Class` directly as the backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from hardneg.errors import ConfigError
from hardneg.judging.base import Judge

BACKENDS: dict[str, str | Callable[..., Judge]] = {
    "embedding": "hardneg.judging.backends.embedding:EmbeddingJudge",
    "llm-pointwise": "hardneg.judging.backends.llama_pointwise:LlamaPointwiseJudge",
    "llm-graded": "hardneg.judging.backends.llama_pointwise:LlamaGradedJudge",
    "transformers": "hardneg.judging.backends.transformers_pointwise:TransformersPointwiseJudge",
    "transformers-graded": "hardneg.judging.backends.transformers_pointwise:TransformersGradedJudge",
    "openai-pointwise": "hardneg.judging.backends.openai_pointwise:OpenAIPointwiseJudge",
    "llm-answer": "hardneg.judging.backends.llama_answer:LlamaAnswerJudge",
    "openai-answer": "hardneg.judging.backends.openai_answer:OpenAIAnswerJudge",
    "llm-listwise": "hardneg.judging.backends.llama_listwise:LlamaListwiseJudge",
    "openai": "hardneg.judging.backends.openai_chat:OpenAIJudge",
    "openai-batch": "hardneg.judging.backends.openai_batch:BatchJudge",
}

# Backends that answer with a verdict (better / worse lists) rather than per-negative scores: the listwise
# judges, and the answer-centric ones (a verdict per pair).
LISTWISE_BACKENDS = frozenset({"llm-listwise", "openai", "openai-batch", "llm-answer", "openai-answer"})


def register_backend(name: str, target: str | Callable[..., Judge]) -> None:
    """Add or replace a backend: a `module:Class` string or a callable returning a Judge."""
    BACKENDS[name] = target


def known_backends() -> list[str]:
    return sorted(BACKENDS)


def resolve_backend(backend: str) -> Callable[..., Judge]:
    target = BACKENDS.get(backend)
    if target is None and ":" in backend and "." in backend.split(":", 1)[0]:
        target = backend  # a dotted `package.module:Class` path
    if target is None:
        raise ConfigError(f"unknown judge backend {backend!r}; known: {', '.join(known_backends())}")
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"judge backend {backend!r} is not available: module {module_name} not found") from exc
        raise ConfigError(
            f"judge backend {backend!r} needs {exc.name!r}, which is not installed (see the install extras)"
        ) from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError(f"judge backend {backend!r}: {module_name} has no {attr}")
    return factory


def build_judge(backend: str, **params: Any) -> Judge:
    """A judge of the named backend built with `params` (model, template, ...)."""
    factory = resolve_backend(backend)
    try:
        judge = factory(**params)
    except TypeError as exc:
        raise ConfigError(f"judge backend {backend!r}: bad parameters {sorted(params)}: {exc}") from exc
    if not isinstance(judge, Judge):
        raise ConfigError(f"judge backend {backend!r} did not build a Judge (got {type(judge).__name__})")
    return judge
