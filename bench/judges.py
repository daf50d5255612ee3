"""Every shipped local judge against people, on the NovelEval testbed, in one run.

    python bench/judges.py [--beir ../shared/data/noveleval] [--store runs/judges-noveleval.sqlite]
                           [--judges embedding,llm-pointwise,llm-graded,llm-answer,default] [--negatives 10]
                           [--threads N] [--markdown]

NovelEval (21 questions, 20 web passages each, every passage graded 0-2 by people) becomes a testbed
(`hardneg testbed`: one grade-2 passage kept as the positive; the negatives are the top --negatives of the other 19
by BM25, default 10, which keeps the LLM judges within an hour on 2 cores; a negative graded >= 1
is a false negative). Each judge scores or flags every negative; the queries are split in two seeded halves
(seed 0, the split `bench/calibrate_defaults.py` tunes the shipped thresholds on), and every figure below is
measured on the HELD-OUT half only:

- ROC-AUC of the judge's raw scores;
- precision at recall 0.8: the cut reaching recall >= 0.8 on the tuning half (the highest such cut), its
  precision (and recall) on the held-out half;
- kappa at the shipped thresholds (`hardneg.judging.defaults`), on the held-out half;
- seconds per 1,000 negatives: the judge time of the stored calls (model loads included once), on this machine.

`default` is the shipped `hardneg clean` cascade (its final verdict: binary, so no ROC-AUC). Judges without a
score (`llm-answer`, `default`) have no cut to tune, so they judge the held-out half only. Judge calls are stored
in `--store`: a second run computes the table without any model call.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEIR = REPO.parent / "shared" / "data" / "noveleval"
JUDGES = ("embedding", "llm-pointwise", "llm-graded", "llm-answer", "default")
SPLIT_SEED = 0
VERDICT_ONLY = ("llm-answer", "default")  # judged on the held-out half only (nothing to tune on the other)


def stage_config(kind: str, threads: int | None = None) -> dict[str, Any]:
    """A one-stage cascade running `kind` on every negative, at its shipped thresholds (`threads`: llama.cpp
    threads of the LLM stages; not part of any call's identity, so stored calls are reused whatever it is)."""
    from hardneg.judging import defaults

    if kind == "default":
        from hardneg.judging.cascade import load_default_config

        config = load_default_config().model_dump()
    elif kind == "llm-answer":
        config = {"name": kind, "stages": [{"name": kind, "backend": kind}]}
    else:
        t_better, t_worse = defaults.thresholds(kind) or (math.inf, math.inf)
        config = {"name": kind, "stages": [{"name": kind, "backend": kind, "t_better": t_better, "t_worse": t_worse}]}
    for stage in config["stages"]:
        if threads and str(stage["backend"]).startswith("llm-"):
            stage["params"] = {**(stage.get("params") or {}), "n_threads": threads}
    return config


def score_testbed(
    testbed: Any, kind: str, store: Any, queries: set[str] | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Run `kind` over the testbed's instances (those of `queries` only, when given; stored calls reused) and
    return its raw scores, flags and judge seconds."""
    from hardneg.judging.cascade import parse_config, run_cascade

    config = parse_config(stage_config(kind, threads))
    started = time.perf_counter()
    instances = [i for i in testbed.instances if queries is None or i.query_id in queries]
    report = run_cascade(instances, config, store)
    last = report.stages[-1]
    scores: dict[tuple[str, str], float] = {}
    flags: dict[tuple[str, str], int] = {}
    if kind == "default":
        verdicts = store.final_verdicts(report.stage_hashes, allow_partial=True)
        for inst in instances:
            verdict = verdicts.get(inst.query_id)
            if verdict is None or verdict.status != "ok":
                continue
            flagged = set(verdict.better) | set(verdict.worse)
            for docid in inst.negative_ids:
                flags[(inst.query_id, docid)] = int(docid in flagged)
    else:
        for verdict in store.iter_verdicts(stage=1, view_hash=last.view_hash):
            if verdict.status != "ok":
                continue
            flagged = set(verdict.better) | set(verdict.worse)
            for docid in verdict.docids:
                flags[(verdict.query_id, docid)] = int(docid in flagged)
                if verdict.raw_scores and docid in verdict.raw_scores:
                    scores[(verdict.query_id, docid)] = float(verdict.raw_scores[docid])
                elif verdict.scores and docid in verdict.scores:
                    scores[(verdict.query_id, docid)] = float(verdict.scores[docid])
    seconds = 0.0
    negatives = 0
    for stage in report.stages:
        for record in store.iter_judgments(stage=stage.stage, config_hash=stage.config_hash):
            seconds += record.latency_s
            negatives += len(record.docids) if stage.stage == 1 else 0
    return {
        "scores": scores,
        "flags": flags,
        "seconds_per_1000": 1000 * seconds / max(1, negatives),
        "calls_now": sum(s.judged_now for s in report.stages),
        "wall_s": time.perf_counter() - started,
        "failed": report.failed,
    }


def held_out_figures(result: dict[str, Any], labels: dict[tuple[str, str], int], tune: set, held: set) -> dict:
    from hardneg.analysis.judge_eval import binary_metrics, ranking_metrics

    def pairs_of(queries: set, table: dict) -> list:
        return sorted(p for p in table if p in labels and p[0] in queries)

    out: dict[str, Any] = {}
    flagged = pairs_of(held, result["flags"])
    shipped = binary_metrics([labels[p] for p in flagged], [result["flags"][p] for p in flagged])
    out["kappa_shipped"], out["precision_shipped"], out["recall_shipped"] = (
        shipped.kappa, shipped.precision, shipped.recall,
    )  # fmt: skip
    scores = result["scores"]
    if scores:
        held_pairs, tune_pairs = pairs_of(held, scores), pairs_of(tune, scores)
        out["auc"] = ranking_metrics([labels[p] for p in held_pairs], [scores[p] for p in held_pairs])[0]
        # the highest cut keeping recall >= 0.8 on the tuning half
        relevant = sorted((scores[p] for p in tune_pairs if labels[p]), reverse=True)
        cut = relevant[max(0, math.ceil(0.8 * len(relevant)) - 1)] if relevant else math.inf
        at = binary_metrics([labels[p] for p in held_pairs], [int(scores[p] >= cut) for p in held_pairs])
        out["cut_r80"], out["precision_at_r80"], out["recall_at_r80"], out["kappa_at_r80"] = (
            cut, at.precision, at.recall, at.kappa,
        )  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR)
    parser.add_argument("--store", type=Path, default=REPO / "runs" / "judges-noveleval.sqlite")
    parser.add_argument("--judges", default=",".join(JUDGES))
    parser.add_argument("--negatives", type=int, default=10, help="negatives per query (top N by BM25 of 19)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the CPUs available)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (docs/judges.md)")
    args = parser.parse_args()
    if not args.beir.is_dir():
        print(f"needs {args.beir} (../shared/data/noveleval)", file=sys.stderr)
        return 2

    from hardneg.analysis.testbed import build_testbed
    from hardneg.judging.calibration import split_queries
    from hardneg.judging.store import JudgmentStore

    testbed = build_testbed(args.beir, split="test", negatives=args.negatives)
    labels = testbed.labels()
    tune, held = split_queries({i.query_id for i in testbed.instances}, 0.5, SPLIT_SEED)
    n_held = sum(1 for p in labels if p[0] in held)
    print(
        f"{testbed.card['dataset']}: {testbed.card['negatives_judged']} negatives, base rate "
        f"{testbed.card['base_rate']:.2f}; held-out half: {len(held)} queries, {n_held} negatives, "
        f"{sum(labels[p] for p in labels if p[0] in held)} false negatives",
        flush=True,
    )
    rows = []
    args.store.parent.mkdir(parents=True, exist_ok=True)
    with JudgmentStore(args.store) as store:
        for kind in args.judges.split(","):
            # judges without a score have no cut to tune: only the held-out half, where they are measured
            result = score_testbed(testbed, kind, store, held if kind in VERDICT_ONLY else None, args.threads)
            figures = held_out_figures(result, labels, tune, held)
            rows.append((kind, result, figures))
            print(f"  {kind}: {result['calls_now']} calls now, {result['wall_s']:.0f} s", file=sys.stderr, flush=True)

    def f(value: Any, digits: int = 2) -> str:
        return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"

    header = ["judge", "ROC-AUC", "P @ R0.8 (R)", "kappa @ R0.8", "kappa (shipped cut)", "P / R (shipped)", "s / 1k"]
    lines = []
    for kind, result, fig in rows:
        lines.append([
            kind, f(fig.get("auc")), f"{f(fig.get('precision_at_r80'))} ({f(fig.get('recall_at_r80'))})",
            f(fig.get("kappa_at_r80")), f(fig.get("kappa_shipped")),
            f"{f(fig.get('precision_shipped'))} / {f(fig.get('recall_shipped'))}", f(result["seconds_per_1000"], 0),
        ])  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
