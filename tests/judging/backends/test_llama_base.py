"""What the llama.cpp judges share: the model's identity and settings, the generation-length check. Building a
judge loads nothing; the keys of the generating judges are pinned as they were before the base held them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from hardneg.errors import ConfigError
from hardneg.judging import build_judge
from hardneg.judging.backends.llama_answer import LlamaAnswerJudge
from hardneg.judging.backends.llama_base import checked_max_tokens
from hardneg.judging.backends.llama_listwise import LlamaListwiseJudge
from hardneg.judging.backends.llama_pointwise import LlamaPointwiseJudge
from hardneg.judging.base import config_hash

# fmt: off
PINNED_KEYS: list[tuple[str, dict[str, Any], str, str]] = [
    ("llm-listwise", {"model": "qwen2.5-coder-1.5b"}, "dea177e9c1b8d6a4", "2c18775362a02433"),
    ("llm-listwise", {"model": "qwen2.5-coder-1.5b", "template": "stage1", "n_ctx": 4096, "max_tokens": 200,
                      "temperature": 0.0, "max_negatives_per_call": 5, "seed": 2, "permutations": 3},
     "551ea58620613a06", "256e83204a983583"),
    ("llm-answer", {}, "23bc8895a22fbc64", "6c39a7503629c25c"),
    ("llm-answer", {"model": "qwen2.5-coder-0.5b", "n_ctx": 2048, "max_tokens": 64, "max_passage_chars": 600,
                    "seed": 1},
     "cc6f56694a31d6b9", "459b7347adc5fcfa"),
]
# fmt: on


@pytest.mark.parametrize(("backend", "params", "key", "digest"), PINNED_KEYS)
def test_the_store_keys_are_those_of_before(backend: str, params: dict[str, Any], key: str, digest: str) -> None:
    config = build_judge(backend, **params).config()
    assert config_hash(config) == key
    assert hashlib.sha256(json.dumps(config).encode()).hexdigest()[:16] == digest  # key for key, in the same order


def test_every_llama_judge_holds_its_model_settings_and_loads_nothing() -> None:
    for judge in (
        LlamaListwiseJudge("smollm2-135m", n_ctx=1024, max_tokens=64, n_threads=2, seed=5),
        LlamaAnswerJudge("smollm2-135m", n_ctx=1024, max_tokens=64, n_threads=2, seed=5),
        LlamaPointwiseJudge("smollm2-135m", n_ctx=1024, n_threads=2, seed=5),
    ):
        assert (judge.model, judge.n_ctx, judge.n_threads, judge.seed) == ("smollm2-135m", 1024, 2, 5)
        assert judge._llm is None and judge.model_name == "smollm2-135m"
        judge.close()  # nothing loaded: nothing to close, no error


def test_the_generation_must_leave_room_for_a_prompt() -> None:
    assert checked_max_tokens("llm-listwise", 1, 2) == 1
    with pytest.raises(ConfigError, match=r"^llm-answer judge: need 8 <= max_tokens < n_ctx, got 7 and 4096$"):
        checked_max_tokens("llm-answer", 7, 4096, least=8)
    with pytest.raises(ConfigError, match=r"^llm-listwise judge: need 1 <= max_tokens < n_ctx, got 600 and 512$"):
        LlamaListwiseJudge("smollm2-135m", n_ctx=512, max_tokens=600)
    with pytest.raises(ConfigError, match=r"^llm-answer judge: need 8 <= max_tokens < n_ctx, got 4 and 4096$"):
        LlamaAnswerJudge(max_tokens=4)
    with pytest.raises(ConfigError, match=r"^llm-answer judge: need 8 <= max_tokens < n_ctx, got 96 and 96$"):
        LlamaAnswerJudge(n_ctx=96)
