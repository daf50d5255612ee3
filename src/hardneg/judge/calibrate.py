"""Turning a pointwise judge's scores into better / worse thresholds, measured on held-out queries.

Labels come from a stronger judge (for example GPT-4o's verdicts) or from qrels, per (query_id, docid):
0 = not relevant, 1 = relevant but worse than the positive, 2 = better (at least as good as the positive).
Binary labels (0/1, e.g. from qrels) mean relevant / not.

Queries are split in two halves (seeded): thresholds are tuned on one half and every reported metric is
measured on the other, so the numbers are not inflated by tuning on the data they describe.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.metrics import cohen_kappa_score, precision_recall_curve, precision_score, recall_score, roc_auc_score

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judge.base import Judge

Pair = tuple[str, str]  # (query_id, docid)
Target = Literal["relevant", "better"]
Objective = Literal["kappa", "f1", "recall@precision"]
ProgressCallback = Callable[[int, int], None]  # (instances done, total)

# Candidate thresholds are capped so tuning stays fast on large label sets.
_MAX_CANDIDATES = 1000


@dataclass(slots=True)
class CalibrationResult:
    """Thresholds (tuned on one half of the queries) and their metrics on the other half."""

    t_better: float
    t_worse: float
    auc: float  # held-out ROC AUC of the score for `target`
    kappa: float  # held-out Cohen's kappa of (score >= threshold) vs the labels, for `target`
    precision: float
    recall: float
    n_pairs: int  # all labelled pairs with a score
    held_out_metrics: dict[str, Any] = field(default_factory=dict)  # per target, plus split sizes
    target: str = "relevant"
    objective: str = "kappa"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RoutingResult:
    """A stage-1 routing cut: negatives scoring >= threshold go on to the next stage."""

    threshold: float
    target_recall: float
    recall_tune: float
    recall_held_out: float  # share of held-out relevant negatives at or above the cut
    routed_share_held_out: float  # share of held-out negatives at or above the cut (the stage-2 load)
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_queries(query_ids: Iterable[str], holdout_fraction: float = 0.5, seed: int = 0) -> tuple[set, set]:
    """(tune, held-out) query ids: a seeded shuffle of the sorted ids, so the split is reproducible."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ConfigError(f"holdout_fraction must be in (0, 1), not {holdout_fraction}")
    ids = sorted(set(query_ids))
    if len(ids) < 2:
        raise ConfigError(f"calibration needs at least 2 labelled queries to split, got {len(ids)}")
    random.Random(seed).shuffle(ids)
    n_held = min(len(ids) - 1, max(1, round(holdout_fraction * len(ids))))
    return set(ids[n_held:]), set(ids[:n_held])


def _arrays(
    scores: Mapping[Pair, float], labels: Mapping[Pair, int], queries: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted(p for p in labels if p in scores and p[0] in queries)
    s = np.asarray([scores[p] for p in pairs], dtype=np.float64)
    y = np.asarray([int(labels[p]) for p in pairs], dtype=np.int64)
    return s, y


def _binary(y: np.ndarray, target: Target) -> np.ndarray:
    return (y >= 2).astype(int) if target == "better" else (y >= 1).astype(int)


def _candidates(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    # precision_recall_curve returns exactly the distinct score values at which the prediction changes.
    _, _, thresholds = precision_recall_curve(y, s)
    if len(thresholds) > _MAX_CANDIDATES:
        thresholds = np.quantile(thresholds, np.linspace(0.0, 1.0, _MAX_CANDIDATES))
    return thresholds


def _metrics(s: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of predicting `score >= threshold` for binary labels y."""
    pred = (s >= threshold).astype(int)
    both = len(set(y.tolist())) > 1
    return {
        "auc": float(roc_auc_score(y, s)) if both else math.nan,
        "kappa": float(cohen_kappa_score(y, pred)) if len(set((y + 2 * pred).tolist())) > 1 else 0.0,
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "flagged_share": float(pred.mean()) if len(pred) else 0.0,
        "n_pairs": len(y),
        "n_relevant": int(y.sum()),
    }


def tune_threshold(s: np.ndarray, y: np.ndarray, objective: Objective = "kappa", min_precision: float = 0.5) -> float:
    """The threshold on `s` that best predicts binary labels `y` under `objective`."""
    if y.sum() == 0 or y.sum() == len(y):
        raise ConfigError("cannot tune a threshold: the tuning half has only one class of labels")
    best_t, best_v = math.inf, -math.inf
    for t in _candidates(s, y):
        pred = (s >= t).astype(int)
        if objective == "kappa":
            value = cohen_kappa_score(y, pred)
        elif objective == "f1":
            p = precision_score(y, pred, zero_division=0)
            r = recall_score(y, pred, zero_division=0)
            value = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        elif objective == "recall@precision":
            p = precision_score(y, pred, zero_division=0)
            value = recall_score(y, pred, zero_division=0) if p >= min_precision else -1.0 + p
        else:
            raise ConfigError(f"unknown objective {objective!r}: kappa, f1 or recall@precision")
        if value > best_v:
            best_t, best_v = float(t), float(value)
    return best_t


def calibrate(
    scores: Mapping[Pair, float],
    labels: Mapping[Pair, int],
    *,
    holdout_fraction: float = 0.5,
    seed: int = 0,
    target: Target = "relevant",
    objective: Objective = "kappa",
    min_precision: float = 0.5,
) -> CalibrationResult:
    """Tune t_worse on "relevant" (label >= 1) and t_better on "better" (label 2), then measure held out.

    With binary labels there is no "better" class: t_better = t_worse (every flagged negative is better).
    `target` picks which threshold the headline fields (auc, kappa, precision, recall) describe.
    """
    if target not in ("relevant", "better"):
        raise ConfigError(f"target must be 'relevant' or 'better', not {target!r}")
    bad = {v for v in labels.values() if v not in (0, 1, 2)}
    if bad:
        raise ConfigError(f"labels must be 0 (none), 1 (worse / relevant) or 2 (better); got {sorted(bad)[:5]}")
    labelled = {p for p in labels if p in scores}
    if not labelled:
        raise ConfigError("no scored pair has a label: do the query_ids and docids of scores and labels match?")
    graded = any(labels[p] == 2 for p in labelled)
    if target == "better" and not graded:
        raise ConfigError("target 'better' needs graded labels (2 = better); these labels are binary")
    tune_q, held_q = split_queries((q for q, _ in labelled), holdout_fraction, seed)
    s_tune, y_tune = _arrays(scores, labels, tune_q)
    s_held, y_held = _arrays(scores, labels, held_q)
    t_worse = tune_threshold(s_tune, _binary(y_tune, "relevant"), objective, min_precision)
    t_better = tune_threshold(s_tune, _binary(y_tune, "better"), objective, min_precision) if graded else t_worse
    t_better = max(t_better, t_worse)  # the cascade requires t_better >= t_worse
    held: dict[str, Any] = {
        "relevant": _metrics(s_held, _binary(y_held, "relevant"), t_worse),
        "tune_relevant": _metrics(s_tune, _binary(y_tune, "relevant"), t_worse),
        "n_queries_tune": len(tune_q),
        "n_queries_held_out": len(held_q),
    }
    if graded:
        held["better"] = _metrics(s_held, _binary(y_held, "better"), t_better)
        held["tune_better"] = _metrics(s_tune, _binary(y_tune, "better"), t_better)
    head = held[target]
    return CalibrationResult(
        t_better=t_better,
        t_worse=t_worse,
        auc=head["auc"],
        kappa=head["kappa"],
        precision=head["precision"],
        recall=head["recall"],
        n_pairs=len(labelled),
        held_out_metrics=held,
        target=target,
        objective=objective,
    )


def routing_threshold(
    scores: Mapping[Pair, float],
    labels: Mapping[Pair, int],
    *,
    recall: float = 0.9,
    holdout_fraction: float = 0.5,
    seed: int = 0,
) -> RoutingResult:
    """The highest score cut that keeps at least `recall` of the tuning half's relevant negatives (label >= 1).

    Stage 1 passes negatives scoring >= the cut on to stage 2; the held-out half tells how many relevant
    negatives really get through and what share of all negatives stage 2 then has to judge.
    """
    if not 0.0 < recall <= 1.0:
        raise ConfigError(f"recall must be in (0, 1], not {recall}")
    labelled = {p for p in labels if p in scores}
    if not labelled:
        raise ConfigError("no scored pair has a label")
    tune_q, held_q = split_queries((q for q, _ in labelled), holdout_fraction, seed)
    s_tune, y_tune = _arrays(scores, labels, tune_q)
    s_held, y_held = _arrays(scores, labels, held_q)
    relevant = np.sort(s_tune[y_tune >= 1])[::-1]
    if len(relevant) == 0:
        raise ConfigError("cannot place a routing cut: the tuning half has no relevant negative")
    # Keep the top ceil(recall * n) relevant scores: the cut is the lowest of them.
    threshold = float(relevant[max(0, math.ceil(recall * len(relevant)) - 1)])
    held_rel = s_held[y_held >= 1]
    return RoutingResult(
        threshold=threshold,
        target_recall=recall,
        recall_tune=float((relevant >= threshold).mean()),
        recall_held_out=float((held_rel >= threshold).mean()) if len(held_rel) else math.nan,
        routed_share_held_out=float((s_held >= threshold).mean()) if len(s_held) else math.nan,
        n_pairs=len(labelled),
    )


def score_instances(
    judge: Judge,
    instances: Iterable[Instance],
    *,
    total: int | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[dict[Pair, float], list[tuple[str, str]]]:
    """Score every negative of every instance with a pointwise judge.

    Returns the scores per (query_id, docid) and the (query_id, reason) of instances the judge failed on
    (they are left out of calibration rather than guessed).
    """
    scores: dict[Pair, float] = {}
    failures: list[tuple[str, str]] = []
    items = ((inst, inst.negative_ids) for inst in instances)
    for done, (instance, out) in enumerate(judge.judge_many(items), start=1):
        if out.status != "ok" or out.scores is None:
            failures.append((instance.query_id, out.reason or out.status))
        else:
            for docid, value in out.scores.items():
                scores[(instance.query_id, docid)] = float(value)
        if progress is not None:
            progress(done, total or done)
    return scores, failures


def fuse_scores(score_maps: Sequence[Mapping[Pair, float]]) -> dict[Pair, float]:
    """Per-instance rank average (see `hardneg.judge.fusion.rank_average`) of several judges' pair scores."""
    from hardneg.judge.fusion import rank_average

    by_query: dict[str, list[dict[str, float]]] = {}
    for k, score_map in enumerate(score_maps):
        for (qid, docid), value in score_map.items():
            per_judge = by_query.setdefault(qid, [{} for _ in score_maps])
            per_judge[k][docid] = value
    fused: dict[Pair, float] = {}
    for qid, dicts in by_query.items():
        for docid, value in rank_average(dicts).items():
            fused[(qid, docid)] = value
    return fused


def labels_from_verdicts(
    verdicts: Iterable[tuple[str, Sequence[str], Sequence[str], Sequence[str]]],
) -> dict[Pair, int]:
    """Labels from (query_id, judged docids, better, worse): 2 better, 1 worse, 0 judged but not listed."""
    labels: dict[Pair, int] = {}
    for qid, docids, better, worse in verdicts:
        better_set, worse_set = set(better), set(worse)
        for docid in docids:
            labels[(qid, docid)] = 2 if docid in better_set else 1 if docid in worse_set else 0
    return labels


@dataclass(slots=True)
class LabelSet:
    """Labels per (query_id, docid) plus the instances whose verdict could not be used, with reasons."""

    labels: dict[Pair, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # query_id -> the file or stage its verdict came from


def labels_from_response_files(paths: Sequence[str]) -> LabelSet:
    """Labels from judged reference-format files (`response`, `negative_passage_ids`, `finish_reason`).

    Files are read in order and a later file's verdict replaces an earlier one for the same query: pass the
    stage-1 file, then the stage-2 file, to get the final verdict (stage 2 where routed, else stage 1).
    Unparseable verdicts are skipped and reported, never read as "no false negatives".
    """
    from hardneg.data.io import iter_jsonl
    from hardneg.errors import InputError
    from hardneg.judge.parse import parse_verdict

    per_query: dict[str, tuple[list[str], list[str], list[str]]] = {}
    skipped: dict[str, str] = {}
    sources: dict[str, str] = {}
    for path in paths:
        for line, row in iter_jsonl(path):
            if not isinstance(row, dict) or "query_id" not in row:
                raise InputError(path, line, "query_id", "missing: not a judged instance row")
            qid = str(row["query_id"])
            docids = row.get("negative_passage_ids")
            if not isinstance(docids, list):
                raise InputError(path, line, "negative_passage_ids", "missing or not a list (not a judged row?)")
            if "response" not in row:
                raise InputError(path, line, "response", "missing (not a judged row?)")
            docids = [str(d) for d in docids]
            parsed = parse_verdict(row["response"], docids, row.get("finish_reason"))
            sources[qid] = str(path)
            if not parsed.ok:
                skipped[qid] = f"{path}:{line}: {parsed.reason}"
                per_query.pop(qid, None)
                continue
            skipped.pop(qid, None)
            per_query[qid] = (docids, parsed.better, parsed.worse)
    labels = labels_from_verdicts((q, d, b, w) for q, (d, b, w) in per_query.items())
    return LabelSet(labels=labels, skipped=sorted(skipped.items()), sources=sources)


def labels_from_store(path: str, stage: int | None = None, judge_name: str | None = None) -> LabelSet:
    """Labels from a judgment store: the verdicts of `stage`, or each query's final verdict when stage is None."""
    from hardneg.judge.store import JudgmentStore

    best: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    with JudgmentStore(path, readonly=True) as store:
        for record in store.iter_judgments(stage=stage, judge_name=judge_name):
            # Rows come ordered by (stage, query_id, time): a later stage or attempt replaces an earlier one.
            if record.status != "ok" or record.better is None or record.worse is None:
                skipped[record.query_id] = f"stage {record.stage}: {record.status} {record.reason}".strip()
                best.pop(record.query_id, None)
                continue
            skipped.pop(record.query_id, None)
            best[record.query_id] = record
    labels = labels_from_verdicts((q, r.docids, r.better, r.worse) for q, r in best.items())
    return LabelSet(
        labels=labels,
        skipped=sorted(skipped.items()),
        sources={q: f"{path} stage {r.stage}" for q, r in best.items()},
    )


def labels_from_qrels(path: str, instances: Iterable[Instance]) -> LabelSet:
    """Labels from a BEIR qrels TSV for the negatives of `instances`: qrels score > 0 is relevant (1)."""
    from pathlib import Path

    from hardneg.data.beir import load_qrels
    from hardneg.errors import InputError

    qrels_path = Path(path)
    if qrels_path.parent.name != "qrels" or qrels_path.suffix != ".tsv":
        raise InputError(path, None, "-", "expected a BEIR qrels file: FOLDER/qrels/SPLIT.tsv")
    # load_qrels reads FOLDER/qrels/SPLIT.tsv (and checks every line), so pass it the folder and split.
    qrels = load_qrels(qrels_path.parent.parent, qrels_path.stem)
    labels: dict[Pair, int] = {}
    for instance in instances:
        judged = qrels.get(instance.query_id, {})
        for docid in instance.negative_ids:
            labels[(instance.query_id, docid)] = 1 if judged.get(docid, 0) > 0 else 0
    return LabelSet(labels=labels)


CALIBRATION_JUDGES = ("embedding", "llm-pointwise", "fused")


def build_scoring_judges(judge: str, model: str | None = None, score: str = "reference") -> list[Judge]:
    """The judge(s) whose scores are calibrated: one, or embedding + llm-pointwise for "fused"."""
    from hardneg.judge.embedding import EmbeddingJudge
    from hardneg.judge.pointwise import LlamaPointwiseJudge

    if judge == "embedding":
        return [EmbeddingJudge(model=model, score=score)]
    if judge == "llm-pointwise":
        return [LlamaPointwiseJudge(model=model) if model else LlamaPointwiseJudge()]
    if judge == "fused":
        return [EmbeddingJudge(score=score), LlamaPointwiseJudge(model=model) if model else LlamaPointwiseJudge()]
    raise ConfigError(f"unknown judge {judge!r} for calibration: {', '.join(CALIBRATION_JUDGES)}")


def run_calibration(
    instances: Sequence[Instance],
    label_set: LabelSet,
    judges: Sequence[Judge],
    *,
    target: Target = "relevant",
    objective: Objective = "kappa",
    holdout_fraction: float = 0.5,
    seed: int = 0,
    routing_recall: float = 0.9,
    min_precision: float = 0.5,
    progress: Callable[[str, int, int], None] | None = None,
    pair_scores: list[dict[Pair, float]] | None = None,
) -> dict[str, Any]:
    """Score the labelled instances with each judge (rank-averaged if several), calibrate, and report.

    Only instances with labels are scored (an LLM judge is slow); failures are listed in the report.
    `pair_scores`, when given, receives each judge's raw scores (to save them for later analysis).
    """
    labelled_queries = {q for q, _ in label_set.labels}
    todo = [inst for inst in instances if inst.query_id in labelled_queries]
    if not todo:
        raise ConfigError("no instance of the input has labels: do the query_ids match the label source?")
    score_maps: list[dict[Pair, float]] = []
    failures: list[tuple[str, str]] = []
    for judge in judges:
        name = judge.kind

        def report(done: int, total: int, name: str = name) -> None:
            if progress is not None:
                progress(name, done, total)

        scores, failed = score_instances(judge, todo, total=len(todo), progress=report)
        judge.close()
        score_maps.append(scores)
        if pair_scores is not None:
            pair_scores.append(scores)
        failures.extend((q, f"{name}: {reason}") for q, reason in failed)
    scores = score_maps[0] if len(score_maps) == 1 else fuse_scores(score_maps)
    if len(score_maps) > 1:  # a pair counts only if every judge scored it
        scores = {p: s for p, s in scores.items() if all(p in m for m in score_maps)}
    result = calibrate(
        scores,
        label_set.labels,
        holdout_fraction=holdout_fraction,
        seed=seed,
        target=target,
        objective=objective,
        min_precision=min_precision,
    )
    routing = routing_threshold(
        scores, label_set.labels, recall=routing_recall, holdout_fraction=holdout_fraction, seed=seed
    )
    return {
        "judges": [j.config() for j in judges],
        "fused": len(judges) > 1,
        "n_instances": len(todo),
        "n_labelled_pairs": result.n_pairs,
        "n_relevant": sum(1 for p in scores if label_set.labels.get(p, 0) > 0),
        "calibration": result.to_dict(),
        "routing": routing.to_dict(),
        "judge_failures": [{"query_id": q, "reason": r} for q, r in failures],
        "label_skipped": [{"query_id": q, "reason": r} for q, r in label_set.skipped],
    }
