"""Result tables of an experiment: markdown, JSON, CSV and PNG plots.

`results.json` (schema `hardneg-experiment/1`), the file the HTML report reads:

```
{"schema": "hardneg-experiment/1", "name": str, "metric": "ndcg@10", "alpha": 0.05, "seeds": [0],
 "baseline": "default", "test_sets": ["scifact", ...],
 "variants": [{"name": "rlhn-cascade", "treatment": "rlhn", "verdicts": "cascade",
               "train": {"instances": int, "negatives_moved": int, "negatives_removed": int,
                         "instances_dropped": int},
               "scores": {"scifact": {"mean": float, "std": float, "per_seed": {"0": float}}, ...},
               "average": {"mean": float, "std": float, "per_seed": {"0": float}},
               "delta": {"scifact": float, ..., "average": float},          # mean minus the baseline's mean
               "significance": {"scifact": {"test": str, "p_value": float, "significant": bool,
                                            "n_queries": int}}}],          # paired, per query, vs baseline
 "results": {"rlhn-cascade": {"scifact": {"ndcg@10": float}, "average": {"ndcg@10": float}}},  # `hardneg report`
 "steps": [{"id": str, "kind": str, "status": "ran|cached", "wall_s": float}], "wall_s": float}
```
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.data.atomic import atomic_path

SCHEMA = "hardneg-experiment/1"

# (per-query scores of a variant, per-query scores of the baseline) -> {"test", "p_value", ...}
Significance = Callable[[Mapping[str, float], Mapping[str, float]], dict[str, Any]]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 with a single value)."""
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


@dataclass
class VariantScores:
    """Per test set and seed: the aggregate metric and the per-query scores of one variant."""

    name: str
    treatment: str
    verdicts: str | None
    train: dict[str, Any] = field(default_factory=dict)
    metric: dict[str, dict[int, float]] = field(default_factory=dict)  # test set -> seed -> value
    per_query: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)  # test set -> seed -> qid -> v


def mean_per_query(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, float]:
    """Per-query scores averaged over seeds (queries present in every seed)."""
    if not per_seed:
        return {}
    runs = list(per_seed.values())
    common = set(runs[0]).intersection(*runs[1:]) if len(runs) > 1 else set(runs[0])
    return {qid: statistics.fmean(run[qid] for run in runs) for qid in sorted(common)}


def build_results(
    *,
    name: str,
    metric: str,
    alpha: float,
    seeds: list[int],
    test_sets: list[str],
    variants: list[VariantScores],
    significance: Significance | None,
    baseline: str = "default",
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The results object (see the module docstring)."""
    base = next((v for v in variants if v.name == baseline), None)
    out_variants = []
    base_means: dict[str, float] = {}
    for variant in variants:
        scores: dict[str, Any] = {}
        for test in test_sets:
            per_seed = variant.metric.get(test, {})
            mean, std = mean_std([per_seed[s] for s in seeds if s in per_seed])
            scores[test] = {"mean": mean, "std": std, "per_seed": {str(s): per_seed[s] for s in seeds if s in per_seed}}
        average_per_seed = {
            str(s): statistics.fmean(variant.metric[t][s] for t in test_sets)
            for s in seeds
            if all(s in variant.metric.get(t, {}) for t in test_sets)
        }
        avg_mean, avg_std = mean_std(list(average_per_seed.values()))
        entry: dict[str, Any] = {
            "name": variant.name,
            "treatment": variant.treatment,
            "verdicts": variant.verdicts,
            "train": variant.train,
            "scores": scores,
            "average": {"mean": avg_mean, "std": avg_std, "per_seed": average_per_seed},
        }
        if variant is base:
            base_means = {t: scores[t]["mean"] for t in test_sets}
            base_means["average"] = avg_mean
        out_variants.append(entry)
    for variant, entry in zip(variants, out_variants, strict=True):
        if base is None:
            break
        entry["delta"] = {
            key: (entry["scores"][key]["mean"] if key != "average" else entry["average"]["mean"]) - base_means[key]
            for key in [*test_sets, "average"]
        }
        entry["significance"] = {}
        if variant is base or significance is None:
            continue
        for test in test_sets:
            ours = mean_per_query(variant.per_query.get(test, {}))
            theirs = mean_per_query(base.per_query.get(test, {}))
            common = sorted(set(ours) & set(theirs))
            if not common:
                continue
            result = dict(significance({q: ours[q] for q in common}, {q: theirs[q] for q in common}))
            p_value = result.get("p_value")
            result["n_queries"] = len(common)
            result["significant"] = bool(p_value is not None and p_value == p_value and p_value < alpha)
            entry["significance"][test] = result
    steps = steps or []
    # The compact view `hardneg report` reads ({run: {dataset: {metric: value}}} under `results`).
    compact = {
        entry["name"]: {
            **{t: {metric: entry["scores"][t]["mean"]} for t in test_sets},
            "average": {metric: entry["average"]["mean"]},
        }
        for entry in out_variants
    }
    return {
        "schema": SCHEMA,
        "name": name,
        "metric": metric,
        "alpha": alpha,
        "seeds": list(seeds),
        "baseline": baseline,
        "test_sets": list(test_sets),
        "variants": out_variants,
        "results": compact,
        "steps": steps,
        "wall_s": round(sum(float(s.get("wall_s", 0.0)) for s in steps), 3),
    }


def _fmt(value: float, std: float | None = None, n_seeds: int = 1) -> str:
    if value != value:  # NaN
        return "–"
    text = f"{value:.4f}"
    if std is not None and n_seeds > 1:
        text += f" ± {std:.4f}"
    return text


def _fmt_delta(value: float, sig: dict[str, Any] | None) -> str:
    if value != value:
        return "–"
    text = f"{value:+.4f}"
    if sig and sig.get("significant"):
        text += "*"
    return text


def results_markdown(results: dict[str, Any]) -> str:
    """The results table: metric per test set (mean ± std over seeds), average, delta vs baseline (* = p < alpha)."""
    tests = results["test_sets"]
    n_seeds = len(results["seeds"])
    metric = results["metric"]
    lines = [
        f"# {results['name']}: {metric}",
        "",
        f"Seeds: {', '.join(map(str, results['seeds']))}. Delta vs `{results['baseline']}`; "
        f"`*`: paired test p < {results['alpha']} on per-query {metric} "
        + ("(averaged over seeds)." if n_seeds > 1 else "(one seed: differences may be seed noise)."),
        "",
        "| variant | train instances | negatives moved / removed | " + " | ".join(tests) + " | average | Δ average |",
        "|---|---:|---:|" + "---:|" * len(tests) + "---:|---:|",
    ]
    for v in results["variants"]:
        cells = []
        for test in tests:
            score = v["scores"][test]
            cell = _fmt(score["mean"], score["std"], n_seeds)
            if "delta" in v and v["name"] != results["baseline"]:
                cell += f" ({_fmt_delta(v['delta'][test], v.get('significance', {}).get(test))})"
            cells.append(cell)
        avg = _fmt(v["average"]["mean"], v["average"]["std"], n_seeds)
        delta = _fmt_delta(v["delta"]["average"], None) if "delta" in v else "–"
        train = v.get("train", {})
        instances = train.get("instances", "–")
        changed = f"{train.get('negatives_moved', '–')} / {train.get('negatives_removed', '–')}"
        lines.append(f"| {v['name']} | {instances} | {changed} | " + " | ".join(cells) + f" | {avg} | {delta} |")
    sig_lines = []
    for v in results["variants"]:
        for test, sig in (v.get("significance") or {}).items():
            sig_lines.append(
                f"| {v['name']} | {test} | {sig.get('test', '?')} | {sig.get('p_value', float('nan')):.4g} | "
                f"{sig.get('n_queries', '–')} |"
            )
    if sig_lines:
        lines += ["", "| variant | test set | paired test | p-value | queries |", "|---|---|---|---:|---:|", *sig_lines]
    ran = [s for s in results.get("steps", []) if s.get("status") == "ran"]
    lines += ["", f"Steps run this time: {len(ran)} of {len(results.get('steps', []))}."]
    return "\n".join(lines) + "\n"


def results_csv(results: dict[str, Any]) -> str:
    """One row per variant, test set (and `average`) and seed (`mean` rows aggregate the seeds)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", "treatment", "verdicts", "test_set", "seed", results["metric"], "delta", "p_value"])
    for v in results["variants"]:
        for test in [*results["test_sets"], "average"]:
            score = v["average"] if test == "average" else v["scores"][test]
            sig = (v.get("significance") or {}).get(test, {})
            for seed, value in score["per_seed"].items():
                writer.writerow([v["name"], v["treatment"], v["verdicts"] or "", test, seed, f"{value:.6f}", "", ""])
            delta = v.get("delta", {}).get(test)
            writer.writerow(
                [
                    v["name"],
                    v["treatment"],
                    v["verdicts"] or "",
                    test,
                    "mean",
                    f"{score['mean']:.6f}",
                    "" if delta is None else f"{delta:.6f}",
                    "" if not sig else f"{sig.get('p_value', float('nan')):.6g}",
                ]
            )
    return buffer.getvalue()


def write_plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """Bar charts: the metric per test set and variant (error bars: std over seeds), and deltas vs baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    tests = [*results["test_sets"], "average"]
    variants = results["variants"]
    width = 0.8 / max(1, len(variants))
    written = []

    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tests) * max(1, len(variants)) / 3), 4))
    for i, v in enumerate(variants):
        means = [(v["average"] if t == "average" else v["scores"][t])["mean"] for t in tests]
        stds = [(v["average"] if t == "average" else v["scores"][t])["std"] for t in tests]
        xs = [j + i * width for j in range(len(tests))]
        ax.bar(xs, means, width, yerr=stds if len(results["seeds"]) > 1 else None, label=v["name"], capsize=2)
    ax.set_title(f"{results['name']}: {results['metric']} ({len(results['seeds'])} seed(s))")
    written.append(_save_bars(fig, ax, tests, len(variants), width, results["metric"], folder / "scores.png"))

    others = [v for v in variants if v["name"] != results["baseline"] and "delta" in v]
    if others:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tests) * len(others) / 2), 4))
        width = 0.8 / len(others)
        for i, v in enumerate(others):
            xs = [j + i * width for j in range(len(tests))]
            ax.bar(xs, [v["delta"][t] for t in tests], width, label=v["name"])
        ax.axhline(0.0, color="black", linewidth=0.8)
        ylabel = f"Δ {results['metric']} vs {results['baseline']}"
        written.append(_save_bars(fig, ax, tests, len(others), width, ylabel, folder / "delta.png"))
    return written


def _save_bars(fig: Any, ax: Any, tests: list[str], bars: int, width: float, ylabel: str, target: Path) -> Path:
    """Label a chart of `bars` bars per test set (the test's name under the middle of its group); save it as PNG."""
    import matplotlib.pyplot as plt

    ax.set_xticks([j + width * (bars - 1) / 2 for j in range(len(tests))])
    ax.set_xticklabels(tests)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return target


def write_results(results: dict[str, Any], folder: Path, *, plots: bool = True) -> dict[str, Path]:
    """results.json, results.md, results.csv and plots/*.png in `folder` (each written atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "results.json", "markdown": folder / "results.md", "csv": folder / "results.csv"}
    texts = {
        "json": json.dumps(results, indent=2, default=str) + "\n",
        "markdown": results_markdown(results),
        "csv": results_csv(results),
    }
    for kind, path in paths.items():
        with atomic_path(path) as tmp:
            tmp.write_text(texts[kind], encoding="utf-8")
    if plots:
        for i, path in enumerate(write_plots(results, folder / "plots")):
            paths[f"plot{i}"] = path
    return paths
