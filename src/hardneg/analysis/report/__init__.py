"""`hardneg report`: one self-contained HTML page about a judgment store (and optionally an experiment).

The page needs no server: CSS is inline and plots are base64 PNGs drawn with matplotlib (the `report` extra).
Sections: the cascade funnel per stage, flagged rate per subset (subsets come from an instances file, when
given), flags per instance, tokens and cost per stage (cost where `hardneg.judging.cost` has a price for the
model), agreement between stages (and with any extra label sources), and experiment results (`results.json`).

`results.json` is read loosely: `{run: {metric: value}}` or `{run: {dataset: {metric: value}}}` (optionally under a
top-level `results` key); every numeric leaf becomes a column.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.analysis.agreement import compare
from hardneg.analysis.judge_eval import precision_recall_figure
from hardneg.analysis.labels import load_labels
from hardneg.analysis.report.template import PAGE
from hardneg.data.atomic import atomic_path, check_target
from hardneg.data.io import read_instances
from hardneg.data.source import as_source
from hardneg.errors import ConfigError, InputError
from hardneg.judging.cost import PriceTable
from hardneg.judging.store import JudgmentStore


@dataclass
class ReportData:
    """Everything the page shows, as plain numbers (also what `--json` prints)."""

    store: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    funnel: list[dict[str, Any]] = field(default_factory=list)
    subsets: list[dict[str, Any]] = field(default_factory=list)
    flags_histogram: dict[str, int] = field(default_factory=dict)
    agreements: list[dict[str, Any]] = field(default_factory=list)
    experiment: dict[str, dict[str, float]] | None = None
    price_note: str = ""
    pairs: list[dict[str, Any]] = field(default_factory=list)  # flagged and unflagged-but-close pairs to read
    judge_eval: dict[str, Any] | None = None  # `JudgeEvalReport.to_dict()` when the page shows one
    judge_eval_plot: str = ""  # its precision/recall plot, base64 PNG

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "stages": self.stages,
            "funnel": self.funnel,
            "subsets": self.subsets,
            "flags_histogram": self.flags_histogram,
            "agreements": self.agreements,
            "experiment": self.experiment,
            "price_note": self.price_note,
            "pairs": self.pairs,
            "judge_eval": self.judge_eval,
        }


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}/{key}" if prefix else str(key), inner, out)


def read_results(path: str | Path) -> dict[str, dict[str, float]]:
    """`results.json` (or a folder holding it) -> {run: {column: value}} with every numeric leaf."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise InputError(path, None, "-", "no such file (expected an experiment folder with results.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, "-", f"broken JSON: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        data = data["results"]
    if not isinstance(data, dict):
        raise InputError(path, None, "-", "expected an object {run: {metric: value}}")
    runs: dict[str, dict[str, float]] = {}
    for run, value in data.items():
        flat: dict[str, float] = {}
        _flatten("", value, flat)
        if flat:
            runs[str(run)] = flat
    if not runs:
        raise InputError(path, None, "-", "no numeric results found")
    return runs


def collect(
    store: Any,
    *,
    instances: str | Path | None = None,
    experiment: str | Path | None = None,
    extra_agreements: Sequence[tuple[str, str]] = (),
    tags: str = "both",
    allow_partial: bool = False,
    grades: dict[tuple[str, str], int] | None = None,
) -> ReportData:
    """Gather the numbers of the page from an open `JudgmentStore` (`allow_partial`: see `final_verdicts`).

    With `instances`, the page also shows pairs to read (`collect_pairs`), with their human `grades` if given."""

    data = ReportData(store=str(getattr(store, "path", "")))
    prices = PriceTable.default()
    data.price_note = (
        f"prices: hardneg.judging.cost built-in table ({prices.date}); USD from the tokens recorded"
        if prices is not None
        else "no price table available"
    )
    for row in store.stage_summary():
        row = dict(row)
        row["cost_usd"] = None
        if prices is not None and (row["tokens_in"] or row["tokens_out"]) and prices.has(str(row["model"])):
            row["cost_usd"] = prices.get(str(row["model"])).cost(int(row["tokens_in"]), int(row["tokens_out"]))
        data.stages.append(row)

    # funnel: per stage, instances judged (any config), ok, flagged; then the final verdicts
    verdicts = store.final_verdicts(allow_partial=allow_partial)
    per_stage: dict[int, dict[str, int]] = {}
    for row in data.stages:
        entry = per_stage.setdefault(int(row["stage"]), {"judged": 0, "ok": 0, "failed": 0, "flagged": 0})
        entry["judged"] += int(row["records"])
        entry["ok"] += int(row["ok"] or 0)
        entry["failed"] += int(row["parse_error"] or 0) + int(row["failed"] or 0)
        entry["flagged"] += int(row["flagged"] or 0)
    for stage in sorted(per_stage):
        data.funnel.append({"step": f"stage {stage}", "stage": stage, **per_stage[stage]})

    def flags_of(v: Any) -> int:
        return len(set(v.better) | (set(v.worse) if tags == "both" else set()))

    final_flagged = sum(1 for v in verdicts.values() if v.status == "ok" and flags_of(v) > 0)
    final_failed = sum(1 for v in verdicts.values() if v.status != "ok")
    data.funnel.append(
        {
            "step": "final",
            "stage": None,
            "judged": len(verdicts),
            "ok": len(verdicts) - final_failed,
            "failed": final_failed,
            "flagged": final_flagged,
        }
    )

    histogram: Counter[str] = Counter()
    for v in verdicts.values():
        n = flags_of(v) if v.status == "ok" else 0
        if n:
            histogram[str(n) if n <= 8 else ">8"] += 1
    data.flags_histogram = {k: histogram[k] for k in [*map(str, range(1, 9)), ">8"] if histogram[k]}

    subset_of: dict[str, str] = {}
    if instances is not None:
        subset_of = {inst.query_id: inst.subset or "(none)" for inst in read_instances(instances)}
    groups: dict[str, Counter[str]] = {}
    for qid, v in verdicts.items():
        counter = groups.setdefault(subset_of.get(qid, "(all)" if not subset_of else "(not in file)"), Counter())
        counter["judged"] += 1
        if v.status != "ok":
            counter["failed"] += 1
        elif flags_of(v):
            counter["flagged"] += 1
            counter["flags"] += flags_of(v)
        if v.status == "ok" and v.better:
            counter["better"] += 1
    for name in sorted(groups):
        c = groups[name]
        data.subsets.append(
            {
                "subset": name,
                "judged": c["judged"],
                "flagged": c["flagged"],
                "failed": c["failed"],
                "flagged_rate": c["flagged"] / c["judged"] if c["judged"] else 0.0,
                "better_rate": c["better"] / c["judged"] if c["judged"] else 0.0,
                "flags": c["flags"],
            }
        )

    # agreement between every two listwise stages, then any extra sources asked for
    pairs: list[tuple[str, str]] = []
    listwise = sorted({int(r["stage"]) for r in data.stages if int(r["ok"] or 0) > 0})
    for i, a in enumerate(listwise):
        for b in listwise[i + 1 :]:
            pairs.append((f"stage:{a}", f"stage:{b}"))
    pairs.extend(extra_agreements)
    for a_spec, b_spec in pairs:
        try:
            result = compare(
                load_labels(a_spec, store=store, allow_partial=allow_partial),
                load_labels(b_spec, store=store, allow_partial=allow_partial),
            )
        except ConfigError as exc:
            data.agreements.append({"a": a_spec, "b": b_spec, "error": str(exc)})
            continue
        data.agreements.append(result.to_dict())

    if experiment is not None:
        data.experiment = read_results(experiment)
    if instances is not None:
        data.pairs = collect_pairs(store, instances, grades=grades, verdicts=verdicts, tags=tags)
    return data


PAIR_TEXT_CHARS = 600


def collect_pairs(
    store: Any,
    instances: str | Path | Any,
    *,
    verdicts: dict[str, Any],
    grades: dict[tuple[str, str], int] | None = None,
    per_kind: int = 30,
    seed: int = 0,
    tags: str = "both",
) -> list[dict[str, Any]]:
    """What a researcher reads first: a seeded sample of the flagged (query, negative) pairs, and the unflagged
    negatives the first stage scored highest ("close"), each with the query, the positive and the negative side by
    side, every stage's score and verdict, and the human grade when `grades` are given (a testbed's qrels)."""
    run = store.current_run()
    views = dict(run["views"]) if run else {}
    by_stage = {k: {v.query_id: v for v in store.iter_verdicts(stage=k, view_hash=view)} for k, view in views.items()}

    def flags(v: Any) -> set[str]:
        return set(v.better) | (set(v.worse) if tags == "both" else set())

    flagged = sorted((q, d) for q, v in verdicts.items() if v.status == "ok" for d in flags(v))
    flagged = sorted(random.Random(seed).sample(flagged, min(per_kind, len(flagged))))
    close: list[tuple[float, str, str]] = []
    for qid, v in by_stage.get(1, {}).items():
        final = verdicts.get(qid)
        if v.status != "ok" or not v.raw_scores or final is None or final.status != "ok":
            continue
        close.extend((-score, qid, d) for d, score in v.raw_scores.items() if d not in flags(final))
    chosen = [("flagged", q, d) for q, d in flagged] + [("close", q, d) for _, q, d in sorted(close)[:per_kind]]
    wanted = {q for _, q, _ in chosen}
    texts: dict[str, Any] = {}
    source = read_instances(instances) if isinstance(instances, str | Path) else instances
    for inst in source:
        if inst.query_id in wanted:
            texts[inst.query_id] = inst
    rows = []
    for kind, qid, docid in chosen:
        inst = texts.get(qid)
        if inst is None or docid not in set(inst.negative_ids):
            continue
        stages = []
        for k in sorted(by_stage):
            v = by_stage[k].get(qid)
            if v is None or docid not in v.docids:
                stages.append({"stage": k, "score": None, "verdict": "not judged"})
                continue
            label = "better" if docid in v.better else "worse" if docid in v.worse else "—"
            score = (v.raw_scores or {}).get(docid, (v.scores or {}).get(docid))
            stages.append({"stage": k, "score": score, "verdict": label if v.status == "ok" else v.status})
        rows.append(
            {
                "kind": kind,
                "query_id": qid,
                "docid": docid,
                "query": inst.query,
                "positive": inst.positives[0].text if inst.positives else "",
                "negative": inst.negative(docid).text,
                "stages": stages,
                "grade": None if grades is None else grades.get((qid, docid)),
            }
        )
    return rows


def _text(value: str) -> str:
    """A long text as its beginning, the whole of it one click away (escaped)."""
    if len(value) <= PAIR_TEXT_CHARS:
        return f"<div class='text'>{_e(value)}</div>"
    return f"<details class='text'><summary>{_e(value[:PAIR_TEXT_CHARS])} …</summary>{_e(value)}</details>"


def _pairs_html(pairs: list[dict[str, Any]], with_grades: bool) -> str:
    parts = []
    for kind, title in (("flagged", "Flagged pairs (a seeded sample)"), ("close", "Unflagged but close")):
        rows = [p for p in pairs if p["kind"] == kind]
        if not rows:
            continue
        head = ["query", "positive", "negative", "stages (score / verdict)"] + (["human grade"] if with_grades else [])
        body = []
        for p in rows:
            stages = "<br>".join(f"{_e(s['stage'])}: {_num(s['score'])} / {_e(s['verdict'])}" for s in p["stages"])
            cells = [
                f"<b>{_e(p['query_id'])}</b> {_text(p['query'])}",
                _text(p["positive"]),
                f"<b>{_e(p['docid'])}</b> {_text(p['negative'])}",
                stages,
            ]
            if with_grades:
                cells.append(_num(p["grade"]))
            body.append("<tr>" + "".join(f"<td class='pair'>{c}</td>" for c in cells) + "</tr>")
        header = "".join(f"<th>{_e(h)}</th>" for h in head)
        parts.append(f"<h3>{_e(title)}</h3><table class='pairs'><thead><tr>{header}</tr></thead>"
                     f"<tbody>{''.join(body)}</tbody></table>")  # fmt: skip
    return "".join(parts)


# -- plots -----------------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 6.0, height: float = 3.2) -> tuple[Any, Any]:
    # the object API, not pyplot: no global state and no GUI backend needed
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def plot_funnel(funnel: list[dict[str, Any]]) -> str:
    fig, ax = _figure()
    labels, judged, flagged = [], [], []
    for step in funnel:
        labels.append(step["step"])
        judged.append(step["judged"])
        flagged.append(step["flagged"])
    y = list(range(len(labels)))[::-1]
    ax.barh(y, judged, color="#9fbfe3", label="judged")
    ax.barh(y, flagged, color="#2f6db5", label="flagged (>= 1 negative)")
    for yy, j, f in zip(y, judged, flagged, strict=True):
        ax.text(j, yy, f" {f} / {j}", va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xlabel("instances")
    ax.set_xlim(0, max(judged or [1]) * 1.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8, frameon=False)
    ax.set_title("Cascade funnel")
    return _png(fig)


def plot_subsets(subsets: list[dict[str, Any]]) -> str:
    fig, ax = _figure()
    names = [s["subset"] for s in subsets]
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [s["flagged_rate"] for s in subsets], width=0.4, color="#2f6db5", label="flagged")
    ax.bar([i + 0.2 for i in x], [s["better_rate"] for s in subsets], width=0.4, color="#e08a2c", label="<better>")
    ax.set_xticks(list(x), names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of judged instances")
    ax.legend(fontsize=8)
    ax.set_title("Flagged rate per subset")
    return _png(fig)


def plot_histogram(histogram: dict[str, int]) -> str:
    fig, ax = _figure()
    keys = list(histogram)
    ax.bar(keys, [histogram[k] for k in keys], color="#2f6db5")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("flagged negatives per instance")
    ax.set_ylabel("instances")
    ax.set_title("Flags per flagged instance")
    return _png(fig)


def plot_results(runs: dict[str, dict[str, float]], columns: list[str]) -> str:
    fig, ax = _figure(max(6.0, 0.6 * len(columns) * max(1, len(runs)) / 2), 3.4)
    width = 0.8 / max(1, len(runs))
    for i, (run, values) in enumerate(runs.items()):
        xs = [c + i * width - 0.4 + width / 2 for c in range(len(columns))]
        ax.bar(xs, [values.get(col, 0.0) for col in columns], width=width, label=run)
    rotate = len(columns) > 3
    ax.set_xticks(list(range(len(columns))), columns, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.legend(fontsize=8)
    ax.set_title("Experiment results")
    return _png(fig)


# -- HTML ------------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str = "") -> str:
    ident = f' id="{_e(table_id)}"' if table_id else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_num(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(b64: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _stage_name(s: dict[str, Any]) -> str:
    return "final" if s["stage"] == "final" else f"{s['stage']}: {s['name']}"


def _judge_rows(stages: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for s in stages:
        m = s["metrics"] or {}
        cov = s.get("coverage") or {}
        judge = f"{s['config']} ({s['name']})" if s["stage"] == "external" else s["config"]
        stage = "file" if s["stage"] == "external" else _stage_name(s)
        rows.append([
            judge, stage, f"{cov.get('found', m.get('pairs'))} / {cov.get('pairs', m.get('pairs'))}", m.get("flagged"),
            m.get("precision"), m.get("recall"), m.get("f1"), m.get("kappa"), s["roc_auc"], s["pr_auc"],
        ])  # fmt: skip
    return rows


_JUDGE_HEAD = ["judge", "stage", "pairs covered", "flagged", "precision", "recall", "F1", "kappa", "ROC-AUC", "PR-AUC"]


def _judges_html(ev: dict[str, Any], plot: str) -> str:
    """The "Judges against people" section: every judge, the --target cuts, the shared pairs, the plot."""
    card = ev["testbed"]
    body = (
        f"<p>{_e(card.get('dataset'))}: {_e(card.get('queries'))} queries, {_e(card.get('negatives_judged'))} "
        f"negatives graded by people, {_e(card.get('false_negatives'))} of them false negatives (human grade &ge; "
        f"{_e(card.get('min_grade'))}; base rate {_num(card.get('base_rate'), 2)}). Each judge is measured on the "
        "labelled pairs it covers; a stage after the first judges only the pairs routed to it. Precision, recall, "
        "F1 and kappa are of the judge's flags (a qrels file: grade at or above its cut); ROC-AUC and PR-AUC of its "
        "raw scores.</p>"
    )
    body += _table(_JUDGE_HEAD, _judge_rows(ev["stages"]), "judge-eval-table")
    missing = [s for s in ev["stages"] if s["stage"] == "external" and (s.get("coverage") or {}).get("missing")]
    for s in missing:
        cov = s["coverage"]
        body += (
            f"<p class='note'>{_e(s['config'])} ({_e(s['source'])}) lacks {cov['missing']} of the {cov['pairs']} "
            f"testbed pairs: its figures above are on the {cov['found']} it covers.</p>"
        )
    cuts = [s for s in ev["stages"] if s.get("cut")]
    if cuts:
        rows = []
        for s in cuts:
            cut = s["cut"]
            judge = f"{s['config']} ({s['name']})" if s["stage"] == "external" else f"{s['config']} / {_stage_name(s)}"
            if not cut["reachable"]:
                rows.append([judge, cut["target"], "not reached on the tuning half", None, None, None, None, None])
                continue
            held = cut["held_out"]
            rows.append([
                judge, cut["target"], f"score >= {cut['threshold']:.4f}", cut["tune"]["queries"], held["queries"],
                held["precision"], held["recall"], held["kappa"],
            ])  # fmt: skip
        body += (
            f"<h3>The cut meeting {_e(ev.get('target'))}</h3><p class='note'>Chosen on one seeded half of the "
            "queries (the same half for every judge), measured on the other half.</p>"
        )
        body += _table(
            ["judge", "target", "cut", "tuning queries", "held-out queries", "held-out precision",
             "held-out recall", "held-out kappa"], rows, "cut-table",
        )  # fmt: skip
    shared = ev.get("shared")
    if shared:
        body += (
            f"<h3>On the pairs every judge covers ({shared['pairs']} of {shared['of']}, "
            f"{shared['false_negatives']} false negatives)</h3><p class='note'>The judges cover different pairs, so "
            "each is measured again on the pairs all of them cover"
            + (f" (stages that judge only routed pairs left out: {_e(', '.join(shared['left_out_routed']))})"
               if shared["left_out_routed"] else "")
            + ".</p>"
        )  # fmt: skip
        body += _table(_JUDGE_HEAD, _judge_rows(shared["stages"]), "judge-eval-shared-table")
    if plot:
        caption = (
            "precision against recall on the same pairs per panel; a curve: a judge's raw scores; a point: its flags"
        )
        body += '<div class="plots">' + _img(plot, "precision and recall", caption) + "</div>"
    return body


def render(data: ReportData, *, title: str = "hardneg report") -> str:
    """The HTML page for `data`: with a judge-eval, "Judges against people" first; sections with nothing to show
    (no tokens recorded, no two stages to compare, no verdicts) are left out."""
    sections: list[tuple[str, str, str]] = []
    if data.judge_eval:
        sections.append(("judges", "Judges against people", _judges_html(data.judge_eval, data.judge_eval_plot)))
        if data.pairs:
            with_grades = any(p["grade"] is not None for p in data.pairs)
            sections.append(("pairs", "Pairs to look at", _pairs_html(data.pairs, with_grades)))
    if not data.funnel or not any(s["judged"] for s in data.funnel):
        return _page(data, sections, title)

    funnel_rows = [
        [s["step"], s["judged"], s["ok"], s["failed"], s["flagged"], s["flagged"] / s["ok"] if s["ok"] else None]
        for s in data.funnel
    ]
    body = _table(["step", "judged", "ok", "failed", "flagged", "flagged / ok"], funnel_rows, "funnel-table")
    body += '<div class="plots">' + _img(plot_funnel(data.funnel), "cascade funnel", "instances per stage") + "</div>"
    sections.append(("funnel", "Cascade funnel", body))

    sub_rows = [
        [s["subset"], s["judged"], s["flagged"], s["flagged_rate"], s["better_rate"], s["failed"], s["flags"]]
        for s in data.subsets
    ]
    body = _table(
        ["subset", "judged", "flagged", "flagged rate", "<better> rate", "failed", "flags"], sub_rows, "subset-table"
    )
    plots = [_img(plot_subsets(data.subsets), "flagged rate per subset", "final verdicts")]
    if data.flags_histogram:
        plots.append(_img(plot_histogram(data.flags_histogram), "flags per instance", "final verdicts"))
    body += '<div class="plots">' + "".join(plots) + "</div>"
    sections.append(("subsets", "Flagged instances", body))

    cost_rows = [
        [
            s["stage"],
            s["judge_name"],
            s["model"],
            s["records"],
            s["tokens_in"],
            s["tokens_out"],
            s["latency_s"],
            s["cost_usd"],
        ]
        for s in data.stages
    ]
    body = _table(
        ["stage", "judge", "model", "records", "tokens in", "tokens out", "latency s", "cost USD"],
        cost_rows,
        "cost-table",
    )
    body += f'<p class="note">{_e(data.price_note)}; "—": no tokens recorded (imported verdicts) or no price.</p>'
    if any(s["tokens_in"] or s["tokens_out"] or s["cost_usd"] for s in data.stages):
        sections.append(("cost", "Tokens and cost", body))

    parts = []
    for ag in data.agreements:
        if "error" in ag:
            parts.append(f"<h3>{_e(ag['a'])} vs {_e(ag['b'])}</h3><p class='note'>{_e(ag['error'])}</p>")
            continue
        b = ag["binary"]
        head = f"<h3>{_e(ag['a'])} vs {_e(ag['b'])} (reference)</h3>"
        stats = _table(
            ["pairs", "queries", "kappa", "precision", "recall", "F1", "relevant A", "relevant B"],
            [
                [
                    ag["pairs"],
                    ag["queries"],
                    b["kappa"],
                    b["precision"],
                    b["recall"],
                    b["f1"],
                    b["relevant_a"],
                    b["relevant_b"],
                ]
            ],
        )
        conf = _table(
            ["B \\ A", *b["labels"]], [[lab, *row] for lab, row in zip(b["labels"], b["confusion"], strict=True)]
        )
        three = ""
        if ag.get("three_class"):
            t = ag["three_class"]
            three = (
                f"<p>3-class kappa (better / worse / none): {_num(t['kappa'])}; better-only kappa: "
                f"{_num(t['kappa_better_only'])}</p>"
            )
            three += _table(
                ["B \\ A", *t["labels"]], [[lab, *row] for lab, row in zip(t["labels"], t["confusion"], strict=True)]
            )
        parts.append(head + stats + conf + three)
    if parts:
        sections.append(("agreement", "Agreement", "".join(parts)))

    if data.pairs and not data.judge_eval:
        with_grades = any(p["grade"] is not None for p in data.pairs)
        sections.append(("pairs", "Pairs to look at", _pairs_html(data.pairs, with_grades)))

    if data.experiment:
        columns = sorted({c for values in data.experiment.values() for c in values})
        rows = [[run, *[values.get(c) for c in columns]] for run, values in data.experiment.items()]
        body = _table(["run", *columns], rows, "results-table")
        shown = columns[:24]
        body += (
            '<div class="plots">'
            + _img(plot_results(data.experiment, shown), "experiment results", "numeric results per run")
            + "</div>"
        )
        sections.append(("results", "Experiment results", body))
    return _page(data, sections, title)


def _page(data: ReportData, sections: list[tuple[str, str, str]], title: str) -> str:
    nav = "".join(f'<a href="#{key}">{_e(name)}</a>' for key, name, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{_e(name)}</h2>{content}</section>' for key, name, content in sections)
    store = f"store {data.store}" if data.store else "no judgment store"
    generated = f"{store} · generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
    return PAGE.substitute(title=_e(title), generated=_e(generated), nav=nav, body=body)


def build_report(
    store_path: str | Path | None,
    out_path: str | Path,
    *,
    instances: str | Path | None = None,
    experiment: str | Path | None = None,
    extra_agreements: Sequence[tuple[str, str]] = (),
    title: str = "hardneg report",
    tags: str = "both",
    allow_partial: bool = False,
    grades: dict[tuple[str, str], int] | None = None,
    judge_eval: Any = None,
) -> ReportData:
    """Write the HTML page for a store (atomic) and return the numbers it shows; `judge_eval` (a
    `JudgeEvalReport`) adds its table, cuts and precision/recall plot, first. Without a store (`None`: a
    judge-eval of external judgments only) the page shows the judge-eval alone."""

    if store_path is None:
        if judge_eval is None:
            raise ConfigError("a page without a judgment store needs a judge_eval", param="store_path")
        check_target(out_path, folder=False, param="out_path")
        data = ReportData(store="", judge_eval=judge_eval.to_dict())
        data.judge_eval_plot = _png(precision_recall_figure(judge_eval))
        with atomic_path(out_path) as tmp:
            tmp.write_text(render(data, title=title), encoding="utf-8")
        return data
    store_path = Path(store_path)
    if not store_path.exists():
        raise ConfigError(f"{store_path}: no such judgment store")
    check_target(out_path, folder=False, param="out_path")  # a page that cannot be written is known now
    if tags not in ("better", "both"):
        raise ConfigError(f"tags must be better or both, got {tags!r}")
    if instances is not None:
        as_source(instances).validate()  # a bad or empty instances file stops here, before the page is built
    with JudgmentStore(store_path, readonly=True) as store:
        data = collect(
            store, instances=instances, experiment=experiment, extra_agreements=extra_agreements, tags=tags,
            allow_partial=allow_partial, grades=grades,
        )  # fmt: skip
    if judge_eval is not None:
        data.judge_eval = judge_eval.to_dict()
        data.judge_eval_plot = _png(precision_recall_figure(judge_eval))
    page = render(data, title=title)
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return data


__all__ = ["ReportData", "build_report", "collect", "read_results", "render"]
