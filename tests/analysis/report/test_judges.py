"""The "Judges against people" section from a judge-eval's dict: judges named, cuts, coverage, shared pairs."""

from __future__ import annotations

import re
from typing import Any

from hardneg.analysis.report.judges import judges_section

METRICS = {"pairs": 40, "flagged": 6, "precision": 0.5, "recall": 0.75, "f1": 0.6, "kappa": 0.4}


def _cascade(stage: Any, **extra: Any) -> dict[str, Any]:
    return {"stage": stage, "name": "emb", "config": "cos", "metrics": METRICS, "roc_auc": 0.8, "pr_auc": 0.6,
            **extra}  # fmt: skip


EXTERNAL = {"stage": "external", "name": "people.qrels", "config": "people", "source": "people.qrels",
            "metrics": None, "roc_auc": None, "pr_auc": None,
            "coverage": {"found": 30, "pairs": 40, "missing": 10}}  # fmt: skip
CARD = {"dataset": "toy <set>", "queries": 4, "negatives_judged": 40, "false_negatives": 8, "min_grade": 1,
        "base_rate": 0.2}  # fmt: skip


def _rows(body: str, table_id: str) -> list[list[str]]:
    found = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', body, re.S)
    assert found is not None, body
    return [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", found.group(1))]


def test_judges_coverage_and_the_plot() -> None:
    ev = {"testbed": CARD, "stages": [_cascade(1), _cascade("final"), EXTERNAL], "shared": None, "target": None}
    key, title, body = judges_section(ev, "QUJD")
    assert (key, title) == ("judges", "Judges against people")
    assert body.startswith("<p>toy &lt;set&gt;: 4 queries, 40 negatives graded by people, 8 of them")
    assert "base rate 0.20" in body
    assert _rows(body, "judge-eval-table") == [
        ["cos", "1: emb", "40 / 40", "6", "0.500", "0.750", "0.600", "0.400", "0.800", "0.600"],
        ["cos", "final", "40 / 40", "6", "0.500", "0.750", "0.600", "0.400", "0.800", "0.600"],
        ["people (people.qrels)", "file", "30 / 40", "—", "—", "—", "—", "—", "—", "—"],
    ]
    assert "people (people.qrels) lacks 10 of the 40 testbed pairs: its figures above are on the 30" in body
    assert "The cut meeting" not in body and "cut-table" not in body and "every judge covers" not in body
    assert body.endswith("</figcaption></figure></div>")  # the plot comes last
    assert '<div class="plots"><figure><img alt="precision and recall" src="data:image/png;base64,QUJD">' in body
    assert "data:image" not in judges_section(ev, "").body  # no plot


def test_cuts_and_the_shared_pairs() -> None:
    held = {"queries": 2, "precision": 0.9, "recall": 0.5, "kappa": 0.6}
    reached = {"target": "precision>=0.7", "reachable": True, "threshold": 0.61234, "tune": {"queries": 2},
               "held_out": held}  # fmt: skip
    missed = {"target": "precision>=0.7", "reachable": False}
    stages = [_cascade(1, cut=reached), {**EXTERNAL, "cut": missed}]
    shared = {"pairs": 30, "of": 40, "false_negatives": 6, "left_out_routed": ["cos / 2: llm"], "stages": stages}
    ev = {"testbed": CARD, "stages": stages, "shared": shared, "target": "precision>=0.7"}
    body = judges_section(ev, "").body
    assert "<h3>The cut meeting precision&gt;=0.7</h3>" in body
    assert _rows(body, "cut-table") == [
        ["cos / 1: emb", "precision&gt;=0.7", "score &gt;= 0.6123", "2", "2", "0.900", "0.500", "0.600"],
        ["people (people.qrels)", "precision&gt;=0.7", "not reached on the tuning half", "—", "—", "—", "—", "—"],
    ]
    assert "<h3>On the pairs every judge covers (30 of 40, 6 false negatives)</h3>" in body
    assert "(stages that judge only routed pairs left out: cos / 2: llm)." in body
    assert len(_rows(body, "judge-eval-shared-table")) == 2
    shared["left_out_routed"] = []
    assert "each is measured again on the pairs all of them cover.</p>" in judges_section(ev, "").body
