"""The sections of a judgment store's page, one function each; a section with nothing to show is None."""

from __future__ import annotations

from typing import Any

from hardneg.analysis.report.markup import (
    Section,
    confusion_table,
    esc,
    header_row,
    img,
    long_text,
    num,
    plots,
    table,
)
from hardneg.analysis.report.plots import plot_funnel, plot_histogram, plot_results, plot_subsets

RESULTS_PLOTTED = 24  # columns of the experiment drawn (the table shows them all)


def funnel_section(funnel: list[dict[str, Any]]) -> Section:
    rows = [
        [s["step"], s["judged"], s["ok"], s["failed"], s["flagged"], s["flagged"] / s["ok"] if s["ok"] else None]
        for s in funnel
    ]
    body = table(["step", "judged", "ok", "failed", "flagged", "flagged / ok"], rows, "funnel-table")
    body += plots(img(plot_funnel(funnel), "cascade funnel", "instances per stage"))
    return Section("funnel", "Cascade funnel", body)


def flagged_section(subsets: list[dict[str, Any]], histogram: dict[str, int]) -> Section:
    """Flagged rates per subset, and flags per instance when any instance is flagged."""
    rows = [
        [s["subset"], s["judged"], s["flagged"], s["flagged_rate"], s["better_rate"], s["failed"], s["flags"]]
        for s in subsets
    ]
    body = table(
        ["subset", "judged", "flagged", "flagged rate", "<better> rate", "failed", "flags"], rows, "subset-table"
    )
    figures = [img(plot_subsets(subsets), "flagged rate per subset", "final verdicts")]
    if histogram:
        figures.append(img(plot_histogram(histogram), "flags per instance", "final verdicts"))
    body += plots(*figures)
    return Section("subsets", "Flagged instances", body)


COST_COLUMNS = {
    "stage": "stage",
    "judge_name": "judge",
    "model": "model",
    "records": "records",
    "tokens_in": "tokens in",
    "tokens_out": "tokens out",
    "latency_s": "latency s",
    "cost_usd": "cost USD",
}


def cost_section(stages: list[dict[str, Any]], price_note: str) -> Section | None:
    """Tokens, latency and cost per stage; None when no stage recorded tokens (imported verdicts)."""
    if not any(s["tokens_in"] or s["tokens_out"] or s["cost_usd"] for s in stages):
        return None
    rows = [[s[key] for key in COST_COLUMNS] for s in stages]
    body = table(list(COST_COLUMNS.values()), rows, "cost-table")
    body += f'<p class="note">{esc(price_note)}; "—": no tokens recorded (imported verdicts) or no price.</p>'
    return Section("cost", "Tokens and cost", body)


def _agreement_html(ag: dict[str, Any]) -> str:
    if "error" in ag:
        return f"<h3>{esc(ag['a'])} vs {esc(ag['b'])}</h3><p class='note'>{esc(ag['error'])}</p>"
    b = ag["binary"]
    html = f"<h3>{esc(ag['a'])} vs {esc(ag['b'])} (reference)</h3>"
    html += table(
        ["pairs", "queries", "kappa", "precision", "recall", "F1", "relevant A", "relevant B"],
        [[ag["pairs"], ag["queries"], b["kappa"], b["precision"], b["recall"], b["f1"], b["relevant_a"],
          b["relevant_b"]]],
    )  # fmt: skip
    html += confusion_table(b)
    t = ag.get("three_class")
    if t:
        html += (
            f"<p>3-class kappa (better / worse / none): {num(t['kappa'])}; better-only kappa: "
            f"{num(t['kappa_better_only'])}</p>"
        )
        html += confusion_table(t)
    return html


def agreement_section(agreements: list[dict[str, Any]]) -> Section | None:
    """Every agreement (or why it could not be computed); None without any."""
    if not agreements:
        return None
    return Section("agreement", "Agreement", "".join(_agreement_html(ag) for ag in agreements))


PAIR_KINDS = (("flagged", "Flagged pairs (a seeded sample)"), ("close", "Unflagged but close"))


def pairs_section(pairs: list[dict[str, Any]]) -> Section | None:
    """The pairs to read, flagged then close, with a human grade column when any pair has a grade."""
    if not pairs:
        return None
    with_grades = any(p["grade"] is not None for p in pairs)
    head = ["query", "positive", "negative", "stages (score / verdict)"] + (["human grade"] if with_grades else [])
    parts = []
    for kind, title in PAIR_KINDS:
        rows = [p for p in pairs if p["kind"] == kind]
        if not rows:
            continue
        body = []
        for p in rows:
            stages = "<br>".join(f"{esc(s['stage'])}: {num(s['score'])} / {esc(s['verdict'])}" for s in p["stages"])
            cells = [
                f"<b>{esc(p['query_id'])}</b> {long_text(p['query'])}",
                long_text(p["positive"]),
                f"<b>{esc(p['docid'])}</b> {long_text(p['negative'])}",
                stages,
            ]
            if with_grades:
                cells.append(num(p["grade"]))
            body.append("<tr>" + "".join(f"<td class='pair'>{c}</td>" for c in cells) + "</tr>")
        parts.append(f"<h3>{esc(title)}</h3><table class='pairs'><thead><tr>{header_row(head)}</tr></thead>"
                     f"<tbody>{''.join(body)}</tbody></table>")  # fmt: skip
    return Section("pairs", "Pairs to look at", "".join(parts))


def results_section(experiment: dict[str, dict[str, float]] | None) -> Section | None:
    """The experiment's numbers per run, and a plot of the first columns; None without an experiment."""
    if not experiment:
        return None
    columns = sorted({c for values in experiment.values() for c in values})
    rows = [[run, *[values.get(c) for c in columns]] for run, values in experiment.items()]
    body = table(["run", *columns], rows, "results-table")
    shown = columns[:RESULTS_PLOTTED]
    body += plots(img(plot_results(experiment, shown), "experiment results", "numeric results per run"))
    return Section("results", "Experiment results", body)
