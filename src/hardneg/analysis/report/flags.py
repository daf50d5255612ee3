"""What a final verdict flags on the page: its `better` negatives, and its `worse` ones too with `tags="both"`."""

from __future__ import annotations

from typing import Any

TAGS = ("better", "both")


def flagged_docids(verdict: Any, tags: str) -> set[str]:
    """The negatives `verdict` flags under `tags` (whatever its status: callers look at ok verdicts only)."""
    return set(verdict.better) | (set(verdict.worse) if tags == "both" else set())


def flag_count(verdict: Any, tags: str) -> int:
    """How many negatives an ok verdict flags; a failed verdict flags none."""
    return len(flagged_docids(verdict, tags)) if verdict.status == "ok" else 0
