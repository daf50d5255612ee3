"""How good is a judge on my data? A cascade measured against human labels (a testbed), before paying for a run.

`evaluate_judges(testbed, configs, store)` runs each cascade config on the testbed's instances (every call
already in the store is reused, so re-evaluating costs nothing) and compares, per stage and for the final
verdict, the flags with the human labels (`hardneg.analysis.testbed`: a negative with grade >= min_grade is a
false negative; unknown pairs are left out):

- precision, recall, F1 and Cohen's kappa of the flags (the stage's `better` + `worse`, or `better` only);
- for score stages, ROC-AUC and PR-AUC (average precision) of the raw scores, whatever the thresholds;
- what it costs: negatives judged, tokens and seconds per 1,000 negatives (from the stored calls);
- with a `target` (``"precision>=0.7"`` or ``"recall>=0.9"``), the cut on a score stage's raw score that meets
  it: chosen on one seeded half of the queries, its precision, recall and kappa reported on the other half.

A stage is measured on the negatives it judged; the final verdict on every negative of every instance with a
final verdict (an instance whose verdict failed, or that is still pending, is counted and left out).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardneg.analysis.testbed import Testbed, select_testbed, testbed_counts
from hardneg.data.atomic import atomic_path
from hardneg.errors import ConfigError
from hardneg.judge.calibration.thresholds import split_queries
from hardneg.judge.cascade.config import CascadeConfig, as_config
from hardneg.judge.cascade.runner import CascadeReport, run_cascade
from hardneg.judge.store import JudgmentStore, open_store
from hardneg.progress import StageProgress

Pair = tuple[str, str]
_TARGET = re.compile(r"^\s*(precision|recall)\s*>=\s*(0?\.\d+|1(?:\.0*)?|0)\s*$")


@dataclass(slots=True)
class Target:
    """What a cut must reach: precision >= value, or recall >= value."""

    metric: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Target:
        match = _TARGET.match(text)
        if not match:
            raise ConfigError(
                f'expected "precision>=P" or "recall>=R" with 0 <= P, R <= 1; got {text!r}', param="target"
            )
        return cls(match.group(1), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.metric}>={self.value:g}"


@dataclass(slots=True)
class BinaryMetrics:
    pairs: int
    relevant: int  # false negatives among the pairs (human labels)
    flagged: int
    precision: float
    recall: float
    f1: float
    kappa: float | None


def binary_metrics(labels: list[int], predictions: list[int]) -> BinaryMetrics:
    """Precision, recall, F1 and kappa of `predictions` against `labels` (both 0/1, same order)."""
    from sklearn.metrics import cohen_kappa_score

    tp = sum(1 for y, p in zip(labels, predictions, strict=True) if y and p)
    flagged, relevant = sum(predictions), sum(labels)
    precision = tp / flagged if flagged else 0.0
    recall = tp / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    kappa: float | None = None
    if labels and len(set(labels) | set(predictions)) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(cohen_kappa_score(labels, predictions, labels=[0, 1]))
        kappa = None if math.isnan(value) else value
    return BinaryMetrics(len(labels), relevant, flagged, precision, recall, f1, kappa)


def ranking_metrics(labels: list[int], scores: list[float]) -> tuple[float | None, float | None]:
    """(ROC-AUC, PR-AUC as average precision) of scores for binary labels; None when one class is missing."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(set(labels)) < 2:
        return None, None
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def choose_cut(
    scores: dict[Pair, float], labels: dict[Pair, int], target: Target, *, holdout: float = 0.5, seed: int = 0
) -> dict[str, Any]:
    """The raw-score cut meeting `target` on one half of the queries (the one that keeps the most of the other
    metric there), and what it gives on the other half."""
    pairs = sorted(p for p in scores if p in labels)
    tune_q, held_q = split_queries({q for q, _ in pairs}, holdout, seed)
    tune = [p for p in pairs if p[0] in tune_q]
    held = [p for p in pairs if p[0] in held_q]
    best: tuple[float, float] | None = None  # (other metric, threshold)
    for threshold in sorted({scores[p] for p in tune}):
        m = binary_metrics([labels[p] for p in tune], [int(scores[p] >= threshold) for p in tune])
        reached = m.precision if target.metric == "precision" else m.recall
        other = m.recall if target.metric == "precision" else m.precision
        if m.flagged and reached >= target.value and (best is None or other > best[0]):
            best = (other, threshold)
    if best is None:
        return {"target": str(target), "reachable": False, "tune_queries": len(tune_q)}
    threshold = best[1]
    tuned = binary_metrics([labels[p] for p in tune], [int(scores[p] >= threshold) for p in tune])
    out = binary_metrics([labels[p] for p in held], [int(scores[p] >= threshold) for p in held])
    return {
        "target": str(target),
        "reachable": True,
        "threshold": threshold,
        "tune": {"queries": len(tune_q), "precision": tuned.precision, "recall": tuned.recall},
        "held_out": {"queries": len(held_q), **asdict(out)},
    }


@dataclass
class StageEval:
    """One stage (or the final verdict) of one config, against the human labels."""

    config: str
    stage: str  # "1", "2", ... or "final"
    name: str
    backend: str
    metrics: BinaryMetrics
    roc_auc: float | None = None
    pr_auc: float | None = None
    negatives: int = 0  # negatives this stage judged (with or without a human label)
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0  # judge time of the stored calls behind these verdicts
    cut: dict[str, Any] | None = None
    left_out: dict[str, int] = field(default_factory=dict)
    curve: dict[str, list[float]] | None = None  # precision / recall of the raw scores, for the plot

    def per_1000(self) -> dict[str, float]:
        n = max(1, self.negatives)
        return {
            "tokens": round(1000 * (self.tokens_in + self.tokens_out) / n, 1),
            "seconds": round(1000 * self.seconds / n, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "curve"}
        out["per_1000_negatives"] = self.per_1000()
        return out


@dataclass
class JudgeEvalReport:
    testbed: dict[str, Any]
    stages: list[StageEval] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # config name -> calls made now, seconds
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "testbed": self.testbed,
            "runs": self.runs,
            "stages": [s.to_dict() for s in self.stages],
            "seconds": round(self.seconds, 3),
        }


def _flagged(better: list[str], worse: list[str], tags: str) -> set[str]:
    return set(better) | (set(worse) if tags == "both" else set())


def _curve(labels: list[int], scores: list[float]) -> dict[str, list[float]] | None:
    from sklearn.metrics import precision_recall_curve

    if len(set(labels)) < 2:
        return None
    precision, recall, _ = precision_recall_curve(labels, scores)
    return {"precision": [float(x) for x in precision], "recall": [float(x) for x in recall]}


def _stage_eval(
    store: JudgmentStore,
    testbed: Testbed,
    labels: dict[Pair, int],
    config_name: str,
    report: CascadeReport,
    k: int,
    *,
    tags: str,
    target: Target | None,
    holdout: float,
    seed: int,
) -> StageEval:
    stage = report.stages[k - 1]
    truth: list[int] = []
    predicted: list[int] = []
    scores: dict[Pair, float] = {}
    left_out = {"failed": 0, "unlabelled": 0}
    negatives = 0
    queries = {i.query_id for i in testbed.instances}  # the store may hold other queries (a --limit run, ...)
    for verdict in store.iter_verdicts(stage=k, view_hash=stage.view_hash):
        if verdict.query_id not in queries:
            continue
        if verdict.status != "ok":
            left_out["failed"] += 1
            continue
        flagged = _flagged(verdict.better, verdict.worse, tags)
        negatives += len(verdict.docids)
        for docid in verdict.docids:
            pair = (verdict.query_id, docid)
            if verdict.raw_scores and docid in verdict.raw_scores:
                scores[pair] = float(verdict.raw_scores[docid])
            if pair not in labels:
                left_out["unlabelled"] += 1
                continue
            truth.append(labels[pair])
            predicted.append(int(docid in flagged))
    seconds = tokens_in = tokens_out = 0
    for record in store.iter_judgments(stage=k, config_hash=stage.config_hash):
        if record.query_id not in queries:
            continue
        seconds += record.latency_s
        tokens_in += record.tokens_in
        tokens_out += record.tokens_out
    result = StageEval(
        config_name, str(k), stage.name, stage.backend, binary_metrics(truth, predicted),
        negatives=negatives, tokens_in=tokens_in, tokens_out=tokens_out, seconds=seconds, left_out=left_out,
    )  # fmt: skip
    labelled = [p for p in scores if p in labels]
    if labelled:
        y = [labels[p] for p in labelled]
        s = [scores[p] for p in labelled]
        result.roc_auc, result.pr_auc = ranking_metrics(y, s)
        result.curve = _curve(y, s)
        if target is not None:
            result.cut = choose_cut(scores, labels, target, holdout=holdout, seed=seed)
    return result


def _final_eval(
    store: JudgmentStore, testbed: Testbed, labels: dict[Pair, int], config_name: str, report: CascadeReport, tags: str
) -> StageEval:
    verdicts = store.final_verdicts(report.stage_hashes, allow_partial=True)
    pending = store.pending(report.stage_hashes)
    truth: list[int] = []
    predicted: list[int] = []
    left_out = {"failed": 0, "pending": len(pending), "no_verdict": 0, "unlabelled": 0}
    negatives = 0
    for instance in testbed.instances:
        verdict = verdicts.get(instance.query_id)
        if verdict is None:
            left_out["no_verdict"] += instance.query_id not in pending  # pending ones are counted above
            continue
        if verdict.status != "ok":
            left_out["failed"] += 1
            continue
        flagged = _flagged(verdict.better, verdict.worse, tags)
        negatives += len(instance.negatives)
        for docid in instance.negative_ids:
            pair = (instance.query_id, docid)
            if pair not in labels:
                left_out["unlabelled"] += 1
                continue
            truth.append(labels[pair])
            predicted.append(int(docid in flagged))
    return StageEval(
        config_name, "final", "final", "cascade", binary_metrics(truth, predicted), negatives=negatives,
        tokens_in=sum(s.tokens_in for s in report.stages), tokens_out=sum(s.tokens_out for s in report.stages),
        seconds=0.0, left_out=left_out,
    )  # fmt: skip


def evaluate_judges(
    testbed: Testbed,
    configs: list[CascadeConfig | dict[str, Any] | str | Path],
    store: JudgmentStore | str | Path,
    *,
    target: str | Target | None = None,
    tags: str = "both",
    holdout: float = 0.5,
    seed: int = 0,
    progress: StageProgress | None = None,
    limit: int | None = None,
    sample: int | None = None,
) -> JudgeEvalReport:
    """Run each cascade config on the testbed (reusing every stored call) and measure it against the labels.

    `configs`: `CascadeConfig`s, mappings, YAML paths or shipped config names (``"default"``, ...). `limit=N`
    measures on the testbed's first N queries, `sample=N` on a random N (seeded by `seed`). The report's
    `testbed` card carries the counts of the instances measured (`testbed_counts`), never stale ones."""
    if tags not in ("better", "both"):
        raise ConfigError(f"expected better or both; got {tags!r}", param="tags")
    if not configs:
        raise ConfigError("name at least one cascade config", param="configs")
    goal = Target.parse(target) if isinstance(target, str) else target
    testbed = select_testbed(testbed, limit=limit, sample=sample, seed=seed)
    keep = {i.query_id for i in testbed.instances}
    labels = {pair: y for pair, y in testbed.labels().items() if pair[0] in keep}
    started = time.perf_counter()
    out = JudgeEvalReport(testbed={**testbed.card, **testbed_counts(testbed)})
    cascades = [as_config(c) for c in configs]
    names = [c.name for c in cascades]
    if len(set(names)) != len(names):
        names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
    with open_store(store) as db:
        for name, cascade in zip(names, cascades, strict=True):
            run_started = time.perf_counter()
            report = run_cascade(testbed.instances, cascade, db, progress=progress)
            seconds_stored = 0.0
            for k in range(1, len(report.stages) + 1):
                stage = _stage_eval(
                    db, testbed, labels, name, report, k, tags=tags, target=goal, holdout=holdout, seed=seed
                )
                seconds_stored += stage.seconds
                out.stages.append(stage)
            final = _final_eval(db, testbed, labels, name, report, tags)
            final.seconds = seconds_stored
            out.stages.append(final)
            out.runs[name] = {
                "calls_now": sum(s.judged_now for s in report.stages),
                "reused": sum(s.reused for s in report.stages),
                "failed": report.failed,
                "seconds": round(time.perf_counter() - run_started, 3),
            }
    out.seconds = time.perf_counter() - started
    return out


def precision_recall_figure(report: JudgeEvalReport) -> Any:
    """A matplotlib Figure: the precision/recall curve of every score stage, a point per thresholded verdict."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for stage in report.stages:
        label = f"{stage.config} / {stage.stage}: {stage.name}"
        if stage.curve is not None:
            ax.plot(stage.curve["recall"], stage.curve["precision"], label=f"{label} (AP {stage.pr_auc:.2f})")
        ax.scatter([stage.metrics.recall], [stage.metrics.precision], marker="o" if stage.stage != "final" else "*")
    base = report.testbed.get("base_rate")
    if base:
        ax.axhline(base, color="grey", linestyle=":", linewidth=1, label=f"base rate {base:.2f}")
    ax.set_xlabel("recall (human false negatives found)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="x-small", loc="best")
    ax.set_title(f"judges on {report.testbed.get('dataset', 'the testbed')} (points: flags at the thresholds)")
    fig.tight_layout()
    return fig


def check_plotting(param: str = "plot") -> None:
    """Raise `ConfigError` (naming `param`) if plots cannot be drawn (matplotlib missing): call it before the work
    a plot shows."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("plots need matplotlib: pip install 'hardneg[report]'", param=param)


def plot_precision_recall(report: JudgeEvalReport, path: str | Path) -> Path:
    """Write `precision_recall_figure` as a PNG (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        precision_recall_figure(report).savefig(handle, format="png", dpi=120)
    return path


__all__ = [
    "BinaryMetrics",
    "JudgeEvalReport",
    "StageEval",
    "Target",
    "binary_metrics",
    "choose_cut",
    "evaluate_judges",
    "plot_precision_recall",
    "precision_recall_figure",
    "ranking_metrics",
]
