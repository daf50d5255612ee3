"""The page: the sections with something to show, in order, in the template (`template.PAGE`)."""

from __future__ import annotations

import datetime as _dt

from hardneg.analysis.report.collect import ReportData
from hardneg.analysis.report.judges import judges_section
from hardneg.analysis.report.markup import Section, esc
from hardneg.analysis.report.sections import (
    agreement_section,
    cost_section,
    flagged_section,
    funnel_section,
    pairs_section,
    results_section,
)
from hardneg.analysis.report.template import PAGE


def render(data: ReportData, *, title: str = "hardneg report") -> str:
    """The HTML page for `data`: with a judge-eval, "Judges against people" first; sections with nothing to show
    (no tokens recorded, no two stages to compare, no verdicts) are left out."""
    pairs = pairs_section(data.pairs)
    sections: list[Section | None] = []
    if data.judge_eval:
        sections += [judges_section(data.judge_eval, data.judge_eval_plot), pairs]
    if any(s["judged"] for s in data.funnel):  # a store without verdicts has nothing more to show
        sections += [
            funnel_section(data.funnel),
            flagged_section(data.subsets, data.flags_histogram),
            cost_section(data.stages, data.price_note),
            agreement_section(data.agreements),
            None if data.judge_eval else pairs,  # a judge-eval page shows them after its judges
            results_section(data.experiment),
        ]
    return _page(data.store, [s for s in sections if s is not None], title)


def _page(store: str, sections: list[Section], title: str) -> str:
    nav = "".join(f'<a href="#{key}">{esc(name)}</a>' for key, name, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{esc(name)}</h2>{content}</section>' for key, name, content in sections)
    source = f"store {store}" if store else "no judgment store"
    generated = f"{source} · generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
    return PAGE.substitute(title=esc(title), generated=esc(generated), nav=nav, body=body)
