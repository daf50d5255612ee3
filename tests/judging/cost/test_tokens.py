"""Token counts with the real BPE vocabularies, and what a chat request adds per message."""

from __future__ import annotations

from hardneg.judging.cost.tokens import MESSAGE_OVERHEAD_TOKENS, count_tokens, prompt_tokens, tokenizer_name


def test_tokenizer_is_real_o200k() -> None:
    assert tokenizer_name("gpt-4o-mini") == "o200k_base"
    assert count_tokens("hello world", "gpt-4o") == 2
    assert count_tokens("hello world", "gpt-3.5-turbo") == 2  # cl100k


def test_a_prompt_costs_its_tokens_plus_the_overhead_of_each_message() -> None:
    assert prompt_tokens("hello world") == 2 + MESSAGE_OVERHEAD_TOKENS
    messages = [{"role": "system", "content": "hello world"}, {"role": "user", "content": "hello"}]
    assert prompt_tokens(messages) == 2 + 1 + 2 * MESSAGE_OVERHEAD_TOKENS
