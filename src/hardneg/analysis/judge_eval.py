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

`external={name: file}` adds published judgments (`hardneg.analysis.external`: TREC qrels, flagged at grade >=
`min_grade`, or TREC run files, whose scores get ROC-AUC, PR-AUC and the `target` cut on the same query split),
scored on exactly the testbed's labelled pairs. Every judge says how many of those pairs it covers
(`coverage`); when judges cover different pairs, each is measured again on the pairs every one of them covers
(`shared`: stages after the first, which judge only the pairs routed to them, are left out of it).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardneg.analysis.external import ExternalJudge, parse_external, read_external
from hardneg.analysis.testbed import Testbed, select_testbed, testbed_counts
from hardneg.data.atomic import atomic_path
from hardneg.errors import ConfigError
from hardneg.judging.calibration.thresholds import split_queries
from hardneg.judging.cascade.config import CascadeConfig, as_config
from hardneg.judging.cascade.runner import CascadeReport, run_cascade
from hardneg.judging.store import JudgmentStore, open_store
from hardneg.judging.verdicts import FinalVerdict, StageVerdict
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
    scores: dict[Pair, float],
    labels: dict[Pair, int],
    target: Target,
    *,
    holdout: float = 0.5,
    seed: int = 0,
    queries: set[str] | None = None,
) -> dict[str, Any]:
    """The raw-score cut meeting `target` on one half of the queries (the one that keeps the most of the other
    metric there), and what it gives on the other half. `queries`: the ids split into halves (default: those of
    the scored pairs); give the same set to every judge so that all are cut and measured on the same halves."""
    pairs = sorted(p for p in scores if p in labels)
    tune_q, held_q = split_queries(queries if queries is not None else {q for q, _ in pairs}, holdout, seed)
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

    config: str  # the cascade config's name, or the external judge's name
    stage: str  # "1", "2", ... or "final"; "external" for a qrels or run file
    name: str
    backend: str  # a stage's backend, "cascade" (final), or "qrels" / "run" (external)
    metrics: BinaryMetrics | None  # None for a run file (scores only, no flags)
    roc_auc: float | None = None
    pr_auc: float | None = None
    negatives: int = 0  # negatives this stage judged (with or without a human label)
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0  # judge time of the stored calls behind these verdicts
    cut: dict[str, Any] | None = None
    left_out: dict[str, int] = field(default_factory=dict)
    curve: dict[str, list[float]] | None = None  # precision / recall of the raw scores, for the plot
    coverage: dict[str, int] | None = None  # testbed pairs (labelled), found (covered by this judge), missing
    source: str | None = None  # an external judge's file
    predictions: dict[Pair, int] = field(default_factory=dict, repr=False)  # flags per covered pair (not in JSON)
    scores: dict[Pair, float] = field(default_factory=dict, repr=False)  # raw scores per pair (not in JSON)

    @property
    def label(self) -> str:
        if self.stage == "external":
            return f"{self.config} ({self.name})"
        return f"{self.config} / {'final' if self.stage == 'final' else f'{self.stage}: {self.name}'}"

    @property
    def routed(self) -> bool:
        """A cascade stage after the first: it judges only the pairs routed to it."""
        return self.stage not in ("1", "final", "external")

    def covered(self) -> set[Pair]:
        return set(self.predictions) | set(self.scores)

    def per_1000(self) -> dict[str, float]:
        n = max(1, self.negatives)
        return {
            "tokens": round(1000 * (self.tokens_in + self.tokens_out) / n, 1),
            "seconds": round(1000 * self.seconds / n, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        hidden = ("curve", "predictions", "scores")
        out = {k: v for k, v in asdict(self).items() if k not in hidden}
        out["per_1000_negatives"] = self.per_1000()
        return out


@dataclass
class JudgeEvalReport:
    testbed: dict[str, Any]
    stages: list[StageEval] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # config name -> calls made now, seconds
    seconds: float = 0.0
    target: str | None = None
    # when judges cover different pairs: the pairs every judge (but routed stages) covers, and each judge on them
    shared: dict[str, Any] | None = None
    shared_stages: list[StageEval] = field(default_factory=list)
    labels: dict[Pair, int] = field(default_factory=dict, repr=False)  # the human labels measured against

    def base_rate(self, pairs: set[Pair] | None = None) -> float | None:
        """Share of false negatives among `pairs` (default: every labelled pair)."""
        chosen = [y for p, y in self.labels.items() if pairs is None or p in pairs]
        return sum(chosen) / len(chosen) if chosen else None

    def to_dict(self) -> dict[str, Any]:
        shared = None
        if self.shared is not None:
            shared = {**self.shared, "stages": [s.to_dict() for s in self.shared_stages]}
        return {
            "testbed": self.testbed,
            "runs": self.runs,
            "target": self.target,
            "stages": [s.to_dict() for s in self.stages],
            "shared": shared,
            "seconds": round(self.seconds, 3),
        }


def _flagged(better: list[str], worse: list[str], tags: str) -> set[str]:
    return set(better) | (set(worse) if tags == "both" else set())


@dataclass
class _Tally:
    """A judge's flags on the human-labelled pairs, verdict by verdict, with what was left out and why."""

    labels: dict[Pair, int]
    tags: str
    left_out: dict[str, int]  # counts by reason; `add` counts "failed" and "unlabelled"
    truth: list[int] = field(default_factory=list)
    predicted: list[int] = field(default_factory=list)
    predictions: dict[Pair, int] = field(default_factory=dict)
    negatives: int = 0  # negatives judged, labelled or not

    def add(self, verdict: StageVerdict | FinalVerdict, docids: list[str]) -> bool:
        """Count `verdict` on `docids` (the negatives it judged); False, counted as failed, if it failed."""
        if verdict.status != "ok":
            self.left_out["failed"] += 1
            return False
        flagged = _flagged(verdict.better, verdict.worse, self.tags)
        self.negatives += len(docids)
        for docid in docids:
            pair = (verdict.query_id, docid)
            if pair not in self.labels:
                self.left_out["unlabelled"] += 1
                continue
            self.truth.append(self.labels[pair])
            self.predicted.append(int(docid in flagged))
            self.predictions[pair] = self.predicted[-1]
        return True

    def metrics(self) -> BinaryMetrics:
        return binary_metrics(self.truth, self.predicted)


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
    tally = _Tally(labels, tags, {"failed": 0, "unlabelled": 0})
    scores: dict[Pair, float] = {}
    queries = {i.query_id for i in testbed.instances}  # the store may hold other queries (a --limit run, ...)
    for verdict in store.iter_verdicts(stage=k, view_hash=stage.view_hash):
        if verdict.query_id not in queries or not tally.add(verdict, verdict.docids):
            continue
        raw = verdict.raw_scores or {}
        for docid in verdict.docids:
            if docid in raw and (verdict.query_id, docid) in labels:
                scores[(verdict.query_id, docid)] = float(raw[docid])
    seconds, tokens_in, tokens_out = 0.0, 0, 0
    for record in store.iter_judgments(stage=k, config_hash=stage.config_hash):
        if record.query_id not in queries:
            continue
        seconds += record.latency_s
        tokens_in += record.tokens_in
        tokens_out += record.tokens_out
    result = StageEval(
        config_name, str(k), stage.name, stage.backend, tally.metrics(), negatives=tally.negatives,
        tokens_in=tokens_in, tokens_out=tokens_out, seconds=seconds, left_out=tally.left_out,
        predictions=tally.predictions, scores=scores,
    )  # fmt: skip
    _score(result, labels, target=target, holdout=holdout, seed=seed, queries=queries)
    return result


def _score(
    result: StageEval,
    labels: dict[Pair, int],
    *,
    target: Target | None,
    holdout: float,
    seed: int,
    queries: set[str],
) -> None:
    """Coverage, ROC-AUC, PR-AUC, the curve and the `target` cut of `result`'s scores (on its labelled pairs)."""
    found = len(result.covered() & labels.keys())
    result.coverage = {"pairs": len(labels), "found": found, "missing": len(labels) - found}
    labelled = sorted(p for p in result.scores if p in labels)
    if labelled:
        y = [labels[p] for p in labelled]
        s = [result.scores[p] for p in labelled]
        result.roc_auc, result.pr_auc = ranking_metrics(y, s)
        result.curve = _curve(y, s)
        if target is not None:
            result.cut = choose_cut(result.scores, labels, target, holdout=holdout, seed=seed, queries=queries)


def _final_eval(
    store: JudgmentStore, testbed: Testbed, labels: dict[Pair, int], config_name: str, report: CascadeReport, tags: str
) -> StageEval:
    verdicts = store.final_verdicts(report.stage_hashes, allow_partial=True)
    pending = store.pending(report.stage_hashes)
    tally = _Tally(labels, tags, {"failed": 0, "pending": len(pending), "no_verdict": 0, "unlabelled": 0})
    for instance in testbed.instances:
        verdict = verdicts.get(instance.query_id)
        if verdict is None:
            tally.left_out["no_verdict"] += instance.query_id not in pending  # pending ones are counted above
            continue
        tally.add(verdict, instance.negative_ids)
    result = StageEval(
        config_name, "final", "final", "cascade", tally.metrics(), negatives=tally.negatives,
        tokens_in=sum(s.tokens_in for s in report.stages), tokens_out=sum(s.tokens_out for s in report.stages),
        seconds=0.0, left_out=tally.left_out, predictions=tally.predictions,
    )  # fmt: skip
    found = len(tally.predictions)
    result.coverage = {"pairs": len(labels), "found": found, "missing": len(labels) - found}
    return result


def _external_eval(
    judge: ExternalJudge,
    labels: dict[Pair, int],
    *,
    min_grade: int,
    target: Target | None,
    holdout: float,
    seed: int,
    queries: set[str],
) -> StageEval:
    """A qrels or run file on the testbed's labelled pairs (pairs it lacks are counted, never guessed)."""
    values = {p: v for p, v in judge.values.items() if p in labels}
    name = f"qrels, grade >= {min_grade}" if judge.kind == "qrels" else "run scores"
    result = StageEval(judge.name, "external", name, judge.kind, None, negatives=len(values), source=judge.path)
    if judge.kind == "qrels":
        result.predictions = {p: int(v >= min_grade) for p, v in values.items()}
        pairs = sorted(result.predictions)
        result.metrics = binary_metrics([labels[p] for p in pairs], [result.predictions[p] for p in pairs])
    else:
        result.scores = values
    _score(result, labels, target=target, holdout=holdout, seed=seed, queries=queries)
    assert result.coverage is not None
    result.coverage["in_file"] = len(judge.values)
    return result


def _on_pairs(stage: StageEval, pairs: set[Pair], labels: dict[Pair, int]) -> StageEval:
    """`stage` measured again on `pairs` only (no cut: the cuts are on each judge's own pairs)."""
    chosen = sorted(pairs)
    out = StageEval(stage.config, stage.stage, stage.name, stage.backend, None, source=stage.source)
    out.predictions = {p: stage.predictions[p] for p in chosen if p in stage.predictions}
    out.scores = {p: stage.scores[p] for p in chosen if p in stage.scores}
    if stage.metrics is not None:
        out.metrics = binary_metrics([labels[p] for p in out.predictions], list(out.predictions.values()))
    y = [labels[p] for p in out.scores]
    if y:
        out.roc_auc, out.pr_auc = ranking_metrics(y, list(out.scores.values()))
        out.curve = _curve(y, list(out.scores.values()))
    out.coverage = {"pairs": len(pairs), "found": len(out.covered()), "missing": len(pairs) - len(out.covered())}
    return out


def _share(out: JudgeEvalReport) -> None:
    """When the judges (routed stages aside) cover different pairs, measure each on the pairs all of them cover."""
    primary = [s for s in out.stages if not s.routed]
    covered = [s.covered() & out.labels.keys() for s in primary]
    if len(primary) < 2 or len({frozenset(c) for c in covered}) < 2:
        return
    pairs = set.intersection(*covered)
    out.shared = {
        "pairs": len(pairs),
        "of": len(out.labels),
        "false_negatives": sum(out.labels[p] for p in pairs),
        "judges": [s.label for s in primary],
        "left_out_routed": [s.label for s in out.stages if s.routed],
    }
    out.shared_stages = [_on_pairs(s, pairs, out.labels) for s in primary]


def evaluate_judges(
    testbed: Testbed,
    configs: list[CascadeConfig | dict[str, Any] | str | Path] | None = None,
    store: JudgmentStore | str | Path | None = None,
    *,
    external: Mapping[str, str | Path] | list[str] | None = None,
    min_grade: int | None = None,
    target: str | Target | None = None,
    tags: str = "both",
    holdout: float = 0.5,
    seed: int = 0,
    progress: StageProgress | None = None,
    limit: int | None = None,
    sample: int | None = None,
) -> JudgeEvalReport:
    """Run each cascade config on the testbed (reusing every stored call) and measure it against the labels.

    `configs`: `CascadeConfig`s, mappings, YAML paths or shipped config names (``"default"``, ...); they need a
    `store`. `external`: {name: TREC qrels or run file} (or ``"NAME=FILE"`` strings), measured beside them; a
    qrels grade >= `min_grade` (default: the testbed's) is a flag. `limit=N` measures on the testbed's first N
    queries, `sample=N` on a random N (seeded by `seed`). The report's `testbed` card carries the counts of the
    instances measured (`testbed_counts`), never stale ones."""
    if tags not in ("better", "both"):
        raise ConfigError(f"expected better or both; got {tags!r}", param="tags")
    if not 0.0 < holdout < 1.0:  # checked before any judging, not when the cut is chosen
        raise ConfigError(f"the held-out share of queries must be between 0 and 1; got {holdout}", param="holdout")
    configs = list(configs or [])
    if isinstance(external, list):
        specs = [parse_external(spec) for spec in external]
        if len({n for n, _ in specs}) != len(specs):
            raise ConfigError("each external judge needs its own NAME", param="external")
        external = dict(specs)
    external = dict(external or {})
    if not configs and not external:
        raise ConfigError("name at least one cascade config or external judge", param="configs")
    if configs and store is None:
        raise ConfigError("cascade configs need a judgment store", param="store")
    goal = Target.parse(target) if isinstance(target, str) else target
    grade = testbed.min_grade if min_grade is None else int(min_grade)
    if grade < 1:
        raise ConfigError(f"must be at least 1 (grade 0 is judged not relevant); got {grade}", param="min_grade")
    judges = [read_external(name, path) for name, path in external.items()]  # bad files stop here, before judging
    testbed = select_testbed(testbed, limit=limit, sample=sample, seed=seed)
    keep = {i.query_id for i in testbed.instances}
    labels = {pair: y for pair, y in testbed.labels().items() if pair[0] in keep}
    started = time.perf_counter()
    out = JudgeEvalReport(testbed={**testbed.card, **testbed_counts(testbed)}, target=str(goal) if goal else None)
    out.labels = labels
    cascades = [as_config(c) for c in configs]
    names = [c.name for c in cascades]
    if len(set(names)) != len(names):
        names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
    clash = sorted(set(names) & set(external))
    if clash:
        raise ConfigError(f"an external judge has the name of a cascade config: {', '.join(clash)}", param="external")
    if cascades and store is not None:
        _run_configs(out, testbed, labels, cascades, names, store, goal, tags, holdout, seed, progress)
    for judge in judges:
        out.stages.append(
            _external_eval(judge, labels, min_grade=grade, target=goal, holdout=holdout, seed=seed, queries=keep)
        )
    _share(out)
    out.seconds = time.perf_counter() - started
    return out


def _run_configs(
    out: JudgeEvalReport,
    testbed: Testbed,
    labels: dict[Pair, int],
    cascades: list[CascadeConfig],
    names: list[str],
    store: JudgmentStore | str | Path,
    goal: Target | None,
    tags: str,
    holdout: float,
    seed: int,
    progress: StageProgress | None,
) -> None:
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


_LINESTYLES = ("-", "--", "-.", ":")
_CURVE_MARKERS = ("s", "^", "v", "P", "X", "h", "<", ">")  # never o, * or D: those mark flags


def _panels(report: JudgeEvalReport) -> list[tuple[str, list[StageEval], float | None]]:
    """(title, judges, base rate) per panel: first every judge on the same pairs, then each routed stage alone."""
    if report.shared is not None:
        main = report.shared_stages
        pairs = set.intersection(*(s.covered() for s in main)) if main else set()
        title = f"every judge on the same {len(pairs)} pairs (those all judges cover)"
    else:
        main = [s for s in report.stages if not s.routed]
        pairs = main[0].covered() & report.labels.keys() if main else set()
        title = f"every judge on the same {len(pairs)} labelled pairs"
    panels = [(title, main, report.base_rate(pairs))]
    for stage in report.stages:
        pairs = stage.covered() & report.labels.keys()
        if stage.routed and pairs:
            title = f"routed pairs only: {stage.label} (the {len(pairs)} pairs sent to it)"
            panels.append((title, [stage], report.base_rate(pairs)))
    return panels


def precision_recall_figure(report: JudgeEvalReport) -> Any:
    """A matplotlib Figure: the precision/recall curve of every score judge and a point per judge's flags, every
    judge of one panel on the same pairs (the first panel); a stage that judges only routed pairs gets its own."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend

    panels = _panels(report)
    fig = Figure(figsize=(7, 5 * len(panels)))
    colors = [f"C{i % 10}" for i in range(len(report.stages) + 1)]
    color_of = {s.label: colors[i] for i, s in enumerate(report.stages)}
    for row, (title, stages, base) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, row + 1)
        for i, stage in enumerate(stages):
            color = color_of.get(stage.label, "C0")
            if stage.curve is not None:
                recall, precision = stage.curve["recall"], stage.curve["precision"]
                ax.plot(
                    recall, precision, color=color, linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                    marker=_CURVE_MARKERS[i % len(_CURVE_MARKERS)], markersize=4,
                    markevery=max(1, len(recall) // 8), label=f"{stage.label}: scores (AP {stage.pr_auc:.2f})",
                )  # fmt: skip
            if stage.metrics is not None and stage.metrics.flagged:
                marker, size = (
                    ("*", 180) if stage.stage == "final" else ("D", 60) if stage.stage == "external" else ("o", 50)
                )
                what = "final verdict" if stage.stage == "final" else "labels" if stage.stage == "external" else "flags"
                ax.scatter(
                    [stage.metrics.recall], [stage.metrics.precision], marker=marker, s=size, color=color,
                    edgecolors="black", linewidths=0.6, zorder=3,
                    label=f"{stage.label}: {what} (P {stage.metrics.precision:.2f}, R {stage.metrics.recall:.2f})",
                )  # fmt: skip
        if base:
            ax.axhline(base, color="grey", linestyle=":", linewidth=1, label=f"base rate {base:.2f} (a random judge)")
        ax.set_xlabel("recall (human false negatives found)")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize="x-small", loc="upper right")
        ax.set_title(title, fontsize="small")
    fig.suptitle(f"judges against people on {report.testbed.get('dataset', 'the testbed')}", fontsize="medium")
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
    "parse_external",
    "plot_precision_recall",
    "precision_recall_figure",
    "ranking_metrics",
]
