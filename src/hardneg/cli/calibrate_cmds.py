"""`hardneg calibrate`: thresholds for a pointwise judge, measured against a stronger judge's labels or qrels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.analysis.labels import labels_from_qrels, labels_from_response_files, labels_from_store
from hardneg.cli import options as opt
from hardneg.cli.common import app, console, handle_errors, print_json, progress, stage_bars
from hardneg.data.atomic import atomic_path
from hardneg.data.formats import check_output
from hardneg.data.io import read_instances, write_rows
from hardneg.errors import ConfigError, EmptyInput
from hardneg.judging.calibration import CALIBRATION_JUDGES, build_scoring_judges, run_calibration


def _labels(
    instances: list[Any],
    labels_store: Path | None,
    labels_stage: int | None,
    labels_from_responses: list[Path] | None,
    qrels: Path | None,
) -> tuple[Any, str]:

    given = [x for x in (labels_store, labels_from_responses, qrels) if x]
    if len(given) != 1:
        raise ConfigError("give exactly one label source: --labels-store DB, --labels-from-responses FILE or --qrels")
    if labels_store is not None:
        if not labels_store.is_file():
            raise ConfigError(f"--labels-store {labels_store}: no such file")
        stage = f" stage {labels_stage}" if labels_stage is not None else " (final verdicts)"
        return labels_from_store(labels_store, stage=labels_stage), f"store {labels_store}{stage}"
    if labels_from_responses:
        names = ", ".join(str(p) for p in labels_from_responses)
        return labels_from_response_files(labels_from_responses), f"responses {names}"
    assert qrels is not None
    return labels_from_qrels(qrels, instances=instances), f"qrels {qrels}"


@app.command("calibrate")
@handle_errors
def calibrate_cmd(
    input_path: Path = typer.Argument(..., metavar="IN", help="Training instances (.jsonl[.gz], .parquet, folder)."),
    judge: str = typer.Option("embedding", "--judge", help="embedding, llm-pointwise, or fused (rank average)."),
    model: str | None = typer.Option(None, "--model", help="Embedder folder or GGUF name/path (judge default)."),
    score: str = typer.Option("reference", "--score", help="Embedding score: reference, query or mean."),
    labels_store: Path | None = typer.Option(None, "--labels-store", help="Judgment store with the labels."),
    labels_stage: int | None = typer.Option(None, "--labels-stage", help="Stage of the store (default: final)."),
    labels_from_responses: list[Path] | None = typer.Option(
        None,
        "--labels-from-responses",
        help="Judged reference-format file(s) (response + negative_passage_ids); later files override earlier.",
    ),
    qrels: Path | None = typer.Option(None, "--qrels", help="BEIR qrels FOLDER/qrels/SPLIT.tsv (label > 0 relevant)."),
    target: str = typer.Option("relevant", "--target", help="Headline metrics for: relevant or better."),
    objective: str = typer.Option("kappa", "--objective", help="kappa, f1 or recall@precision."),
    min_precision: float = typer.Option(0.5, "--min-precision", help="For --objective recall@precision."),
    holdout: float = typer.Option(0.5, "--holdout", help="Share of queries held out for measuring."),
    seed: int = typer.Option(0, "--seed", help="Seed of the query split."),
    routing_recall: float = typer.Option(0.9, "--routing-recall", help="Recall the stage-1 routing cut keeps."),
    limit: int | None = opt.limit("Use only the first N instances."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the thresholds as YAML."),
    save_scores: Path | None = typer.Option(None, "--save-scores", help="Write each pair's raw scores (JSONL)."),
    as_json: bool = opt.as_json("Print the report as JSON only."),
) -> None:
    """Score the negatives of IN with a judge and tune its thresholds against labels (held-out metrics)."""
    import yaml

    if judge not in CALIBRATION_JUDGES:
        raise ConfigError(f"--judge {judge}: one of {', '.join(CALIBRATION_JUDGES)}")
    if target not in ("relevant", "better"):
        raise ConfigError(f"--target {target}: relevant or better")
    if save_scores is not None:
        check_output(save_scores, param="save_scores")  # a name that cannot be written stops here, before scoring
    instances = []
    for instance in read_instances(input_path):
        instances.append(instance)
        if limit is not None and len(instances) >= limit:
            break
    if not instances:
        raise EmptyInput(input_path)
    label_set, source = _labels(instances, labels_store, labels_stage, labels_from_responses, qrels)
    judges = build_scoring_judges(judge, model, score)
    names = [j.kind for j in judges]
    pair_scores: list[dict[tuple[str, str], float]] = []
    with progress() as bar:
        report = run_calibration(
            instances,
            label_set.graded,
            judges,
            target=target,  # type: ignore[arg-type]
            objective=objective,  # type: ignore[arg-type]
            holdout_fraction=holdout,
            seed=seed,
            routing_recall=routing_recall,
            min_precision=min_precision,
            progress=stage_bars(bar, "scoring ({})"),
            pair_scores=pair_scores,
            label_skipped=label_set.skipped,
        )
    if save_scores is not None:
        rows = [
            {
                "query_id": q,
                "docid": d,
                "label": label_set.graded.get((q, d)),
                **{n: m.get((q, d)) for n, m in zip(names, pair_scores, strict=True)},
            }
            for q, d in sorted(set().union(*pair_scores))
        ]
        write_rows(save_scores, rows)
    report = {"input": str(input_path), "judge": judge, "labels": source, **report}
    if output is not None:
        cal, routing = report["calibration"], report["routing"]
        thresholds = {
            "judge": judge,
            "t_better": cal["t_better"],
            "t_worse": cal["t_worse"],
            "route_min_score": routing["threshold"],
            "calibrated_on": {"input": str(input_path), "labels": source, "n_pairs": cal["n_pairs"]},
            "held_out": {k: cal[k] for k in ("auc", "kappa", "precision", "recall")},
            "judges": report["judges"],
        }
        with atomic_path(output) as tmp:
            tmp.write_text(yaml.safe_dump(thresholds, sort_keys=False), encoding="utf-8")
        report["output"] = str(output)
    if as_json:
        print_json(report)
        return
    cal, routing = report["calibration"], report["routing"]
    console.print(f"[bold]{judge}[/bold] on {report['n_instances']} instances, {cal['n_pairs']} labelled pairs")
    console.print(f"labels: {source} ({report['n_relevant']} relevant)")
    console.print(f"thresholds: t_better={cal['t_better']:.4f}  t_worse={cal['t_worse']:.4f}")
    console.print(
        f"held out ({cal['target']}): AUC {cal['auc']:.3f}  kappa {cal['kappa']:.3f}  "
        f"precision {cal['precision']:.3f}  recall {cal['recall']:.3f}"
    )
    console.print(
        f"routing cut {routing['threshold']:.4f}: keeps {routing['recall_held_out']:.2f} of held-out relevant "
        f"negatives, routes {routing['routed_share_held_out']:.2f} of all"
    )
    for failure in report["judge_failures"][:10]:
        console.print(f"[yellow]judge failed[/yellow] {failure['query_id']}: {failure['reason']}")
    for skipped in report["label_skipped"][:10]:
        console.print(f"[yellow]no label[/yellow] {skipped['query_id']}: {skipped['reason']}")
    if output is not None:
        console.print(f"wrote {output}")
