"""The "Judges against people" section of a judge-eval page: every judge's figures against the human grades, the
cuts meeting a --target, the figures again on the pairs every judge covers, and the precision/recall plot."""

from __future__ import annotations

from typing import Any

from hardneg.analysis.report.markup import Section, esc, img, num, plots, table

JUDGE_HEAD = ["judge", "stage", "pairs covered", "flagged", "precision", "recall", "F1", "kappa", "ROC-AUC", "PR-AUC"]
CUT_HEAD = ["judge", "target", "cut", "tuning queries", "held-out queries", "held-out precision", "held-out recall",
            "held-out kappa"]  # fmt: skip


def _external(s: dict[str, Any]) -> bool:
    return s["stage"] == "external"  # published judgments read from a file, not a cascade's stage


def _stage_name(s: dict[str, Any]) -> str:
    return "final" if s["stage"] == "final" else f"{s['stage']}: {s['name']}"


def _judge_name(s: dict[str, Any], *, with_stage: bool = False) -> str:
    """An external judge by its name and source, a cascade's by its config (and stage, with `with_stage`)."""
    if _external(s):
        return f"{s['config']} ({s['name']})"
    return f"{s['config']} / {_stage_name(s)}" if with_stage else s["config"]


def _judge_rows(stages: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for s in stages:
        m = s["metrics"] or {}
        cov = s.get("coverage") or {}
        stage = "file" if _external(s) else _stage_name(s)
        rows.append([
            _judge_name(s), stage, f"{cov.get('found', m.get('pairs'))} / {cov.get('pairs', m.get('pairs'))}",
            m.get("flagged"), m.get("precision"), m.get("recall"), m.get("f1"), m.get("kappa"), s["roc_auc"],
            s["pr_auc"],
        ])  # fmt: skip
    return rows


def _cut_rows(stages: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for s in stages:
        cut = s["cut"]
        judge = _judge_name(s, with_stage=True)
        if not cut["reachable"]:
            rows.append([judge, cut["target"], "not reached on the tuning half", None, None, None, None, None])
            continue
        held = cut["held_out"]
        rows.append([
            judge, cut["target"], f"score >= {cut['threshold']:.4f}", cut["tune"]["queries"], held["queries"],
            held["precision"], held["recall"], held["kappa"],
        ])  # fmt: skip
    return rows


def judges_section(ev: dict[str, Any], plot: str) -> Section:
    """The "Judges against people" section of `JudgeEvalReport.to_dict()` `ev`: every judge, the --target cuts,
    the shared pairs, and `plot` (base64 PNG; none: no plot)."""
    card = ev["testbed"]
    body = (
        f"<p>{esc(card.get('dataset'))}: {esc(card.get('queries'))} queries, {esc(card.get('negatives_judged'))} "
        f"negatives graded by people, {esc(card.get('false_negatives'))} of them false negatives (human grade &ge; "
        f"{esc(card.get('min_grade'))}; base rate {num(card.get('base_rate'), 2)}). Each judge is measured on the "
        "labelled pairs it covers; a stage after the first judges only the pairs routed to it. Precision, recall, "
        "F1 and kappa are of the judge's flags (a qrels file: grade at or above its cut); ROC-AUC and PR-AUC of its "
        "raw scores.</p>"
    )
    body += table(JUDGE_HEAD, _judge_rows(ev["stages"]), "judge-eval-table")
    for s in ev["stages"]:
        cov = s.get("coverage") or {}
        if _external(s) and cov.get("missing"):
            body += (
                f"<p class='note'>{esc(s['config'])} ({esc(s['source'])}) lacks {cov['missing']} of the "
                f"{cov['pairs']} testbed pairs: its figures above are on the {cov['found']} it covers.</p>"
            )
    cuts = [s for s in ev["stages"] if s.get("cut")]
    if cuts:
        body += (
            f"<h3>The cut meeting {esc(ev.get('target'))}</h3><p class='note'>Chosen on one seeded half of the "
            "queries (the same half for every judge), measured on the other half.</p>"
        )
        body += table(CUT_HEAD, _cut_rows(cuts), "cut-table")
    shared = ev.get("shared")
    if shared:
        left_out = shared["left_out_routed"]
        body += (
            f"<h3>On the pairs every judge covers ({shared['pairs']} of {shared['of']}, "
            f"{shared['false_negatives']} false negatives)</h3><p class='note'>The judges cover different pairs, so "
            "each is measured again on the pairs all of them cover"
            + (f" (stages that judge only routed pairs left out: {esc(', '.join(left_out))})" if left_out else "")
            + ".</p>"
        )
        body += table(JUDGE_HEAD, _judge_rows(shared["stages"]), "judge-eval-shared-table")
    if plot:
        caption = (
            "precision against recall on the same pairs per panel; a curve: a judge's raw scores; a point: its flags"
        )
        body += plots(img(plot, "precision and recall", caption))
    return Section("judges", "Judges against people", body)
