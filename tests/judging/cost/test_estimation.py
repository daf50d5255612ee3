"""The estimate of a cascade: real templates rendered, real tokenizer, batch prices, permutations, per-pair judges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.data.io import read_instances
from hardneg.data.sample import sample_train_path
from hardneg.judging.cost.estimation import estimate
from hardneg.judging.cost.prices import PriceTable
from hardneg.judging.cost.stages import StageSpec, stage_specs_from_config
from hardneg.judging.cost.tokens import prompt_tokens
from hardneg.judging.prompts.templates import load_template

TWO_STAGES = (
    "stages:\n"
    "  - {name: cheap, backend: openai, params: {model: gpt-4o-mini, template: stage1}}\n"
    "  - {name: strong, backend: openai-batch, params: {model: gpt-4o, template: stage2}}\n"
)


@pytest.mark.shared
def test_estimate_renders_real_templates(rlhn_stage1: Path, tmp_path: Path) -> None:
    config = tmp_path / "cascade.yaml"
    config.write_text(TWO_STAGES)
    est = estimate(rlhn_stage1, config, routing_rate=0.68)
    assert est.instances == 25 and est.tokenizer == "o200k_base"
    s1, s2 = est.stages
    assert s1.calls == 25 and s2.calls == pytest.approx(25 * 0.68)
    # 15 FiQA negatives per prompt: a few thousand tokens each (the reference bill: ~3,780 in per instance)
    assert 1000 < s1.prompt_tokens / 25 < 6000
    assert s1.cost_usd < s1.cost_upper_usd and s2.cost_usd > s1.cost_usd
    # stage 2 uses the batch price: half of what the same tokens cost online
    online = PriceTable.default().get("gpt-4o").cost(int(s2.prompt_tokens), int(s2.output_tokens))
    assert s2.cost_usd == pytest.approx(online / 2, rel=1e-3)
    assert json.dumps(est.to_dict())  # JSON-able for --json
    compact = estimate(rlhn_stage1, [StageSpec("c", "gpt-4o-mini", template="compact")])
    assert compact.stages[0].output_tokens == 25 * 50


def test_estimate_renders_real_templates_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    config = tmp_path / "cascade.yaml"
    config.write_text(TWO_STAGES)
    instances = list(read_instances(sample_train))
    n = len(instances)
    est = estimate(sample_train, config, routing_rate=0.68)
    assert est.instances == n == 24 and est.tokenizer == "o200k_base"
    s1, s2 = est.stages
    assert s1.calls == n and s2.calls == pytest.approx(n * 0.68)
    # every prompt is rendered with the real template and counted with the real tokenizer
    stage1 = load_template("stage1")
    assert s1.prompt_tokens == sum(prompt_tokens(stage1.render(i, i.negative_ids), "gpt-4o-mini") for i in instances)
    assert s1.cost_usd < s1.cost_upper_usd and s2.cost_usd > s1.cost_usd
    # stage 2 uses the batch price: half of what the same tokens cost online
    online = PriceTable.default().get("gpt-4o").cost(int(s2.prompt_tokens), int(s2.output_tokens))
    assert s2.cost_usd == pytest.approx(online / 2, rel=1e-3)
    assert json.dumps(est.to_dict())  # JSON-able for --json
    compact = estimate(sample_train, [StageSpec("c", "gpt-4o-mini", template="compact")])
    assert compact.stages[0].output_tokens == n * 50


def test_the_estimate_counts_every_permutation_and_per_pair_judges() -> None:
    instances = list(read_instances(sample_train_path()))
    one = {"stages": [{"name": "s", "backend": "openai", "params": {"model": "gpt-4o-mini", "template": "compact"}}]}
    three = {"stages": [{"name": "s", "backend": "openai", "params": {"model": "gpt-4o-mini", "template": "compact",
                                                                    "permutations": 3}}]}  # fmt: skip
    base = estimate(instances, stage_specs_from_config(one)).stages[0]
    voted = estimate(instances, stage_specs_from_config(three)).stages[0]
    assert voted.calls == 3 * base.calls and voted.prompt_tokens == 3 * base.prompt_tokens
    pairs = {"stages": [{"name": "p", "backend": "openai-pointwise", "params": {"model": "gpt-4o-mini"}}]}
    pointwise = estimate(instances, stage_specs_from_config(pairs)).stages[0]
    assert pointwise.calls == sum(len(i.negatives) for i in instances)
    assert pointwise.output_tokens == pointwise.calls  # one answer token each
