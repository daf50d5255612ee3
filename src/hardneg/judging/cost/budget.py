"""The live budget: a spending cap in USD enforced while judge requests are made."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from hardneg.errors import ConfigError, HardnegError
from hardneg.judging.cost.prices import PriceTable


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
