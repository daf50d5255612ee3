"""What a cascade would cost, before paying: the real prompts rendered and counted, nothing called."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from hardneg.data.io import read_instances
from hardneg.data.records import Instance
from hardneg.errors import EmptyInput
from hardneg.judging.cost.prices import PRICES_NOTE, PriceTable
from hardneg.judging.cost.stages import PER_PAIR_KINDS, StageSpec, load_stage_specs, stage_specs_from_config
from hardneg.judging.cost.tokens import MESSAGE_OVERHEAD_TOKENS, prompt_tokens, tokenizer_name
from hardneg.judging.prompts.answer import messages as answer_messages
from hardneg.judging.prompts.pointwise import PROMPTS as POINTWISE_PROMPTS
from hardneg.judging.prompts.pointwise import candidate_text, user_prefix
from hardneg.judging.prompts.templates import chunk_docids, load_template

# Output tokens assumed per call when estimating, by template. Chain-of-thought templates write ~1K tokens
# (the reference cascade's real bill: 961 out per instance for GPT-4o-mini, 1,090 for GPT-4o); the compact
# template writes only the verdict.
DEFAULT_OUTPUT_TOKENS: dict[str, int] = {"stage1": 1000, "stage2": 1100, "scidocs": 1000, "compact": 50}
FALLBACK_OUTPUT_TOKENS = 1000
DEFAULT_ROUTING_RATE = 0.7  # share of instances a stage passes on (72% measured on the reference sample)


@dataclass(slots=True)
class StageEstimate:
    name: str
    model: str
    template: str
    batch: bool
    instances: float  # expected instances reaching the stage
    calls: float
    prompt_tokens: float
    output_tokens: float  # assumed
    max_output_tokens: float  # calls * max_tokens (upper bound)
    cost_usd: float  # expected: prompt + assumed output
    cost_upper_usd: float  # upper bound: prompt + max_tokens per call (how the paper budgets)
    routing_rate: float


@dataclass(slots=True)
class Estimate:
    instances: int
    stages: list[StageEstimate]
    tokenizer: str
    prices_date: str
    prices_source: str
    note: str = PRICES_NOTE
    assumptions: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.stages)

    @property
    def cost_upper_usd(self) -> float:
        return sum(s.cost_upper_usd for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = round(self.cost_usd, 4)
        out["cost_upper_usd"] = round(self.cost_upper_usd, 4)
        for stage in out["stages"]:
            for key in ("cost_usd", "cost_upper_usd"):
                stage[key] = round(stage[key], 4)
        return out


def _pair_messages(kind: str, instance: Any, docid: str) -> list[dict[str, str]]:
    """The messages a per-pair judge sends for one negative (default passage budget)."""
    if kind == "openai-answer":
        return answer_messages(instance, instance.negative(docid), 1200)
    system, _ = POINTWISE_PROMPTS["yes_no"]
    user = user_prefix(instance, "yes_no", 1500) + candidate_text(instance.negative(docid), 1500)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def estimate(
    instances: str | Path | Iterable[Any],
    stages: Sequence[StageSpec] | str | Path | Mapping[str, Any],
    *,
    price_table: PriceTable | None = None,
    routing_rate: float = DEFAULT_ROUTING_RATE,
    output_tokens: Mapping[str, int] | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Estimate:
    """Expected tokens and cost of a cascade over `instances`, rendering the real templates. Nothing is called.

    Every instance's prompt(s) are rendered and counted for every API stage (chunked by
    max_negatives_per_call as the judge would). Stage k>1 sees `routing_rate` of stage k-1's instances (or
    the stage's own `routing_rate`), so its prompt tokens are the full-data count scaled by the cumulative
    rate. `progress(n)` is called with the number of instances read so far.
    """

    prices = price_table or PriceTable.default()
    if isinstance(stages, str | Path):
        specs = load_stage_specs(stages)
    elif isinstance(stages, Mapping):
        specs = stage_specs_from_config(stages)
    else:
        specs = list(stages)
    out_tokens = {**DEFAULT_OUTPUT_TOKENS, **(output_tokens or {})}
    for spec in specs:
        if spec.api and not prices.has(spec.model):
            prices.get(spec.model)  # raises ConfigError naming the model before any work
    templates = {
        spec.template: load_template(spec.template) for spec in specs if spec.api and spec.kind not in PER_PAIR_KINDS
    }

    source = read_instances(instances) if isinstance(instances, str | Path) else cast(Iterable[Instance], instances)
    n = 0
    calls = [0] * len(specs)
    tokens = [0] * len(specs)
    for instance in source:
        if limit is not None and n >= limit:
            break
        n += 1
        for k, spec in enumerate(specs):
            if not spec.api:
                continue
            docids = instance.negative_ids
            if spec.kind in PER_PAIR_KINDS:
                for docid in docids:
                    tokens[k] += prompt_tokens(_pair_messages(spec.kind, instance, docid), spec.model)
                    calls[k] += 1
                continue
            for chunk in chunk_docids(docids, spec.max_negatives_per_call) if docids else []:
                prompt = templates[spec.template].render(instance, chunk)
                # each of the K orders is its own call with a prompt of the same length
                tokens[k] += prompt_tokens(prompt, spec.model) * spec.permutations
                calls[k] += spec.permutations
        if progress is not None and n % 100 == 0:
            progress(n)
    if progress is not None:
        progress(n)
    if n == 0:
        raise EmptyInput(instances if isinstance(instances, str | Path) else "<instances>")

    results = []
    reach = 1.0
    for k, spec in enumerate(specs):
        rate = 1.0 if k == 0 else float(spec.routing_rate if spec.routing_rate is not None else routing_rate)
        reach *= rate
        expected_calls = calls[k] * reach
        assumed_out = spec.output_tokens or out_tokens.get(spec.template, FALLBACK_OUTPUT_TOKENS)
        out_total = expected_calls * assumed_out
        in_total = tokens[k] * reach
        if spec.api:
            price = prices.get(spec.model)
            cost = price.cost(int(in_total), int(out_total), batch=spec.batch)
            upper = price.cost(int(in_total), int(expected_calls * spec.max_tokens), batch=spec.batch)
        else:
            cost = upper = 0.0
        results.append(
            StageEstimate(
                name=spec.name,
                model=spec.model,
                template=spec.template,
                batch=spec.batch,
                instances=n * reach,
                calls=expected_calls,
                prompt_tokens=in_total,
                output_tokens=out_total if spec.api else 0.0,
                max_output_tokens=expected_calls * spec.max_tokens if spec.api else 0.0,
                cost_usd=cost,
                cost_upper_usd=upper,
                routing_rate=rate,
            )
        )
    return Estimate(
        instances=n,
        stages=results,
        tokenizer=tokenizer_name(specs[0].model if specs else "gpt-4o"),
        prices_date=prices.date,
        prices_source=prices.source,
        assumptions={
            "routing_rate": routing_rate,
            "output_tokens_per_call": {s.name: s.output_tokens or out_tokens.get(s.template) for s in specs},
            "message_overhead_tokens": MESSAGE_OVERHEAD_TOKENS,
        },
    )
