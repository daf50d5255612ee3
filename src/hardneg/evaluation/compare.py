"""Paired significance tests between runs on the same queries.

Per-query scores come from `evaluate_run` (trec_eval semantics). Every run is scored on the same queries: the
judged qrels queries that every run answers (the pairing is exact); a run that shares no judged query with the
qrels is an error naming both, and each run's overlap with the qrels is counted in the result.
Tests: scipy's paired t-test (`ttest_rel`) and a paired randomization test (`scipy.stats.permutation_test` with
`permutation_type="samples"`, which swaps the two systems' scores within each query), seeded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError
from hardneg.evaluation.metrics import DEFAULT_METRICS, Qrels, Run, evaluate_run, read_qrels, read_run


@dataclass
class PairResult:
    """System B against the baseline A on one metric."""

    metric: str
    baseline: str
    system: str
    mean_a: float
    mean_b: float
    wins: int  # queries where B beats A
    losses: int
    ties: int
    t_statistic: float
    t_pvalue: float
    permutation_pvalue: float

    @property
    def delta(self) -> float:
        return self.mean_b - self.mean_a

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "system": self.system,
            "mean_a": round(self.mean_a, 6),
            "mean_b": round(self.mean_b, 6),
            "delta": round(self.delta, 6),
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
            "t_statistic": _finite(self.t_statistic),
            "t_pvalue": _finite(self.t_pvalue),
            "permutation_pvalue": _finite(self.permutation_pvalue),
        }


def _finite(value: float) -> float | None:
    # JSON has no Infinity/NaN: a t statistic is infinite when every query differs by the same amount.
    return value if math.isfinite(value) else None


def paired_tests(a: list[float], b: list[float], *, iterations: int, seed: int) -> tuple[float, float, float]:
    """(t statistic, t-test p-value, randomization-test p-value), two-sided, for paired per-query scores."""
    import numpy as np
    from scipy import stats

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if len(x) < 2:
        raise ConfigError("a paired test needs at least two queries")
    if np.allclose(x, y):
        # Identical systems: no evidence of a difference (scipy returns nan for a zero-variance difference).
        return 0.0, 1.0, 1.0
    with warnings.catch_warnings():
        # Constant per-query differences make scipy warn about precision; the result (t = inf, p = 0) is right.
        warnings.simplefilter("ignore", RuntimeWarning)
        t = stats.ttest_rel(y, x)

    def mean_difference(u: Any, v: Any, axis: int = -1) -> Any:
        return np.mean(u - v, axis=axis)

    perm = stats.permutation_test(
        (y, x),
        mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=iterations,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(t.statistic), float(t.pvalue), float(perm.pvalue)


def compare_runs(
    qrels: Qrels | str | Path,
    runs: Mapping[str, Run | str | Path],
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
    baseline: str | None = None,
    iterations: int = 10000,
    seed: int = 42,
    ignore_identical_ids: bool = True,
    tie_epsilon: float = 1e-9,
) -> dict[str, Any]:
    """Compare every run against `baseline` (default: the first run) on each metric.

    `qrels` and each run are in memory or a file (qrels: BEIR TSV or TREC; runs: TREC run files), read here.
    Returns ``{"baseline", "queries", "overlap": {name: counts}, "systems": {name: {metric: mean}},
    "comparisons": [PairResult dicts]}``. All runs are scored on the same queries, `queries` of them: those with a
    relevant document in the qrels that every run answers, so the pairing is exact and the means are over that
    set. `overlap` counts, per run, the judged queries, the run's queries, the shared ones, the run's queries the
    qrels do not judge and the judged queries the run lacks. A run that shares no judged query with the qrels
    raises `ConfigError` naming both (wrong split or dataset).
    """
    metrics = list(metrics)
    names = list(runs)
    if len(names) < 2:
        raise ConfigError("compare needs at least two runs", param="runs")
    baseline = baseline or names[0]
    if baseline not in runs:
        raise ConfigError(f"{baseline!r} is not one of the runs: {', '.join(names)}", param="baseline")
    qrels_name = str(qrels) if isinstance(qrels, (str, Path)) else "the qrels"
    judgments = read_qrels(qrels) if isinstance(qrels, (str, Path)) else qrels
    scored: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        run_name = str(run) if isinstance(run, (str, Path)) else f"run {name!r}"
        loaded = read_run(run) if isinstance(run, (str, Path)) else run
        scored[name] = evaluate_run(
            judgments, loaded, metrics=metrics, ignore_identical_ids=ignore_identical_ids, qrels_name=qrels_name,
            run_name=run_name,
        )  # fmt: skip
    common = set.intersection(*(set(scored[name]["per_query"]) for name in names))
    if not common:
        raise ConfigError(f"the runs share no query judged in {qrels_name}: nothing to pair", param="runs")
    qids = sorted(common)
    means = {name: {m: _mean(scored[name]["per_query"], qids, m) for m in metrics} for name in names}
    comparisons: list[PairResult] = []
    for name in names:
        if name == baseline:
            continue
        for metric in metrics:
            a = [scored[baseline]["per_query"][q][metric] for q in qids]
            b = [scored[name]["per_query"][q][metric] for q in qids]
            wins = sum(1 for u, v in zip(a, b, strict=True) if v - u > tie_epsilon)
            losses = sum(1 for u, v in zip(a, b, strict=True) if u - v > tie_epsilon)
            t_stat, t_p, perm_p = paired_tests(a, b, iterations=iterations, seed=seed)
            comparisons.append(
                PairResult(
                    metric=metric,
                    baseline=baseline,
                    system=name,
                    mean_a=means[baseline][metric],
                    mean_b=means[name][metric],
                    wins=wins,
                    losses=losses,
                    ties=len(qids) - wins - losses,
                    t_statistic=t_stat,
                    t_pvalue=t_p,
                    permutation_pvalue=perm_p,
                )
            )
    return {
        "baseline": baseline,
        "queries": len(qids),
        "iterations": iterations,
        "seed": seed,
        "overlap": {name: scored[name]["overlap"].to_dict() for name in names},
        "systems": {name: {m: round(means[name][m], 6) for m in metrics} for name in names},
        "comparisons": [c.to_dict() for c in comparisons],
    }


def _mean(per_query: Mapping[str, Mapping[str, float]], qids: list[str], metric: str) -> float:
    return math.fsum(per_query[q][metric] for q in qids) / len(qids)
