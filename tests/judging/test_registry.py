"""The judge registry: named backends, dotted paths, bad names and parameters."""

from __future__ import annotations

import pytest

from hardneg.errors import ConfigError
from hardneg.judging.registry import build_judge
from support.lexical_judges import LexicalJudge


def test_registry() -> None:
    with pytest.raises(ConfigError, match=r"unknown judge backend 'nope'; known: .*embedding.*llm-pointwise.*openai"):
        build_judge("nope")
    judge = build_judge("lexical", model="m")
    assert isinstance(judge, LexicalJudge) and judge.model_name == "m"
    with pytest.raises(ConfigError, match="bad parameters"):
        build_judge("lexical", colour="red")
    with pytest.raises(ConfigError, match="not available"):
        build_judge("hardneg.judging.nonexistent:Judge")
    # a dotted path works without registration
    assert type(build_judge("hardneg.judging.backends.embedding:EmbeddingJudge")).__name__ == "EmbeddingJudge"
    assert type(build_judge("embedding")).__name__ == "EmbeddingJudge"  # lazy: the model loads on first use
