"""The numbers of the page, gathered from an open judgment store (and an instances file, an experiment): per stage
tokens and cost, the cascade funnel, flags per instance, flagged rates per subset, agreement between stages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hardneg.analysis.agreement import compare
from hardneg.analysis.labels import load_labels
from hardneg.analysis.report.flags import flag_count
from hardneg.analysis.report.pairs import collect_pairs
from hardneg.analysis.report.results import read_results
from hardneg.data.io import read_instances
from hardneg.errors import ConfigError
from hardneg.judging.cost import PriceTable

HISTOGRAM_BINS = [*map(str, range(1, 9)), ">8"]


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
        """Every field but the plot (an image, not a number)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "judge_eval_plot"}


def _stage_rows(store: Any, prices: PriceTable) -> list[dict[str, Any]]:
    """`store.stage_summary()` with `cost_usd`: None without tokens recorded or a price for the model."""
    rows = []
    for row in store.stage_summary():
        row = dict(row)
        row["cost_usd"] = None
        if (row["tokens_in"] or row["tokens_out"]) and prices.has(str(row["model"])):
            row["cost_usd"] = prices.get(str(row["model"])).cost(int(row["tokens_in"]), int(row["tokens_out"]))
        rows.append(row)
    return rows


def _funnel(stages: list[dict[str, Any]], verdicts: dict[str, Any], tags: str) -> list[dict[str, Any]]:
    """Per stage, instances judged (any config), ok, failed, flagged; then the same of the final verdicts."""
    per_stage: dict[int, dict[str, int]] = {}
    for row in stages:
        entry = per_stage.setdefault(int(row["stage"]), {"judged": 0, "ok": 0, "failed": 0, "flagged": 0})
        entry["judged"] += int(row["records"])
        entry["ok"] += int(row["ok"] or 0)
        entry["failed"] += int(row["parse_error"] or 0) + int(row["failed"] or 0)
        entry["flagged"] += int(row["flagged"] or 0)
    funnel: list[dict[str, Any]] = [{"step": f"stage {k}", "stage": k, **per_stage[k]} for k in sorted(per_stage)]
    failed = sum(1 for v in verdicts.values() if v.status != "ok")
    flagged = sum(1 for v in verdicts.values() if flag_count(v, tags) > 0)
    funnel.append(
        {"step": "final", "stage": None, "judged": len(verdicts), "ok": len(verdicts) - failed, "failed": failed,
         "flagged": flagged}
    )  # fmt: skip
    return funnel


def _histogram(verdicts: dict[str, Any], tags: str) -> dict[str, int]:
    """Flagged instances by how many negatives they flag (1 to 8, then ">8"); empty bins left out."""
    counts: Counter[str] = Counter()
    for v in verdicts.values():
        n = flag_count(v, tags)
        if n:
            counts[str(n) if n <= 8 else ">8"] += 1
    return {k: counts[k] for k in HISTOGRAM_BINS if counts[k]}


def _rate(count: int, judged: int) -> float:
    return count / judged if judged else 0.0


def _subsets(verdicts: dict[str, Any], subset_of: dict[str, str], tags: str) -> list[dict[str, Any]]:
    """Final verdicts per subset: "(all)" without an instances file, "(not in file)" for queries it lacks."""
    groups: dict[str, Counter[str]] = {}
    for qid, v in verdicts.items():
        counter = groups.setdefault(subset_of.get(qid, "(all)" if not subset_of else "(not in file)"), Counter())
        counter["judged"] += 1
        n = flag_count(v, tags)
        if v.status != "ok":
            counter["failed"] += 1
        elif n:
            counter["flagged"] += 1
            counter["flags"] += n
        if v.status == "ok" and v.better:
            counter["better"] += 1
    return [
        {
            "subset": name,
            "judged": c["judged"],
            "flagged": c["flagged"],
            "failed": c["failed"],
            "flagged_rate": _rate(c["flagged"], c["judged"]),
            "better_rate": _rate(c["better"], c["judged"]),
            "flags": c["flags"],
        }
        for name, c in sorted(groups.items())
    ]


def _agreements(
    store: Any, stages: list[dict[str, Any]], extra: Sequence[tuple[str, str]], allow_partial: bool
) -> list[dict[str, Any]]:
    """Agreement between every two stages with ok verdicts, then of each extra (A, B) source pair; a pair that
    cannot be compared shows its error."""
    listwise = sorted({int(r["stage"]) for r in stages if int(r["ok"] or 0) > 0})
    specs = [(f"stage:{a}", f"stage:{b}") for i, a in enumerate(listwise) for b in listwise[i + 1 :]]
    specs.extend(extra)
    agreements = []
    for a_spec, b_spec in specs:
        try:
            result = compare(
                load_labels(a_spec, store=store, allow_partial=allow_partial),
                load_labels(b_spec, store=store, allow_partial=allow_partial),
            )
        except ConfigError as exc:
            agreements.append({"a": a_spec, "b": b_spec, "error": str(exc)})
            continue
        agreements.append(result.to_dict())
    return agreements


def collect(
    store: Any,
    *,
    instances: str | Path | None = None,
    experiment: str | Path | None = None,
    extra_agreements: Sequence[tuple[str, str]] = (),
    tags: str = "both",
    allow_partial: bool = False,
    grades: dict[tuple[str, str], float] | None = None,
) -> ReportData:
    """Gather the numbers of the page from an open `JudgmentStore` (`allow_partial`: see `final_verdicts`).

    With `instances`, the page also shows pairs to read (`collect_pairs`), with their human `grades` if given."""
    prices = PriceTable.default()
    note = f"prices: hardneg.judging.cost built-in table ({prices.date}); USD from the tokens recorded"
    data = ReportData(store=str(getattr(store, "path", "")), price_note=note)
    data.stages = _stage_rows(store, prices)
    verdicts = store.final_verdicts(allow_partial=allow_partial)
    data.funnel = _funnel(data.stages, verdicts, tags)
    data.flags_histogram = _histogram(verdicts, tags)
    subset_of: dict[str, str] = {}
    if instances is not None:
        subset_of = {inst.query_id: inst.subset or "(none)" for inst in read_instances(instances)}
    data.subsets = _subsets(verdicts, subset_of, tags)
    data.agreements = _agreements(store, data.stages, extra_agreements, allow_partial)
    if experiment is not None:
        data.experiment = read_results(experiment)
    if instances is not None:
        data.pairs = collect_pairs(store, instances, grades=grades, verdicts=verdicts, tags=tags)
    return data
