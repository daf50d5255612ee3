"""Token counts of prompts, with OpenAI's own BPE vocabularies.

Counts use the offline `bpe-openai` package (its `o200k_base` gives the same ids as tiktoken's, for GPT-4o /
GPT-4o-mini / o-series; `cl100k_base` for GPT-4 / GPT-3.5). When it is not installed, counts fall back to an
estimate of 4 characters per token and every result says so (`tokenizer_name`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

# A chat request adds a few tokens per message for the role and separators.
MESSAGE_OVERHEAD_TOKENS = 7
CHARS_PER_TOKEN_ESTIMATE = 4.0


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    try:
        import bpe_openai
    except ImportError:
        return None
    return bpe_openai.get_encoding(name)


def encoding_name(model: str) -> str:
    """The BPE vocabulary of an OpenAI model name (o200k for GPT-4o and later; cl100k for older)."""
    lowered = model.lower()
    if lowered.startswith(("gpt-4-", "gpt-3.5")) or lowered == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


def tokenizer_name(model: str = "gpt-4o") -> str:
    """What `count_tokens` uses for this model: a BPE name, or 'estimate (4 chars/token)'."""
    name = encoding_name(model)
    return name if _encoding(name) is not None else f"estimate ({CHARS_PER_TOKEN_ESTIMATE:g} chars/token)"


def count_tokens(text: str, model: str = "gpt-4o") -> int:
    """Tokens of `text` for `model` (exact with bpe-openai; else an estimate, see `tokenizer_name`)."""
    encoding = _encoding(encoding_name(model))
    if encoding is None:
        return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)
    return len(encoding.encode(text))


def prompt_tokens(prompt: str | Sequence[Mapping[str, str]], model: str = "gpt-4o") -> int:
    """Tokens a chat request costs as input: one user message, or a list of messages."""
    if isinstance(prompt, str):
        return count_tokens(prompt, model) + MESSAGE_OVERHEAD_TOKENS
    return sum(count_tokens(m["content"], model) + MESSAGE_OVERHEAD_TOKENS for m in prompt)
