"""Judge outputs and call configs for the judgment-store tests (tests/judging/store): what a listwise API judge
returns, ok or failed, under two call configs, and a store's records of two stages."""

from __future__ import annotations

from typing import Any

from hardneg.judging.verdicts import JudgeOutput

CFG = {"backend": "openai", "model": "gpt-4o-mini", "template": "abc"}
CFG2 = {"backend": "openai", "model": "gpt-4o", "template": "abc"}


def ok(better: list[str], worse: list[str], docids: list[str] | None = None) -> JudgeOutput:
    return JudgeOutput(
        docids=docids or ["a", "b", "c"],
        better=better,
        worse=worse,
        raw_response="<verdict>...</verdict>",
        finish_reason="stop",
        tokens_in=100,
        tokens_out=20,
        latency_s=0.5,
        template_hash="abc",
    )


def failed(reason: str = "HTTP 500") -> JudgeOutput:
    return JudgeOutput(docids=["a", "b", "c"], status="failed", reason=reason)


def put_two_stages(store: Any) -> None:
    """q1, q2, q3 judged by stage 1 ("mini", CFG; q1 and q3 flagged), q1 and q3 by stage 2 ("big", CFG2; q3
    failed)."""
    store.put("q1", 1, "mini", CFG, ok([], ["a"]))
    store.put("q2", 1, "mini", CFG, ok([], []))
    store.put("q3", 1, "mini", CFG, ok(["c"], []))
    store.put("q1", 2, "big", CFG2, ok(["b"], []))
    store.put("q3", 2, "big", CFG2, failed("rate limited"))
