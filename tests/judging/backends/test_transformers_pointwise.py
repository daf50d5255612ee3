"""The transformers pointwise judge (`backend: transformers`): the llama.cpp judge's prompts and scores, in torch.

Fast tests: the backend is registered, builds without loading anything, and keys its judgments by what changes
the answers only. Slow tests load Qwen2.5-Coder-0.5B from its shipped GGUF (transformers dequantizes it; fp32 on
this CPU) and check that it reads the same token ids as the llama.cpp judge on the same file and gives the same
P(yes) to within 0.02 (llama.cpp multiplies quantized weights by 8-bit-quantized activations; torch runs the
dequantized weights in fp32), that the prefix reuse and the batching change nothing beyond float rounding, and
that it runs as a cascade stage.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging import JudgmentStore, build_judge, parse_config, run_cascade
from hardneg.judging.backends.transformers_pointwise import TransformersGradedJudge, TransformersPointwiseJudge

MODEL = "qwen2.5-coder-0.5b"
PARAMS = {"model": MODEL, "n_ctx": 1024, "max_passage_chars": 200}


def test_registered_lazy_and_keyed_by_what_changes_the_answers() -> None:
    judge = build_judge("transformers", **PARAMS)
    assert isinstance(judge, TransformersPointwiseJudge) and judge._model is None  # nothing loaded yet
    assert isinstance(build_judge("transformers-graded", model=MODEL), TransformersGradedJudge)
    config = judge.config()
    assert config["kind"] == "transformers" and config["model"] == MODEL and config["scale"] == "yes_no"
    # where and how it runs is not part of the key; the dtype asked for is
    same = build_judge("transformers", **PARAMS, device="cpu", max_batch=1, prefix_reuse=False, n_threads=1)
    assert same.config() == config
    assert build_judge("transformers", **PARAMS, dtype="bfloat16").config() != config
    assert build_judge("transformers", **PARAMS, scale="graded").config() != config
    # not the llama.cpp judge's key: other numerics, other judgments
    assert build_judge("llm-pointwise", **PARAMS).config() != config
    assert build_judge("transformers", model="Qwen/Qwen2.5-7B-Instruct").model_name == "Qwen/Qwen2.5-7B-Instruct"
    for bad in ({"dtype": "int3"}, {"max_batch": 0}, {"n_ctx": 16}, {"scale": "stars"}, {"max_passage_chars": 5}):
        with pytest.raises(ConfigError):
            build_judge("transformers", model=MODEL, **bad)
    parse_config({"stages": [{"name": "t", "backend": "transformers", "params": PARAMS, "t_better": 0.5}]})


# --- real model -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_judge() -> Iterator[TransformersPointwiseJudge]:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf", reason="transformers reads GGUF files with the gguf package (the train extra)")
    judge = TransformersPointwiseJudge(**PARAMS, device="cpu", max_batch=2)
    yield judge
    judge.close()


@pytest.fixture(scope="module")
def instances(sample_train: Path) -> list[Instance]:
    return list(read_instances(sample_train))[:2]


@pytest.mark.slow
def test_same_p_yes_as_llama_cpp(torch_judge: TransformersPointwiseJudge, instances: list[Instance]) -> None:
    pytest.importorskip("llama_cpp")
    from hardneg.judging.backends.llama_pointwise import LlamaPointwiseJudge

    llama = LlamaPointwiseJudge(**PARAMS)
    try:
        for instance in instances:
            docids = instance.negative_ids[:3]
            prefix, candidates = torch_judge.prompt_parts(instance, docids)
            theirs = llama.prompt_parts(instance, docids)
            assert prefix == theirs.prefix and candidates == theirs.candidates  # the same prompt, token for token
            ours, ref = torch_judge.judge(instance, docids), llama.judge(instance, docids)
            assert ours.status == ref.status == "ok", (ours.reason, ref.reason)
            assert ours.tokens_in == ref.tokens_in
            for docid in docids:
                assert 0.0 <= ours.scores[docid] <= 1.0
                assert abs(ours.scores[docid] - ref.scores[docid]) < 0.02, (instance.query_id, docid)
    finally:
        llama.close()


@pytest.mark.slow
def test_prefix_reuse_and_batching_change_nothing(
    torch_judge: TransformersPointwiseJudge, instances: list[Instance]
) -> None:
    instance = instances[1]
    prefix, candidates = torch_judge.prompt_parts(instance, instance.negative_ids[:3])
    batched, n_reused = torch_judge.score_pairs(prefix, candidates)  # 2 per forward pass, then 1
    full, n_full = torch_judge.score_pairs(prefix, candidates, prefix_reuse=False)
    assert n_full - n_reused == 2 * len(prefix)  # the prefix once instead of three times
    torch_judge.max_batch = 1  # one candidate per forward pass, on the loaded model
    try:
        single, _ = torch_judge.score_pairs(prefix, candidates)
    finally:
        torch_judge.max_batch = 2
    for docid in candidates:
        assert abs(batched[docid] - full[docid]) < 1e-4
        assert abs(batched[docid] - single[docid]) < 1e-4


@pytest.mark.slow
def test_a_cascade_stage(torch_judge: TransformersPointwiseJudge, instances: list[Instance]) -> None:
    config = parse_config(
        {"stages": [{"name": "torch", "backend": "transformers", "params": PARAMS, "t_better": 0.9, "t_worse": 0.8}]}
    )
    small = copy.deepcopy(instances)
    for instance in small:
        instance.negatives = instance.negatives[:2]
    with JudgmentStore(":memory:") as store:
        report = run_cascade(small, config, store, judges={"torch": torch_judge})
        assert report.stages[0].judged_now == 2 and report.failed == 0
        assert report.stages[0].config_hash == run_cascade(small, config, store).stages[0].config_hash
    torch_judge.n_ctx = 64  # a prompt that does not fit fails with its reason, before any forward pass
    try:
        out = torch_judge.judge(instances[0], instances[0].negative_ids[:1])
    finally:
        torch_judge.n_ctx = PARAMS["n_ctx"]
    assert out.status == "failed" and "n_ctx=64" in out.reason
