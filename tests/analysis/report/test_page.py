"""`render`: the sections with something to show, in order; a judge-eval leads; the page escapes its title."""

from __future__ import annotations

import re

from hardneg.analysis.report.collect import ReportData
from hardneg.analysis.report.page import render

FUNNEL = [{"step": "final", "stage": None, "judged": 2, "ok": 2, "failed": 0, "flagged": 1}]
SUBSETS = [{"subset": "(all)", "judged": 2, "flagged": 1, "failed": 0, "flagged_rate": 0.5, "better_rate": 0.5,
            "flags": 1}]  # fmt: skip
PAIRS = [{"kind": "flagged", "query_id": "q", "docid": "d", "query": "?", "positive": "+", "negative": "-",
          "stages": [], "grade": None}]  # fmt: skip
AGREEMENT = {"a": "stage:1", "b": "stage:2", "error": "nothing in common"}
EVAL = {"testbed": {}, "stages": [], "shared": None, "target": None}


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', page)


def _data(**fields: object) -> ReportData:
    base: dict[str, object] = {"store": "s.db", "funnel": FUNNEL, "subsets": SUBSETS, "pairs": PAIRS}
    return ReportData(**{**base, **fields})  # type: ignore[arg-type]


def test_a_store_page_in_order() -> None:
    page = render(_data(agreements=[AGREEMENT], experiment={"run": {"x": 1.0}}))
    assert _sections(page) == ["funnel", "subsets", "agreement", "pairs", "results"]  # no tokens: no cost
    nav = re.findall(r'<a href="#([a-z]+)">', page)
    assert nav == _sections(page)
    assert "store s.db · generated " in page


def test_a_judge_eval_leads_with_its_pairs() -> None:
    page = render(_data(judge_eval=EVAL))
    assert _sections(page) == ["judges", "pairs", "funnel", "subsets"]


def test_a_store_without_verdicts_shows_nothing_of_its_own() -> None:
    empty = [{**FUNNEL[0], "judged": 0}]
    assert _sections(render(_data(funnel=empty, experiment={"run": {"x": 1.0}}))) == []
    assert _sections(render(_data(funnel=[], judge_eval=EVAL))) == ["judges", "pairs"]


def test_title_and_store_line_are_escaped() -> None:
    page = render(ReportData(store=""), title="a <b> & c")
    assert "<title>a &lt;b&gt; &amp; c</title>" in page and "no judgment store · generated" in page
