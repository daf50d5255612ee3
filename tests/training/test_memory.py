"""The pre-flight memory estimate (`hardneg.training.memory`) and the trainers' refusals of steps that cannot fit."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from hardneg.errors import ConfigError
from hardneg.training.memory import GIB, step_memory
from hardneg.training.reranker import RerankerConfig
from hardneg.training.reranker import check_step_memory as check_reranker
from hardneg.training.retriever import RetrieverConfig
from hardneg.training.retriever import check_step_memory as check_retriever

# all-MiniLM-L6-v2's shape, as its transformers config says it (SDPA, attention dropout 0.1)
MINILM = SimpleNamespace(
    num_hidden_layers=6, hidden_size=384, intermediate_size=1536, num_attention_heads=12,
    attention_probs_dropout_prob=0.1, _attn_implementation="sdpa",
)  # fmt: skip
PARAMS = 22_713_216


def test_the_default_retriever_loss_is_the_memory_bounded_one() -> None:
    assert RetrieverConfig().uses_cached_loss and RetrieverConfig().mini_batch_size <= 32
    assert not RetrieverConfig(cached_loss=False).uses_cached_loss
    assert not RetrieverConfig(loss="margin_mse").uses_cached_loss  # distillation has no cached form
    # 16 groups of 8 pairs: one group (8 pairs) per forward pass; bce: 16 pairs in two passes of 8
    assert RerankerConfig(loss="listwise").micro_batch() == (1, 16)
    assert RerankerConfig().micro_batch() == (8, 2)


def test_estimate_grows_with_texts_and_length_and_matches_the_measured_minilm_figure() -> None:
    one = step_memory(MINILM, texts=1, tokens_per_text=256, trainable_parameters=PARAMS, half_precision=False,
                      on_gpu=False)  # fmt: skip
    assert one is not None
    assert 100e6 < one.per_text < 140e6  # measured: ~118 MB per 256-token text (fp32, training mode)
    many = step_memory(MINILM, texts=288, tokens_per_text=256, trainable_parameters=PARAMS, half_precision=False,
                       on_gpu=False)  # fmt: skip
    assert many is not None and many.total > 20 * GIB  # the old default step (32 groups x 9 texts)
    short = step_memory(MINILM, texts=1, tokens_per_text=128, trainable_parameters=PARAMS, half_precision=False,
                        on_gpu=False)  # fmt: skip
    assert short is not None and short.per_text < one.per_text / 2  # attention is quadratic in the length
    assert step_memory(SimpleNamespace(), texts=1, tokens_per_text=8, trainable_parameters=1, half_precision=False,
                       on_gpu=False) is None  # fmt: skip


def test_the_default_retriever_and_reranker_steps_fit_in_4_gb() -> None:
    for check, config in ((check_retriever, RetrieverConfig()), (check_reranker, RerankerConfig()),
                          (check_reranker, RerankerConfig(loss="listwise"))):  # fmt: skip
        estimate = check(config, MINILM, PARAMS, available=4 * GIB)  # type: ignore[operator]
        assert estimate is not None and estimate.total < 4 * GIB


@pytest.mark.parametrize(
    ("config", "available_gb", "param"),
    [
        (RetrieverConfig(cached_loss=False), 12, "cached_loss"),  # the old default: 288 texts at once
        (RetrieverConfig(mini_batch_size=32), 2, "mini_batch_size"),
        (RetrieverConfig(loss="margin_mse", batch_size=32), 12, "batch_size"),
        (RetrieverConfig(max_length=4096), 2, "max_length"),
    ],
)
def test_a_step_that_cannot_fit_is_refused_naming_the_parameter_that_fixes_it(
    config: RetrieverConfig, available_gb: int, param: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_retriever(config, MINILM, PARAMS, available=available_gb * GIB)
    assert info.value.param == param
    assert "an estimate" in info.value.detail and f"{available_gb}.0 GB is available" in info.value.detail


def test_refusals_say_what_fits_and_unknown_memory_skips_the_check() -> None:
    with pytest.raises(ConfigError, match=r"at most (\d+) fits") as info:
        check_retriever(RetrieverConfig(mini_batch_size=32), MINILM, PARAMS, available=2 * GIB)
    fits = int(re.search(r"at most (\d+) fits", info.value.detail).group(1))  # type: ignore[union-attr]
    assert 1 <= fits < 32
    assert check_retriever(RetrieverConfig(mini_batch_size=fits), MINILM, PARAMS, available=2 * GIB) is not None
    with pytest.raises(ConfigError) as info:
        check_reranker(RerankerConfig(loss="listwise", mini_batch_size=128), MINILM, PARAMS, available=3 * GIB)
    assert info.value.param == "mini_batch_size"
    assert check_retriever(RetrieverConfig(cached_loss=False), MINILM, PARAMS, available=None) is not None
