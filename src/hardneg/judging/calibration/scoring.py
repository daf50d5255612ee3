"""Scoring labelled instances with pointwise judges and calibrating their thresholds (`hardneg calibrate`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.backends.embedding import EmbeddingJudge
from hardneg.judging.backends.llama_pointwise import LlamaPointwiseJudge
from hardneg.judging.base import Judge
from hardneg.judging.calibration.thresholds import Objective, Pair, Target, calibrate, routing_threshold
from hardneg.retrieval.fusion import rank_average

ProgressCallback = Callable[[int, int], None]  # (instances done, total)


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
    """Per-instance rank average (see `hardneg.retrieval.fusion.rank_average`) of several judges' pair scores."""
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


CALIBRATION_JUDGES = ("embedding", "llm-pointwise", "fused")


def build_scoring_judges(judge: str, model: str | None = None, score: str = "reference") -> list[Judge]:
    """The judge(s) whose scores are calibrated: one, or embedding + llm-pointwise for "fused"."""
    if judge == "embedding":
        return [EmbeddingJudge(model=model, score=score)]
    if judge == "llm-pointwise":
        return [LlamaPointwiseJudge(model=model) if model else LlamaPointwiseJudge()]
    if judge == "fused":
        return [EmbeddingJudge(score=score), LlamaPointwiseJudge(model=model) if model else LlamaPointwiseJudge()]
    raise ConfigError(f"unknown judge {judge!r} for calibration: {', '.join(CALIBRATION_JUDGES)}")


def run_calibration(
    instances: Sequence[Instance],
    labels: Mapping[Pair, int],
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
    label_skipped: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Score the labelled instances with each judge (rank-averaged if several), calibrate, and report.

    Only instances with labels are scored (an LLM judge is slow); failures are listed in the report.
    `labels`: 0 / 1 / 2 per pair (`hardneg.analysis.labels.LabelSet.graded`); `label_skipped` lists the queries
    the label source left out, for the report. `pair_scores`, when given, receives each judge's raw scores.
    """
    labelled_queries = {q for q, _ in labels}
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
        labels,
        holdout_fraction=holdout_fraction,
        seed=seed,
        target=target,
        objective=objective,
        min_precision=min_precision,
    )
    routing = routing_threshold(scores, labels, recall=routing_recall, holdout_fraction=holdout_fraction, seed=seed)
    return {
        "judges": [j.config() for j in judges],
        "fused": len(judges) > 1,
        "n_instances": len(todo),
        "n_labelled_pairs": result.n_pairs,
        "n_relevant": sum(1 for p in scores if labels.get(p, 0) > 0),
        "calibration": result.to_dict(),
        "routing": routing.to_dict(),
        "judge_failures": [{"query_id": q, "reason": r} for q, r in failures],
        "label_skipped": [{"query_id": q, "reason": r} for q, r in label_skipped],
    }
