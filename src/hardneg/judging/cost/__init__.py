"""What API judging costs: token counts, price tables, estimates before a run, a budget during it.

- `tokens`: prompt token counts with OpenAI's BPE vocabularies (an estimate of 4 chars/token without them).
- `prices`: the dated `PriceTable` (built-in, or your own JSON/YAML file) and `cost_of` real usage.
- `budget`: `Budget`, the spending cap enforced while requests are made.
- `stages`: `StageSpec`, what the estimate reads from a cascade configuration.
- `estimation`: `estimate`, the tokens and USD a cascade would cost, before any call.
- `files`: reading price tables and cascade files, with errors naming the file.

Every public name is importable from `hardneg.judging.cost`.
"""

from hardneg.judging.cost.budget import Budget, BudgetExceeded, Reservation
from hardneg.judging.cost.estimation import (
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_ROUTING_RATE,
    FALLBACK_OUTPUT_TOKENS,
    Estimate,
    StageEstimate,
    estimate,
)
from hardneg.judging.cost.prices import DEFAULT_PRICES, PRICES_DATE, PRICES_NOTE, Price, PriceTable, cost_of
from hardneg.judging.cost.stages import API_KINDS, PER_PAIR_KINDS, StageSpec, load_stage_specs, stage_specs_from_config
from hardneg.judging.cost.tokens import (
    CHARS_PER_TOKEN_ESTIMATE,
    MESSAGE_OVERHEAD_TOKENS,
    count_tokens,
    encoding_name,
    prompt_tokens,
    tokenizer_name,
)

__all__ = [
    "API_KINDS",
    "CHARS_PER_TOKEN_ESTIMATE",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_PRICES",
    "DEFAULT_ROUTING_RATE",
    "FALLBACK_OUTPUT_TOKENS",
    "MESSAGE_OVERHEAD_TOKENS",
    "PER_PAIR_KINDS",
    "PRICES_DATE",
    "PRICES_NOTE",
    "Budget",
    "BudgetExceeded",
    "Estimate",
    "Price",
    "PriceTable",
    "Reservation",
    "StageEstimate",
    "StageSpec",
    "cost_of",
    "count_tokens",
    "encoding_name",
    "estimate",
    "load_stage_specs",
    "prompt_tokens",
    "stage_specs_from_config",
    "tokenizer_name",
]
