"""What API judging costs: token counts, price tables, estimates before a run, a budget during it.

Token counts use OpenAI's own BPE vocabularies through the offline `bpe-openai` package (its
`o200k_base` gives the same ids as tiktoken's, for GPT-4o / GPT-4o-mini / o-series; `cl100k_base` for
GPT-4 / GPT-3.5). When it is not installed, counts fall back to an estimate of 4 characters per token and
every result says so (`tokenizer` field).

Prices change: the shipped table (`DEFAULT_PRICES`, dated in `PRICES_DATE`) is a starting point. Pass your
own table (a JSON or YAML file: `{model: {input: USD per 1M tokens, output: ..., batch_discount: 0.5}}`).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from hardneg.data.io import read_instances
from hardneg.errors import ConfigError, EmptyInput, HardnegError
from hardneg.judging.prompts.answer import messages as answer_messages
from hardneg.judging.prompts.pointwise import PROMPTS as POINTWISE_PROMPTS
from hardneg.judging.prompts.pointwise import candidate_text, user_prefix
from hardneg.judging.prompts.templates import chunk_docids, load_template

PRICES_DATE = "2025-06"
PRICES_NOTE = (
    f"OpenAI list prices in USD per 1M tokens as noted in {PRICES_DATE}; prices change: "
    "check https://openai.com/api/pricing and pass your own table with --prices."
)
# USD per 1M tokens. Batch API: 50% off both input and output.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60, "batch_discount": 0.5},
    "gpt-4o": {"input": 2.50, "output": 10.00, "batch_discount": 0.5},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60, "batch_discount": 0.5},
    "gpt-4.1": {"input": 2.00, "output": 8.00, "batch_discount": 0.5},
}

# Output tokens assumed per call when estimating, by template. Chain-of-thought templates write ~1K tokens
# (the reference cascade's real bill: 961 out per instance for GPT-4o-mini, 1,090 for GPT-4o); the compact
# template writes only the verdict.
DEFAULT_OUTPUT_TOKENS: dict[str, int] = {"stage1": 1000, "stage2": 1100, "scidocs": 1000, "compact": 50}
FALLBACK_OUTPUT_TOKENS = 1000
DEFAULT_ROUTING_RATE = 0.7  # share of instances a stage passes on (72% measured on the reference sample)
# A chat request adds a few tokens per message for the role and separators.
MESSAGE_OVERHEAD_TOKENS = 7
CHARS_PER_TOKEN_ESTIMATE = 4.0


# ---------------------------------------------------------------------------------------------- tokens


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


# ---------------------------------------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class Price:
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens
    batch_discount: float = 0.5  # fraction taken off with the Batch API

    def cost(self, tokens_in: int, tokens_out: int, *, batch: bool = False) -> float:
        usd = (tokens_in * self.input + tokens_out * self.output) / 1e6
        return usd * (1.0 - self.batch_discount) if batch else usd


class PriceTable:
    """Model name -> price. A dated snapshot (`date`); names match exactly, then by the longest prefix
    (so 'gpt-4o-mini-2024-07-18' uses 'gpt-4o-mini')."""

    def __init__(self, prices: Mapping[str, Mapping[str, float]], *, date: str = "", source: str = "") -> None:
        self.prices: dict[str, Price] = {}
        for model, row in prices.items():
            try:
                self.prices[str(model)] = Price(
                    input=float(row["input"]),
                    output=float(row["output"]),
                    batch_discount=float(row.get("batch_discount", 0.5)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"price table {source or '(given)'}: model {model!r} needs numeric 'input' and 'output' "
                    f"(USD per 1M tokens): {exc}"
                ) from None
        self.date = date
        self.source = source

    @classmethod
    def default(cls) -> PriceTable:
        return cls(DEFAULT_PRICES, date=PRICES_DATE, source="built-in")

    @classmethod
    def load(cls, path: str | Path, *, merge_default: bool = True) -> PriceTable:
        """A JSON or YAML file `{model: {input, output, batch_discount}}`, optionally with a top-level `date`
        and the models under `prices`. Models not in the file keep their default price unless merge_default
        is False."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"price table {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"price table {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # json.JSONDecodeError / yaml.YAMLError
            raise ConfigError(f"price table {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"price table {path}: expected a mapping of model -> prices")
        date = str(data.pop("date", "")) if "date" in data else ""
        rows = data.get("prices", data)
        if not isinstance(rows, dict):
            raise ConfigError(f"price table {path}: 'prices' must be a mapping of model -> prices")
        merged: dict[str, Mapping[str, float]] = dict(DEFAULT_PRICES) if merge_default else {}
        merged.update(rows)
        return cls(merged, date=date or (PRICES_DATE if merge_default else ""), source=str(path))

    def get(self, model: str) -> Price:
        if model in self.prices:
            return self.prices[model]
        matches = [name for name in self.prices if model.startswith(name)]
        if not matches:
            known = ", ".join(sorted(self.prices))
            raise ConfigError(f"no price for model {model!r} (known: {known}); add it to a --prices file")
        return self.prices[max(matches, key=len)]

    def has(self, model: str) -> bool:
        return model in self.prices or any(model.startswith(name) for name in self.prices)


def cost_of(
    usage: Mapping[str, int] | tuple[int, int] | Any,
    model: str,
    price_table: PriceTable | None = None,
    *,
    batch: bool = False,
) -> float:
    """USD for real usage: a `(prompt, completion)` pair, a mapping with `prompt_tokens` /
    `completion_tokens` (or `tokens_in` / `tokens_out`), or a JudgeOutput."""
    if isinstance(usage, tuple):
        tokens_in, tokens_out = usage
    elif isinstance(usage, Mapping):
        tokens_in = int(usage.get("prompt_tokens", usage.get("tokens_in", 0)))
        tokens_out = int(usage.get("completion_tokens", usage.get("tokens_out", 0)))
    else:
        tokens_in, tokens_out = int(usage.tokens_in), int(usage.tokens_out)
    return (price_table or PriceTable.default()).get(model).cost(tokens_in, tokens_out, batch=batch)


# ---------------------------------------------------------------------------------------------- budget


class BudgetExceeded(HardnegError):
    """Raised by a single `judge()` call that the budget does not allow (judge_many skips instead)."""


@dataclass(slots=True)
class Reservation:
    model: str
    usd: float
    batch: bool
    tokens_in: int = 0  # our prompt-token count, compared with the server's after the call


class Budget:
    """A spending cap in USD for one run.

    Before each request the judge reserves its upper-bound cost (prompt tokens + max_tokens at the model's
    price); a request whose reservation would take spent + reserved above the cap is not sent. After the
    response the reservation is replaced by the real cost (`settle`). Thread-safe.

    Prompt tokens are counted with OpenAI's tokenizer, exact for OpenAI models. A server with another tokenizer
    (vLLM, llama.cpp) may count more: each settled call records the ratio of the server's count to ours and
    later bounds are scaled by the largest ratio seen, so only the calls sent before the first answer rely on
    our count.
    """

    def __init__(self, usd: float, price_table: PriceTable | None = None) -> None:
        if usd < 0:
            raise ConfigError(f"budget must be >= 0 USD, got {usd}")
        self.usd = float(usd)
        self.prices = price_table or PriceTable.default()
        self.spent = 0.0  # real cost of finished requests
        self.reserved = 0.0  # upper bounds of requests in flight
        self.requests = 0
        self.refused = 0
        self.possibly_billed = 0  # requests that timed out after they were sent, charged at their upper bound
        self.possibly_billed_usd = 0.0
        self.token_ratio: dict[str, float] = {}  # model -> max(server prompt tokens / our count)
        self._lock = threading.Lock()

    def reserve(self, model: str, tokens_in: int, max_tokens: int, *, batch: bool = False) -> Reservation | None:
        with self._lock:
            scaled = math.ceil(tokens_in * self.token_ratio.get(model, 1.0))
            bound = self.prices.get(model).cost(scaled, max_tokens, batch=batch)
            if self.spent + self.reserved + bound > self.usd:
                self.refused += 1
                return None
            self.reserved += bound
            self.requests += 1
        return Reservation(model, bound, batch, tokens_in)

    def settle(self, reservation: Reservation, tokens_in: int, tokens_out: int) -> float:
        """Replace a reservation by the real cost (0 tokens for a call that failed before billing)."""
        real = self.prices.get(reservation.model).cost(tokens_in, tokens_out, batch=reservation.batch)
        with self._lock:
            self.reserved -= reservation.usd
            self.spent += real
            if reservation.tokens_in > 0 and tokens_in > reservation.tokens_in:
                ratio = tokens_in / reservation.tokens_in
                self.token_ratio[reservation.model] = max(ratio, self.token_ratio.get(reservation.model, 1.0))
        return real

    def charge_possibly_billed(self, model: str, tokens_in: int, tokens_out: int, *, batch: bool = False) -> float:
        """Count a request that got no answer but may have been billed (the client timed out after sending it)
        at its upper bound, so a retry is paid out of what is really left."""
        cost = self.prices.get(model).cost(tokens_in, tokens_out, batch=batch)
        with self._lock:
            self.spent += cost
            self.possibly_billed += 1
            self.possibly_billed_usd += cost
        return cost

    def within_cap(self) -> bool:
        """Spent plus reserved still fits the cap (after possibly-billed requests were charged)."""
        with self._lock:
            return self.spent + self.reserved <= self.usd

    @property
    def remaining(self) -> float:
        return max(0.0, self.usd - self.spent - self.reserved)

    def report(self) -> dict[str, Any]:
        return {
            "budget_usd": self.usd,
            "spent_usd": round(self.spent, 6),
            "remaining_usd": round(self.remaining, 6),
            "requests_sent": self.requests,
            "requests_refused": self.refused,
            "possibly_billed": self.possibly_billed,
            "possibly_billed_usd": round(self.possibly_billed_usd, 6),
        }


# ---------------------------------------------------------------------------------------------- estimate


@dataclass(slots=True)
class StageSpec:
    """What the estimate needs to know about one cascade stage."""

    name: str
    model: str
    template: str = "stage1"
    max_tokens: int = 2048
    max_negatives_per_call: int = 25
    batch: bool = False
    output_tokens: int | None = None  # assumed output per call; default by template
    routing_rate: float | None = None  # share of the previous stage's instances that reach this one
    api: bool = True  # a local judge (embedding, llama.cpp) costs nothing here
    permutations: int = 1  # listwise calls per chunk (seeded orders voted on: position bias)
    kind: str = ""  # the backend; per-pair judges are estimated per negative


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


API_KINDS = {"openai", "openai-batch", "openai-pointwise", "openai-answer"}
# Paid judges that send one request per (query, negative) rather than one per chunk of negatives.
PER_PAIR_KINDS = {"openai-pointwise": 1, "openai-answer": 40}  # kind -> assumed output tokens per call


def stage_specs_from_config(config: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[StageSpec]:
    """Stage specs from a cascade configuration: a mapping with a `stages` list (or the list itself), each
    stage a mapping with a judge kind (`judge` / `kind` / `backend`) and its parameters (in `params` or at
    the stage's top level)."""
    stages = config.get("stages") if isinstance(config, Mapping) else config
    if not isinstance(stages, Sequence) or isinstance(stages, str | bytes) or not stages:
        raise ConfigError("cascade config: expected a non-empty 'stages' list")
    specs = []
    for i, stage in enumerate(stages, start=1):
        if not isinstance(stage, Mapping):
            raise ConfigError(f"cascade config: stage {i} is not a mapping")
        params = dict(stage.get("params") or {})
        for key, value in stage.items():
            if key not in ("params",):
                params.setdefault(key, value)
        kind = str(params.get("judge", params.get("kind", params.get("backend", ""))))
        model = str(params.get("model", kind or "?"))
        specs.append(
            StageSpec(
                name=str(params.get("name", f"stage{i}")),
                model=model,
                template=str(params.get("template", "stage1" if i == 1 else "stage2")),
                max_tokens=int(params.get("max_tokens", 2048)),
                max_negatives_per_call=int(params.get("max_negatives_per_call", 25)),
                batch=kind == "openai-batch" or bool(params.get("batch", False)),
                output_tokens=params.get("output_tokens", PER_PAIR_KINDS.get(kind)),
                routing_rate=params.get("routing_rate"),
                api=kind in API_KINDS,
                permutations=int(params.get("permutations", 1)),
                kind=kind,
            )
        )
    return specs


def _pair_messages(kind: str, instance: Any, docid: str) -> list[dict[str, str]]:
    """The messages a per-pair judge sends for one negative (default passage budget)."""
    if kind == "openai-answer":
        return answer_messages(instance, instance.negative(docid), 1200)
    system, _ = POINTWISE_PROMPTS["yes_no"]
    user = user_prefix(instance, "yes_no", 1500) + candidate_text(instance.negative(docid), 1500)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def load_stage_specs(path: str | Path) -> list[StageSpec]:
    """Stage specs from a cascade YAML (or JSON) file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping | list):
        raise ConfigError(f"{path}: expected a mapping with a 'stages' list")
    try:
        return stage_specs_from_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


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

    source = read_instances(instances) if isinstance(instances, str | Path) else instances
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
