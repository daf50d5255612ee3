"""The sections of a store's page: what each shows, and None where there is nothing to show."""

from __future__ import annotations

import re

from hardneg.analysis.report.sections import (
    agreement_section,
    cost_section,
    flagged_section,
    funnel_section,
    pairs_section,
    results_section,
)

FUNNEL = [
    {"step": "stage 1", "stage": 1, "judged": 4, "ok": 4, "failed": 0, "flagged": 2},
    {"step": "final", "stage": None, "judged": 4, "ok": 0, "failed": 4, "flagged": 0},
]


def _cells(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found is not None, html
    return re.findall(r"<td>([^<]*)</td>", found.group(1))


def _images(html: str) -> int:
    return html.count("data:image/png;base64,")


def test_funnel() -> None:
    key, title, body = funnel_section(FUNNEL)
    assert (key, title) == ("funnel", "Cascade funnel")
    assert _cells(body, "funnel-table") == ["stage 1", "4", "4", "0", "2", "0.500", "final", "4", "0", "4", "0", "—"]
    assert _images(body) == 1


def test_flagged_instances_plot_the_histogram_only_when_any_is_flagged() -> None:
    subsets = [{"subset": "<a>", "judged": 4, "flagged": 2, "failed": 0, "flagged_rate": 0.5, "better_rate": 0.25,
                "flags": 3}]  # fmt: skip
    section = flagged_section(subsets, {"1": 1, "2": 1})
    assert section.key == "subsets" and _cells(section.body, "subset-table")[:4] == ["&lt;a&gt;", "4", "2", "0.500"]
    assert _images(section.body) == 2
    assert _images(flagged_section(subsets, {}).body) == 1


def _stage(**tokens: object) -> dict[str, object]:
    row = {"stage": 1, "judge_name": "mini", "model": "gpt-4o-mini", "records": 3, "tokens_in": None,
           "tokens_out": None, "latency_s": None, "cost_usd": None}  # fmt: skip
    return {**row, **tokens}


def test_cost_only_where_tokens_were_recorded() -> None:
    assert cost_section([_stage(), _stage(stage=2)], "note") is None  # imported verdicts
    section = cost_section([_stage(tokens_in=100, tokens_out=20, latency_s=1.5, cost_usd=0.25), _stage()], "n & p")
    assert section is not None and section.title == "Tokens and cost"
    assert _cells(section.body, "cost-table")[:8] == ["1", "mini", "gpt-4o-mini", "3", "100", "20", "1.500", "0.250"]
    assert '<p class="note">n &amp; p;' in section.body


def _agreement(three: bool) -> dict[str, object]:
    binary = {"kappa": 0.5, "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "relevant_a": 1, "relevant_b": 2,
              "labels": ["relevant", "not"], "confusion": [[1, 1], [0, 8]]}  # fmt: skip
    three_class = {"kappa": 0.25, "kappa_better_only": 0.75, "labels": ["better", "worse", "none"],
                   "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 8]]}  # fmt: skip
    return {"a": "stage:1", "b": "qrels:x", "pairs": 10, "queries": 2, "binary": binary,
            "three_class": three_class if three else None}  # fmt: skip


def test_agreements_with_their_confusions_and_errors() -> None:
    assert agreement_section([]) is None
    section = agreement_section([_agreement(False), _agreement(True), {"a": "x", "b": "y", "error": "no <labels>"}])
    assert section is not None and section.key == "agreement"
    body = section.body
    assert body.count("<h3>stage:1 vs qrels:x (reference)</h3>") == 2
    assert body.count("<table>") == 2 + 3  # stats and binary confusion each, and the 3-class confusion once
    assert "3-class kappa (better / worse / none): 0.250; better-only kappa: 0.750" in body
    assert body.endswith("<h3>x vs y</h3><p class='note'>no &lt;labels&gt;</p>")


def _pair(kind: str, grade: int | None) -> dict[str, object]:
    return {"kind": kind, "query_id": "q<1>", "docid": "d1", "query": "what?", "positive": "yes", "negative": "<no>",
            "stages": [{"stage": 1, "score": 0.5, "verdict": "better"}], "grade": grade}  # fmt: skip


def test_pairs_flagged_first_with_a_grade_column_when_graded() -> None:
    assert pairs_section([]) is None
    section = pairs_section([_pair("close", None), _pair("flagged", None)])
    assert section is not None and section.title == "Pairs to look at"
    body = section.body
    assert body.index("Flagged pairs (a seeded sample)") < body.index("Unflagged but close")
    assert "human grade" not in body and "<b>q&lt;1&gt;</b>" in body and "&lt;no&gt;" in body
    assert "1: 0.500 / better" in body
    graded = pairs_section([_pair("close", 2), _pair("close", None)])
    assert graded is not None and "<th>human grade</th>" in graded.body and "Flagged pairs" not in graded.body
    assert graded.body.count("<td class='pair'>2</td>") == 1 and graded.body.count("<td class='pair'>—</td>") == 1


def test_results_table_and_plot() -> None:
    assert results_section(None) is None and results_section({}) is None
    section = results_section({"b": {"y": 0.5}, "a": {"x": 1.0, "y": 0.25}})
    assert section is not None and section.key == "results" and _images(section.body) == 1
    assert _cells(section.body, "results-table") == ["b", "—", "0.500", "a", "1.000", "0.250"]  # columns sorted
