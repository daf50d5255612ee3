"""The same cascade on the same data, local and on Ray (1 and 2 workers), in one run: what Ray costs and gives.

    python bench/scale.py [--data FILE] [--limit N] [--model smollm2-135m] [--workers 1,2] [--cpus 2]
                          [--batch-size 4] [--project 680000] [--json]

The cascade is the shipped default (`hardneg clean`'s: MiniLM on every negative, the routed ones to a llama.cpp
pointwise judge), its stage-2 model set by `--model` (default SmolLM2-135M, fast; `qwen2.5-coder-1.5b` is the
default cascade's). Data: `--data` (any training file; default the shipped sample, 24 instances). Each run has a
fresh store, so every call is made:

- `local`: `run_cascade` in this process (the llama.cpp judge on `--cpus` threads);
- `ray xN`: the same on one Ray started here with `--cpus` CPUs, each stage a pool of N actors of `--cpus`/N CPUs
  each, blocks of `--batch-size` instances (`hardneg.judging.engine.RayEngine`).

Printed per stage and engine: negatives judged, seconds, negatives/s and the ratio to `local` (the baseline of
this run). For Ray, where the time goes: the driver's seconds putting blocks into the object store; each actor's
model load (its first block's seconds less the median block's, plus building the judge); the seconds judging;
and Ray's overhead per block: the actors' seconds inside the stage's wall time that were neither judging nor
loading (scheduling, moving blocks and results, an actor idle at the tail), divided by the blocks. Then whether
the verdicts equal the local run's, and a projection for `--project` instances: hours per stage = negatives at
that stage (per instance, as measured here) / (measured per-worker rate x workers), for 1 to 64 workers. The
per-worker rate is the negatives per actor-second of the largest Ray run, overhead and model load included; a
projection, not a measurement. On a shared 2-core machine the figures move from run to run: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def cascade(model: str, workers: int, cpus: float, batch_size: int) -> Any:
    from hardneg.judging.cascade import load_cascade

    config = load_cascade("local-llm")  # the two-stage cascade (embedding routing to the LLM) benchmarks.md describes
    for stage in config.stages:
        if stage.backend == "llm-pointwise":
            stage.params = {**stage.params, "model": model}
        stage.workers = workers
        stage.num_cpus = cpus
        stage.batch_size = batch_size
    return config


def run(data: Any, config: Any, engine: Any) -> tuple[Any, dict[str, Any], float]:
    from hardneg.judging import JudgmentStore, run_cascade

    with tempfile.TemporaryDirectory() as tmp, JudgmentStore(Path(tmp) / "j.sqlite") as store:
        started = time.perf_counter()
        report = run_cascade(data, config, store, engine=engine)
        wall = time.perf_counter() - started
        verdicts = store.final_verdicts(report.stage_hashes, allow_partial=True)
    return report, verdicts, wall


def ray_breakdown(engine: Any, stage: str, workers: int) -> dict[str, Any]:
    stats = engine.stats.get(stage)
    blocks = engine.blocks.get(stage, [])
    if stats is None or not blocks:
        return {}
    by_pid: dict[int, list[float]] = {}
    for pid, busy in blocks:
        by_pid.setdefault(pid, []).append(busy)
    typical = statistics.median(busy for _, busy in blocks)
    first_excess = sum(max(0.0, times[0] - typical) for times in by_pid.values())  # a lazy judge loads here
    init = sum(engine.actors.get(stage, {}).values())
    load = first_excess + init
    busy = sum(busy for _, busy in blocks)
    judging = max(0.0, busy - first_excess)
    overhead = max(0.0, stats.wall_s * workers - busy - init)
    return {
        "blocks": stats.blocks,
        "actors": len(by_pid),
        "put_s": round(stats.put_s, 3),
        "load_s_per_actor": round(load / max(1, len(by_pid)), 2),
        "judging_s": round(judging, 2),
        "busy_s_per_block": round(typical, 3),
        "overhead_s_per_block": round(overhead / max(1, stats.blocks), 3),
        "actor_s": round(stats.wall_s * workers, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N instances")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--project", type=int, default=680_000, help="instances of the projection")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    from hardneg.cluster import RaySession
    from hardneg.data.io import read_instances
    from hardneg.data.sample import sample_train_path
    from hardneg.judging.engine import LocalEngine, RayEngine

    path = args.data or sample_train_path()
    instances = list(read_instances(path))[: args.limit]
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    results: dict[str, Any] = {"data": str(path), "instances": len(instances), "model": args.model, "runs": {}}

    # the baseline: every call in this process, on every CPU given
    report, local_verdicts, wall = run(instances, cascade(args.model, 1, args.cpus, args.batch_size), LocalEngine())
    results["runs"]["local"] = {"wall_s": round(wall, 2), "stages": {}}
    for s in report.stages:
        results["runs"]["local"]["stages"][s.name] = {"negatives": s.negatives_judged_now, "wall_s": round(s.wall_s, 2)}

    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
    results["ray_init_s"] = round(time.perf_counter() - started, 2)
    try:
        for workers in counts:
            engine = RayEngine(session=RaySession())
            config = cascade(args.model, workers, args.cpus / workers, args.batch_size)
            report, verdicts, wall = run(instances, config, engine)
            entry: dict[str, Any] = {"wall_s": round(wall, 2), "same_verdicts": verdicts == local_verdicts}
            entry["stages"] = {
                s.name: {
                    "negatives": s.negatives_judged_now,
                    "wall_s": round(s.wall_s, 2),
                    **ray_breakdown(engine, s.name, workers),
                }
                for s in report.stages
            }
            results["runs"][f"ray x{workers}"] = entry
    finally:
        ray.shutdown()

    local = results["runs"]["local"]["stages"]
    for run_ in results["runs"].values():
        for name, stage in run_["stages"].items():
            rate = stage["negatives"] / stage["wall_s"] if stage["wall_s"] else 0.0
            stage["negatives_per_s"] = round(rate, 2)
            base = local[name]["negatives"] / local[name]["wall_s"] if local[name]["wall_s"] else 0.0
            stage["ratio_to_local"] = round(rate / base, 2) if base else None
    # projection from the largest Ray run: negatives per actor-second, overhead and model load included
    largest = results["runs"][f"ray x{max(counts)}"]["stages"]
    projection = {}
    for name, stage in largest.items():
        per_instance = stage["negatives"] / max(1, len(instances))
        per_worker = stage["negatives"] / stage["actor_s"] if stage.get("actor_s") else 0.0
        total = per_instance * args.project
        projection[name] = {
            "negatives": round(total),
            "per_worker_negatives_per_s": round(per_worker, 2),
            "hours": {w: round(total / (per_worker * w) / 3600, 2) if per_worker else None for w in (1, 8, 16, 64)},
        }
    results["projection"] = {"instances": args.project, "stages": projection}

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"data: {path} ({len(instances)} instances), stage-2 model {args.model}, {args.cpus} CPUs")
    print(f"ray.init: {results['ray_init_s']} s (once, not in the runs below)")
    print(f"{'run':10} {'stage':14} {'negatives':>9} {'s':>8} {'neg/s':>8} {'x local':>8}")
    for label, run_ in results["runs"].items():
        for name, stage in run_["stages"].items():
            print(
                f"{label:10} {name:14} {stage['negatives']:>9} {stage['wall_s']:>8.2f} "
                f"{stage['negatives_per_s']:>8.2f} {stage['ratio_to_local'] or 0:>8.2f}"
            )
        if "same_verdicts" in run_:
            print(f"{label:10} {'':14} same verdicts as local: {'yes' if run_['same_verdicts'] else 'NO'}")
    print("\nwhere the time goes on Ray (per stage):")
    for label, run_ in results["runs"].items():
        for name, stage in run_["stages"].items():
            if "blocks" in stage:
                print(
                    f"{label:10} {name:14} blocks {stage['blocks']:>3}, put {stage['put_s']:.3f} s, model load "
                    f"{stage['load_s_per_actor']:.2f} s/actor, judging {stage['judging_s']:.2f} s, "
                    f"{stage['busy_s_per_block']:.3f} s/block in the judge, Ray overhead "
                    f"{stage['overhead_s_per_block']:.3f} s/block"
                )
    print(f"\nprojection for {args.project:,} instances (measured per-worker rate x workers; not a measurement):")
    for name, p in projection.items():
        hours = ", ".join(f"{w} workers {h} h" for w, h in p["hours"].items())
        print(f"  {name}: {p['negatives']:,} negatives at {p['per_worker_negatives_per_s']} neg/s/worker: {hours}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
