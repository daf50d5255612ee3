"""`hardneg experiment`: mine -> judge -> variants -> train -> evaluate -> tables, as one cached step graph.

Each stage is the library function of its own module (`hardneg.mine`, `hardneg.judging.cascade`,
`hardneg.relabel`, `hardneg.train`, `hardneg.evaluate`); this module only wires them together, caches their
outputs (see `hardneg.experiment.steps`) and assembles the results.

Experiment folder layout:
- `steps/<kind>/<label>-<key>/`: one folder per step (its outputs + `manifest.json`);
- `cache/judgments.sqlite`: the judgment store (judging resumes call by call after a crash);
- `steps.log.jsonl`: one line per step and run (cached / ran / failed);
- `results.{json,md,csv}`, `plots/*.png`: the tables of the last run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.cluster import resolve_engine
from hardneg.data.beir import load_beir
from hardneg.data.io import read_instances, write_instances
from hardneg.errors import ConfigError, InputError
from hardneg.experiment.baselines import add_baseline
from hardneg.experiment.baselines import topk_percpos as topk_percpos  # re-exported: it lived here
from hardneg.experiment.config import BASELINES, DataSource, ExperimentConfig, Variant
from hardneg.experiment.evaluation import evaluate_model, paired_significance
from hardneg.experiment.results import VariantScores, build_results, write_results
from hardneg.experiment.steps import MODEL_DIR, TRAIN_FILE, Step, StepContext, StepGraph, StepRecord, tenths
from hardneg.judging.cascade import parse_config, run_cascade
from hardneg.judging.cascade.config import identity_dump
from hardneg.judging.store import JudgmentStore
from hardneg.mining.config import MineConfig, MineReport, parse_range
from hardneg.mining.miner import mine_instances
from hardneg.relabeling import RelabelOptions, relabel_file, verdicts_from_dicts
from hardneg.training.retriever import RetrieverConfig, train_retriever

Progress = Callable[[str], None]


# ----------------------------------------------------------------------------------------------- step bodies


def _mine_step(
    source: DataSource, options: dict[str, Any], engine: dict[str, Any]
) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:

        # the experiment's engine unless `mine:` names one; kept out of the step's config (its cache key)
        config = _mine_config({**engine, **options})
        assert source.beir is not None
        ctx.progress(f"loading {source.beir} ({source.split})")
        data = load_beir(source.beir, source.split)
        qrels = data.qrels
        if source.max_queries is not None:
            # A deterministic slice: the first N query ids in sorted order.
            keep = sorted(qrels)[: source.max_queries]
            qrels = {qid: qrels[qid] for qid in keep}
        report = MineReport(subset=source.name, split=source.split)
        instances = mine_instances(
            data.corpus,
            data.queries,
            qrels,
            config,
            subset=source.name,
            report=report,
            progress=lambda what, done, total: ctx.progress(f"{what} {done}/{total}") if done == total else None,
        )
        count = write_instances(ctx.out / TRAIN_FILE, instances)
        return {"instances": count, "mine": report.to_dict()}

    return run


def _mine_config(options: dict[str, Any]) -> Any:

    options = dict(options)
    if "range" in options:
        options["range_start"], options["range_end"] = parse_range(str(options.pop("range")))
    fields = {f.name for f in dataclasses.fields(MineConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"mine.{unknown[0]}: unknown mining option (known: range, {', '.join(sorted(fields))})")
    config = MineConfig(**options)
    config.check()
    return config


def _file_step(source: DataSource) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:
        assert source.file is not None
        file = source.file

        def rows() -> Any:
            for n, inst in enumerate(read_instances(file)):
                if source.max_queries is not None and n >= source.max_queries:
                    break
                if not inst.subset:
                    inst.subset = source.name
                yield inst

        return {"instances": write_instances(ctx.out / TRAIN_FILE, rows())}

    return run


def _combine_step(names: list[str]) -> Callable[[StepContext], dict[str, Any]]:
    """Concatenate training sources; query ids are prefixed with the source name only when two sources collide."""

    def run(ctx: StepContext) -> dict[str, Any]:
        ids: dict[str, set[str]] = {}
        for name in names:
            ids[name] = {inst.query_id for inst in read_instances(ctx.inputs[name] / TRAIN_FILE)}
        seen: set[str] = set()
        collide = False
        for name in names:
            if ids[name] & seen:
                collide = True
            seen |= ids[name]

        def rows() -> Any:
            for name in names:
                for inst in read_instances(ctx.inputs[name] / TRAIN_FILE):
                    if collide:
                        inst.query_id = f"{name}:{inst.query_id}"
                    yield inst

        count = write_instances(ctx.out / TRAIN_FILE, rows())
        return {"instances": count, "sources": names, "prefixed_ids": collide}

    return run


def _judge_step(
    cascade: dict[str, Any], store_path: Path, engine: dict[str, Any]
) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:

        config = parse_config(cascade, "judge")
        store_path.parent.mkdir(parents=True, exist_ok=True)
        last: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            # One line per stage per 10%: judging is the long step.
            step = max(1, total // 10)
            if done == total or done // step != last.get(stage, -1):
                last[stage] = done // step
                ctx.progress(f"judge {stage} {done}/{total}")

        with JudgmentStore(store_path) as store:
            report = run_cascade(ctx.inputs["data"] / TRAIN_FILE, config, store, progress=progress, **engine)
            hashes = report.stage_hashes
            verdicts = {
                "stage1": store.final_verdicts({1: hashes[1]}),
                "cascade": store.final_verdicts(hashes),
            }
        summary: dict[str, Any] = {"report": report.to_dict()}
        for name, found in verdicts.items():
            path = ctx.out / f"verdicts.{name}.jsonl"
            with open(path, "w", encoding="utf-8") as handle:
                # by query id: the store holds rows in the order answers arrived, which differs between engines
                for query_id in sorted(found):
                    handle.write(json.dumps(dataclasses.asdict(found[query_id])) + "\n")
            summary[f"flagged_{name}"] = sum(1 for v in found.values() if v.better or v.worse)
            summary[f"not_ok_{name}"] = sum(1 for v in found.values() if v.status != "ok")
        return summary

    return run


def _read_verdicts(path: Path) -> dict[str, Any]:

    with open(path, encoding="utf-8") as handle:
        return verdicts_from_dicts(json.loads(line) for line in handle if line.strip())


def _variant_step(variant: Variant, relabel: dict[str, Any]) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:

        source = ctx.inputs["data"] / TRAIN_FILE
        out = ctx.out / TRAIN_FILE
        verdicts = (
            _read_verdicts(ctx.inputs["judge"] / f"verdicts.{variant.verdicts}.jsonl") if variant.verdicts else {}
        )
        fields = {f.name for f in dataclasses.fields(RelabelOptions)}
        unknown = sorted(set(relabel) - fields)
        if unknown:
            raise ConfigError(
                f"relabel.{unknown[0]}: unknown option (known: {', '.join(sorted(fields - {'treatment'}))})"
            )
        options = RelabelOptions(**{**relabel, "treatment": variant.treatment})
        report = relabel_file(source, out, verdicts, options)
        total = report.total.to_dict()
        return {"instances": total.get("written", 0), "relabel": report.to_dict()}

    return run


def _train_step(options: dict[str, Any], seed: int) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:

        config = _retriever_config(options, seed)
        progress = functools.partial(tenths(ctx.progress), "train")
        result = train_retriever(ctx.inputs["data"] / TRAIN_FILE, ctx.out / MODEL_DIR, config, progress=progress)
        summary = result.to_dict()
        summary.pop("output_dir", None)
        return summary

    return run


def _retriever_config(options: dict[str, Any], seed: int) -> Any:

    fields = {f.name for f in dataclasses.fields(RetrieverConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"training.{unknown[0]}: unknown training option (known: {', '.join(sorted(fields))})")
    if "seed" in options:
        raise ConfigError("training.seed: set seeds with the top-level `seeds: [...]`")
    config = RetrieverConfig(**{**options, "seed": seed, "quiet": True})
    config.check()
    return config


# ----------------------------------------------------------------------------------------------- evaluation


def _evaluate_step(test: DataSource, options: dict[str, Any], metric: str) -> Callable[[StepContext], dict[str, Any]]:
    def run(ctx: StepContext) -> dict[str, Any]:

        assert test.beir is not None
        return evaluate_model(
            ctx.inputs["model"] / MODEL_DIR,
            test.beir,
            test.split,
            ctx.out,
            options=options,
            metric=metric,
            max_queries=test.max_queries,
            experiment_dir=ctx.experiment_dir,
            progress=ctx.progress,
        )

    return run


# ----------------------------------------------------------------------------------------------- the graph


@dataclass
class Plan:
    graph: StepGraph
    config: ExperimentConfig
    # (variant name, seed, test set) -> evaluate step id; variant name -> relabel step id
    evaluations: dict[tuple[str, int, str], str]
    variant_steps: dict[str, str]


def _engine(cfg: ExperimentConfig) -> dict[str, Any]:
    """The experiment's `engine:` / `ray_address:` as keyword arguments of mining and judging."""
    return {"engine": cfg.engine, "ray_address": cfg.ray_address}


def _source_steps(graph: StepGraph, cfg: ExperimentConfig, *, save_scores: bool) -> dict[str, str]:
    ids: dict[str, str] = {}
    for source in cfg.train:
        if source.beir is not None:
            options = dict(cfg.mine)
            if save_scores:
                options["save_scores"] = True
            _mine_config(options)  # fail on a bad option before anything runs
            step = graph.add(
                Step(
                    id=f"mine/{source.name}",
                    kind="mine",
                    config={
                        "options": options,
                        "split": source.split,
                        "max_queries": source.max_queries,
                        "subset": source.name,
                    },
                    run=_mine_step(source, options, _engine(cfg)),
                    outputs=(TRAIN_FILE,),
                    external={"beir": source.beir},
                )
            )
        else:
            assert source.file is not None
            step = graph.add(
                Step(
                    id=f"data/{source.name}",
                    kind="data",
                    config={"max_queries": source.max_queries, "subset": source.name},
                    run=_file_step(source),
                    outputs=(TRAIN_FILE,),
                    external={"file": source.file},
                )
            )
        ids[source.name] = step.id
    return ids


def _combine(graph: StepGraph, label: str, sources: dict[str, str]) -> str:
    names = list(sources)
    step = graph.add(
        Step(
            id=f"combine/{label}",
            kind="combine",
            config={"sources": names},
            run=_combine_step(names),
            outputs=(TRAIN_FILE,),
            inputs=dict(sources),
        )
    )
    return step.id


def _train_and_evaluate(
    graph: StepGraph,
    cfg: ExperimentConfig,
    label: str,
    data_step: str,
    evaluations: dict[tuple[str, int, str], str],
    options: dict[str, Any] | None = None,
) -> None:
    """One train step per seed on `data_step`'s rows (`options`, default the experiment's `training`), and one
    evaluate step per test set and seed."""
    training = cfg.training if options is None else options
    _retriever_config(training, cfg.seeds[0])  # fail on a bad option before anything runs
    for seed in cfg.seeds:
        train = graph.add(
            Step(
                id=f"train/{label}/seed{seed}",
                kind="train",
                config={"options": training, "seed": seed},
                run=_train_step(training, seed),
                outputs=(MODEL_DIR,),
                inputs={"data": data_step},
            )
        )
        for test in cfg.evaluate:
            options = {k: v for k, v in cfg.evaluation.items() if k not in ("alpha", "metric")}
            step = graph.add(
                Step(
                    id=f"evaluate/{label}/seed{seed}/{test.name}",
                    kind="evaluate",
                    config={
                        "options": options,
                        "metric": cfg.metric,
                        "split": test.split,
                        "max_queries": test.max_queries,
                    },
                    run=_evaluate_step(test, options, cfg.metric),
                    outputs=("metrics.json", "per_query.json"),
                    inputs={"model": train.id},
                    external={"beir": test.beir} if test.beir else {},
                )
            )
            evaluations[(label, seed, test.name)] = step.id


def plan_experiment(cfg: ExperimentConfig) -> Plan:
    """The step graph of an experiment (nothing runs)."""
    graph = StepGraph(cfg.output)
    # TopK-PercPos keeps the mining scores in its rows (and `teacher: mining` filters on them).
    needs_scores = any(v.treatment == "topk_percpos" for v in cfg.variants)
    sources = _source_steps(graph, cfg, save_scores=needs_scores)
    data = _combine(graph, "all", sources)
    judge_id = None
    if cfg.needs_judge:
        cascade = _cascade_dict(cfg)
        judge_id = graph.add(
            Step(
                id="judge/cascade",
                kind="judge",
                # the cascade without its pool sizes (workers, num_cpus, ...): they never change a verdict
                config={"cascade": identity_dump(parse_config(cascade, "judge"))},
                run=_judge_step(cascade, cfg.output / "cache" / "judgments.sqlite", _engine(cfg)),
                outputs=("verdicts.stage1.jsonl", "verdicts.cascade.jsonl"),
                inputs={"data": data},
            )
        ).id
    evaluations: dict[tuple[str, int, str], str] = {}
    variant_steps: dict[str, str] = {}
    for variant in cfg.variants:
        if variant.treatment in BASELINES:
            step_id, options = add_baseline(graph, cfg, variant.treatment, data)
            variant_steps[variant.name] = step_id
            _train_and_evaluate(graph, cfg, variant.name, step_id, evaluations, options)
            continue
        inputs = {"data": data}
        if variant.verdicts is not None:
            assert judge_id is not None
            inputs["judge"] = judge_id
        step = graph.add(
            Step(
                id=f"variant/{variant.name}",
                kind="variant",
                config={
                    "treatment": variant.treatment,
                    "verdicts": variant.verdicts,
                    "relabel": cfg.relabel,
                    "margin": None,
                },
                run=_variant_step(variant, cfg.relabel),
                outputs=(TRAIN_FILE,),
                inputs=inputs,
            )
        )
        variant_steps[variant.name] = step.id
        _train_and_evaluate(graph, cfg, variant.name, step.id, evaluations)
    return Plan(graph, cfg, evaluations, variant_steps)


def _cascade_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The cascade config as a plain mapping (validated now, so a bad stage fails before mining)."""
    import yaml

    judge = dict(cfg.judge)
    if "config" in judge:
        path = Path(judge.pop("config"))
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            reason = (
                exc.strerror if isinstance(exc, OSError)
                else "not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                else f"bad YAML: {getattr(exc, 'problem', None) or exc}"
            )  # fmt: skip
            raise InputError(
                cfg.path, None, "judge.config", f"{path}: not a readable cascade YAML ({reason})"
            ) from None
        source = str(path)
    else:
        data, judge = {k: judge.pop(k) for k in list(judge) if k in ("stages", "name", "max_attempts")}, judge
        source = f"{cfg.path}: judge"
    if judge:
        raise InputError(cfg.path, None, f"judge.{sorted(judge)[0]}", "unknown field (known: config, stages)")
    return parse_config(data, source).model_dump(mode="json")


# ----------------------------------------------------------------------------------------------- results


def _step_rows(records: list[StepRecord]) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "kind": r.kind, "status": r.status, "wall_s": round(r.wall_s, 3), "key": r.key} for r in records
    ]


def train_changes(summary: dict[str, Any]) -> dict[str, Any]:
    """What a variant step did to the training data: instances kept, negatives moved or removed, instances dropped.

    Relabel variants report under `relabel.total`; the TopK-PercPos baseline reports its own counts (ce_distill
    changes no negative: it trains on the teacher's scores of the default data).
    """
    total = (summary.get("relabel") or {}).get("total") or {}
    return {
        "instances": summary.get("instances"),
        "negatives_moved": int(total.get("negatives_moved", 0)),
        "negatives_removed": int(total.get("negatives_removed", summary.get("negatives_removed", 0))),
        "instances_dropped": int(total.get("dropped_total", summary.get("dropped_no_negatives", 0))),
    }


def collect_scores(
    plan: Plan, records: list[StepRecord], labels: Sequence[tuple[str, str, str | None]]
) -> list[VariantScores]:
    """Per label (name, treatment, verdicts): metric and per-query scores from the evaluate steps' folders."""
    by_id = {r.id: r for r in records}
    cfg = plan.config
    out = []
    for name, treatment, verdicts in labels:
        scores = VariantScores(name=name, treatment=treatment, verdicts=verdicts)
        step_id = plan.variant_steps.get(name)
        if step_id and step_id in by_id:
            scores.train = train_changes(by_id[step_id].summary)
        for seed in cfg.seeds:
            for test in cfg.evaluate:
                record = by_id.get(plan.evaluations[(name, seed, test.name)])
                if record is None or record.folder is None or record.status not in ("ran", "cached"):
                    continue
                metrics = json.loads((record.folder / "metrics.json").read_text())
                per_query = json.loads((record.folder / "per_query.json").read_text())
                value = metrics.get(cfg.metric)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    raise ConfigError(f"evaluation.metric: {cfg.metric!r} is not among {sorted(metrics)}")
                scores.metric.setdefault(test.name, {})[seed] = float(value)
                scores.per_query.setdefault(test.name, {})[seed] = {q: float(v) for q, v in per_query.items()}
        out.append(scores)
    return out


def score_results(
    plan: Plan, records: list[StepRecord], labels: Sequence[tuple[str, str, str | None]], *, baseline: str = "default"
) -> dict[str, Any]:
    """The results object (`build_results`: deltas against `baseline`) of the labels' evaluate steps."""
    cfg = plan.config
    return build_results(
        name=cfg.name,
        metric=cfg.metric,
        alpha=cfg.alpha,
        seeds=cfg.seeds,
        test_sets=[t.name for t in cfg.evaluate],
        variants=collect_scores(plan, records, labels),
        significance=paired_significance,
        baseline=baseline,
        steps=_step_rows(records),
    )


@dataclass
class ExperimentResult:
    records: list[StepRecord]
    results: dict[str, Any] | None  # None after a dry run
    paths: dict[str, Path]

    @property
    def ran(self) -> list[str]:
        return [r.id for r in self.records if r.status == "ran"]


def run_experiment(
    cfg: ExperimentConfig, *, dry_run: bool = False, progress: Progress | None = None, plots: bool = True
) -> ExperimentResult:
    """Run (or resume) the experiment; with dry_run, only say which steps are cached and which would run."""

    plan = plan_experiment(cfg)
    if not dry_run:  # an unreachable Ray cluster stops before any step, named with the YAML's key
        try:
            resolve_engine(cfg.engine, cfg.ray_address, probe=True)
        except ConfigError as exc:
            raise InputError(cfg.path, None, exc.param or "engine", exc.detail) from None
    records = plan.graph.execute(dry_run=dry_run, progress=progress)
    if dry_run:
        return ExperimentResult(records, None, {})
    results = score_results(plan, records, [(v.name, v.treatment, v.verdicts) for v in cfg.variants])
    results["config"] = str(cfg.path)
    results["folder"] = str(cfg.output)
    judge = next((r for r in records if r.kind == "judge"), None)
    if judge is not None:
        results["judge"] = {k: v for k, v in judge.summary.items() if k != "report"}
        results["judge"]["stages"] = judge.summary.get("report", {}).get("stages", [])
    paths = write_results(results, cfg.output, plots=plots)
    return ExperimentResult(records, results, paths)
