"""What the llama.cpp and transformers pointwise judges share, with a character tokenizer in place of a model: the
key, the prompt split into a shared prefix and one suffix per candidate, the answer tokens, the score from the
logits. The judges' keys are pinned as they were before these helpers were shared."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pytest

from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError
from hardneg.judging import build_judge
from hardneg.judging.backends.pointwise_scoring import (
    answer_token_ids,
    chat_split,
    pointwise_config,
    score_from_logits,
    tokenized_parts,
)
from hardneg.judging.base import config_hash
from hardneg.judging.prompts.pointwise import PROMPTS, REFERENCE_BUDGET, candidate_text, user_prefix

BOS = 1

# fmt: off
PINNED_KEYS: list[tuple[str, dict[str, Any], str, str]] = [
    ("llm-pointwise", {}, "4bb81c45c5a2334d", "69041eca853005c7"),
    ("llm-pointwise", {"model": "qwen2.5-coder-0.5b", "n_ctx": 4096, "max_passage_chars": 800, "seed": 3,
                       "prefix_reuse": False},
     "bcaaec214e809ee3", "225ce82772a0ed69"),
    ("llm-graded", {}, "17ebf775a9a1d136", "a4d636acd822c874"),
    ("transformers", {}, "8a11a4f1ad86f79b", "904d39b44d6b1fe4"),
    ("transformers", {"model": "Qwen/Qwen2.5-0.5B-Instruct", "n_ctx": 1024, "max_passage_chars": 700,
                      "dtype": "float32", "max_batch": 4},
     "23060c6166198032", "9bbf4c918a0dcc34"),
    ("transformers-graded", {"model": "qwen2.5-coder-0.5b"}, "83965bdfd5c9699a", "524db8ac2683b786"),
]
# fmt: on


@pytest.mark.parametrize(("backend", "params", "key", "digest"), PINNED_KEYS)
def test_the_store_keys_are_those_of_before(backend: str, params: dict[str, Any], key: str, digest: str) -> None:
    config = build_judge(backend, **params).config()
    assert config_hash(config) == key
    assert hashlib.sha256(json.dumps(config).encode()).hexdigest()[:16] == digest  # key for key, in the same order


def test_the_shared_key() -> None:
    config = pointwise_config("llm-graded", "m", "graded", 1024, 300)
    assert list(config) == ["kind", "model", "n_ctx", "max_passage_chars", "prompt", "reference_budget"]
    assert config["prompt"] == {"system": PROMPTS["graded"][0], "user": PROMPTS["graded"][1]}
    assert (config["kind"], config["n_ctx"], config["reference_budget"]) == ("llm-graded", 1024, REFERENCE_BUDGET)


def chars(text: str, first: bool = False) -> list[int]:
    """A tokenizer with one token per character (ids >= 32) and a BOS first where asked."""
    return ([BOS] if first else []) + [ord(c) for c in text]


def test_the_prompt_splits_around_the_candidate() -> None:
    def template(messages: list[dict[str, str]]) -> str:
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"

    before, after = chat_split("yes_no", template)
    assert before == f"<system>{PROMPTS['yes_no'][0]}</system><user>{{user}}" and after == "</user><assistant>"
    before, after = chat_split("graded", lambda messages: None)  # no chat template: the plain layout
    assert before == f"{PROMPTS['graded'][0]}\n\n{{user}}" and after == "\n\nAnswer:"

    instance = Instance(
        query_id="q",
        query="what is a bond?",
        positives=[Passage("p", "A bond is a loan to an issuer. " * 5)],
        negatives=[Passage("n1", "Stocks are shares."), Passage("n2", "x" * 400)],
    )
    parts = tokenized_parts(
        instance, ["n2", "n1"], scale="yes_no", max_passage_chars=100, split=("S {user}", " E"), tokenize=chars
    )
    assert parts.prefix == chars("S " + user_prefix(instance, "yes_no", 100), first=True)
    assert list(parts.candidates) == ["n2", "n1"]  # in the order asked
    assert parts.candidates["n1"] == chars("Stocks are shares. E")
    assert parts.candidates["n2"] == chars(candidate_text(instance.negatives[1], 100) + " E")
    assert len(parts.candidates["n2"]) < 110  # the candidate is cut to max_passage_chars


def test_answer_tokens_are_the_one_token_spellings() -> None:
    vocabulary = {"yes": [7], " yes": [8], "Yes": [9], "no": [3], " no": [4, 5], "NO": [6]}

    def tokenize(text: str) -> list[int]:
        return vocabulary.get(text, [90, 91])  # any other spelling takes two tokens

    assert answer_token_ids("llm-pointwise", "m", "yes_no", tokenize) == {0: [3, 6], 1: [7, 8, 9]}
    with pytest.raises(ConfigError, match=r"transformers judge: model m has no single-token answer for \[0, 1, 2, 3\]"):
        answer_token_ids("transformers", "m", "graded", tokenize)


def test_the_score_is_a_softmax_over_the_answer_tokens() -> None:
    logits = np.full(10, -50.0, dtype=np.float32)
    logits[[3, 4]] = math.log(0.1)  # "no" spellings
    logits[7] = math.log(0.3)  # a "yes" spelling
    logits[9] = 40.0  # not an answer token: no weight however large
    assert score_from_logits("yes_no", logits, {0: [3, 4], 1: [7]}) == pytest.approx(0.6, abs=1e-6)
    graded = np.array([0.0, 0.0, 0.0, 0.0])
    assert score_from_logits("graded", graded, {0: [0], 1: [1], 2: [2], 3: [3]}) == pytest.approx(1.5)
    huge = np.array([1000.0, 999.0])  # no overflow: the top logit is subtracted first
    assert score_from_logits("yes_no", huge, {1: [0], 0: [1]}) == pytest.approx(1 / (1 + math.exp(-1)))
