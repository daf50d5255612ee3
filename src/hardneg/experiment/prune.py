"""`hardneg prune`: leave-one-subset-out training, as in the paper's pruning study.

One model on all training subsets, one on each all-but-one; every model is evaluated on the same test sets.
A subset is suggested for dropping when leaving it out raises the average by more than `threshold` and
improves more test sets than it hurts (each by more than `threshold`); otherwise it is kept.
Uses the same config file, steps and cache as `hardneg experiment` (the `variants`/`judge` sections are
ignored: the pruning study trains on the mined or given data as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.data.atomic import atomic_path
from hardneg.errors import InputError
from hardneg.experiment.config import ExperimentConfig
from hardneg.experiment.runner import Plan, Progress, _combine, _source_steps, _train_and_evaluate, score_results
from hardneg.experiment.steps import StepGraph, StepRecord

PRUNE_SCHEMA = "hardneg-prune/1"
ALL = "all"


def plan_prune(cfg: ExperimentConfig) -> Plan:
    if len(cfg.train) < 2:
        raise InputError(cfg.path, None, "train", "the pruning study needs at least two training subsets")
    graph = StepGraph(cfg.output)
    sources = _source_steps(graph, cfg, save_scores=False)
    evaluations: dict[tuple[str, int, str], str] = {}
    data_steps: dict[str, str] = {}
    data_steps[ALL] = _combine(graph, ALL, sources)
    for name in sources:
        rest = {k: v for k, v in sources.items() if k != name}
        data_steps[f"without-{name}"] = _combine(graph, f"without-{name}", rest)
    for label, step_id in data_steps.items():
        _train_and_evaluate(graph, cfg, f"prune-{label}", step_id, evaluations)
    return Plan(graph, cfg, evaluations, {f"prune-{label}": sid for label, sid in data_steps.items()})


def pruning_table(results: dict[str, Any], subsets: list[str], threshold: float) -> dict[str, Any]:
    """Per left-out subset: average, delta vs all, test sets improved / reduced by more than threshold, suggestion."""
    by_name = {v["name"]: v for v in results["variants"]}
    base = by_name[f"prune-{ALL}"]
    rows = []
    for subset in subsets:
        v = by_name[f"prune-without-{subset}"]
        deltas = {t: v["delta"][t] for t in results["test_sets"]}
        improved = sorted(t for t, d in deltas.items() if d > threshold)
        reduced = sorted(t for t, d in deltas.items() if d < -threshold)
        delta_avg = v["delta"]["average"]
        drop = delta_avg > threshold and len(improved) > len(reduced)
        rows.append(
            {
                "left_out": subset,
                "train_instances": v.get("train", {}).get("instances"),
                "average": v["average"]["mean"],
                "average_std": v["average"]["std"],
                "delta_average": delta_avg,
                "improved": improved,
                "reduced": reduced,
                "scores": {t: v["scores"][t]["mean"] for t in results["test_sets"]},
                "significance": v.get("significance", {}),
                "suggestion": "drop" if drop else "keep",
            }
        )
    return {
        "schema": PRUNE_SCHEMA,
        "name": results["name"],
        "metric": results["metric"],
        "threshold": threshold,
        "seeds": results["seeds"],
        "test_sets": results["test_sets"],
        "all": {
            "train_instances": base.get("train", {}).get("instances"),
            "average": base["average"]["mean"],
            "average_std": base["average"]["std"],
            "scores": {t: base["scores"][t]["mean"] for t in results["test_sets"]},
        },
        "rows": rows,
        "suggested_keep": [r["left_out"] for r in rows if r["suggestion"] == "keep"],
        "suggested_drop": [r["left_out"] for r in rows if r["suggestion"] == "drop"],
        "steps": results["steps"],
    }


def pruning_markdown(table: dict[str, Any]) -> str:
    tests = table["test_sets"]
    t = table["threshold"]
    lines = [
        f"# {table['name']}: leave-one-subset-out ({table['metric']})",
        "",
        f"Threshold {t:g}; seeds {', '.join(map(str, table['seeds']))}. A subset is suggested for dropping when "
        "training without it raises the average by more than the threshold and improves more test sets than it "
        "reduces.",
        "",
        "| trained on | instances | "
        + " | ".join(tests)
        + " | average | Δ average | improved | reduced | suggestion |",
        "|---|---:|" + "---:|" * len(tests) + "---:|---:|---:|---:|---|",
    ]
    base = table["all"]
    lines.append(
        f"| all subsets | {base['train_instances']} | "
        + " | ".join(f"{base['scores'][x]:.4f}" for x in tests)
        + f" | {base['average']:.4f} | – | – | – | – |"
    )
    for row in table["rows"]:
        lines.append(
            f"| without {row['left_out']} | {row['train_instances']} | "
            + " | ".join(f"{row['scores'][x]:.4f}" for x in tests)
            + f" | {row['average']:.4f} | {row['delta_average']:+.4f} | {len(row['improved'])} | "
            f"{len(row['reduced'])} | {row['suggestion']} |"
        )
    lines += [
        "",
        f"Suggested keep: {', '.join(table['suggested_keep']) or '–'}. "
        f"Suggested drop: {', '.join(table['suggested_drop']) or '–'}.",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class PruneResult:
    records: list[StepRecord]
    table: dict[str, Any] | None
    paths: dict[str, Path]


def run_prune(cfg: ExperimentConfig, *, dry_run: bool = False, progress: Progress | None = None) -> PruneResult:
    import json

    plan = plan_prune(cfg)
    records = plan.graph.execute(dry_run=dry_run, progress=progress)
    if dry_run:
        return PruneResult(records, None, {})
    subsets = [s.name for s in cfg.train]
    labels = [(f"prune-{ALL}", "default", None)] + [(f"prune-without-{s}", "default", None) for s in subsets]
    results = score_results(plan, records, labels, baseline=f"prune-{ALL}")
    table = pruning_table(results, subsets, float(cfg.prune.get("threshold", 0.005)))
    cfg.output.mkdir(parents=True, exist_ok=True)
    paths = {"json": cfg.output / "prune.json", "markdown": cfg.output / "prune.md"}
    with atomic_path(paths["json"]) as tmp:
        tmp.write_text(json.dumps(table, indent=2, default=str) + "\n")
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(pruning_markdown(table))
    return PruneResult(records, table, paths)
