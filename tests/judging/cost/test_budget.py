"""The budget: requests that would pass the cap are refused before they are sent."""

from __future__ import annotations

from hardneg.judging.cost.budget import Budget
from hardneg.judging.cost.prices import PriceTable


def test_budget() -> None:
    budget = Budget(0.01, PriceTable({"m": {"input": 1.0, "output": 1.0}}))  # 10,000 tokens' worth
    first = budget.reserve("m", 3000, 2000)
    assert first is not None
    assert budget.reserve("m", 3000, 2000) is not None
    assert budget.reserve("m", 1, 1) is None  # would exceed: refused, not sent
    budget.settle(first, 3000, 100)  # the real answer was short: room again
    assert budget.reserve("m", 1000, 500) is not None
    assert budget.report()["requests_refused"] == 1
