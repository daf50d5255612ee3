"""Routing rules (any, better, score>=T, top fraction) and verdicts derived from scores (the fused-flag gate)."""

from __future__ import annotations

from typing import Any

import pytest

from hardneg.judging.cascade import parse_config, routed_on


def test_routing_rules() -> None:
    from hardneg.judging.store import Judgment

    def rec(better: list[str], worse: list[str], scores: dict[str, float] | None = None) -> Judgment:
        return Judgment(
            "q",
            1,
            "h",
            "s",
            "b",
            "m",
            {},
            None,
            ["a", "b", "c", "d"],
            None,
            None,
            0,
            0,
            0.0,
            "ok",
            "",
            better,
            worse,
            scores,
        )

    def stage(**kw: Any):
        base = {"name": "s", "backend": "lexical", "t_better": 0.5}
        return parse_config({"stages": [{**base, **kw}]}).stages[0]

    assert routed_on(stage(), rec([], [])) is None
    assert routed_on(stage(), rec(["c"], ["a"])) == ["c", "a"]
    assert routed_on(stage(route="better"), rec([], ["a"])) is None
    assert routed_on(stage(route="better"), rec(["b"], ["a"])) == ["b"]
    scores = {"a": 0.1, "b": 0.7, "c": 0.4, "d": 0.2}
    assert routed_on(stage(route="score>=0.35"), rec([], [], scores)) == ["b", "c"]
    assert routed_on(stage(route="score>=0.8"), rec([], [], scores)) is None
    assert routed_on(stage(route="score>=0", route_top=0.5), rec([], [], scores)) == ["b", "c"]
    assert routed_on(stage(route="score>=0", route_top=0.5, route_min_score=0.5), rec([], [], scores)) == ["b"]
    failed = rec(["a"], [])
    failed.status = "failed"
    assert routed_on(stage(), failed) is None


def test_min_raw_score_gates_fused_flags() -> None:
    pytest.importorskip("hardneg.retrieval.fusion")
    from hardneg.judging.cascade import derive_verdict
    from hardneg.judging.store import Judgment

    stage = parse_config(
        {
            "stages": [
                {"name": "a", "backend": "lexical", "t_better": 0.5},
                {
                    "name": "b",
                    "backend": "lexical",
                    "candidates": "routed",
                    "fuse": "rank-average",
                    "t_better": 0.9,
                    "t_worse": 0.6,
                    "min_raw_score": 0.5,
                },
            ]
        }
    ).stages[1]
    earlier = [{"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.0}]

    def record(scores: dict[str, float]) -> Judgment:
        return Judgment("q", 2, "h", "b", "lexical", "m", {}, None, list(scores), None, None, 0, 0, 0.0, "ok", "",
                        None, None, scores)  # fmt: skip

    # the LLM says no to everything: ranks alone would flag "a", the gate does not
    out = derive_verdict(stage, 2, "v", record({"a": 0.2, "b": 0.1}), ["a", "b"], earlier)
    assert out.status == "ok" and out.better == [] and out.worse == []
    assert out.raw_scores == {"a": 0.2, "b": 0.1} and out.scores["a"] > out.scores["b"]  # type: ignore[index]
    out = derive_verdict(stage, 2, "v", record({"a": 0.7, "b": 0.1}), ["a", "b"], earlier)
    assert out.better == ["a"] and out.worse == []
    # a record scoring fewer negatives than routed here is not a clean verdict
    out = derive_verdict(stage, 2, "v", record({"a": 0.7}), ["a", "b"], earlier)
    assert out.status == "failed" and "no score for 1 routed negative" in out.reason
