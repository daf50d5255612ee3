"""Regenerate the calibrated defaults of `hardneg.judge.defaults` from the rlhn-sample.

    python bench/calibrate_defaults.py [--scores /tmp/hardneg-defaults-scores.jsonl] [--llm-pairs routed|all]

1. Stage 1: MiniLM cos(reference) for every negative; thresholds tuned (kappa, held-out half of the queries)
   against GPT-4o's final verdicts (stage 2 where routed, else stage 1; "relevant" = either list), plus a
   routing cut that keeps 90% of the relevant negatives of the tuning half.
2. Stage 2: Qwen2.5-Coder-1.5B P(yes) for the negatives the default cascade routes on (`--llm-pairs routed`,
   default: `routed_on` with the shipped default.yaml's stage 1) or for every negative (`all`), cached in
   `--scores` (JSONL, resumable: an interrupted run continues where it stopped). Thresholds for the raw
   P(yes) and for the fused score (rank average with stage 1 within the routed negatives, the cascade's
   `fuse: rank-average`) are tuned the same way; negatives not routed count as unflagged.
Prints the numbers and a THRESHOLDS block to paste into src/hardneg/judge/defaults.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "rlhn-sample"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", type=Path, default=Path("/tmp/hardneg-defaults-scores.jsonl"))
    parser.add_argument("--llm-pairs", choices=("routed", "all", "none"), default="routed")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument(
        "--cached-only", action="store_true", help="no LLM calls: use the instances whose LLM scores are all cached"
    )
    parser.add_argument("--config", type=Path, default=REPO / "src" / "hardneg" / "judge" / "configs" / "default.yaml")
    args = parser.parse_args()
    stage1_file = SAMPLE / "fiqa.stage_1.gpt-4o-mini.jsonl.gz"
    stage2_file = SAMPLE / "fiqa.stage_2.gpt-4o.jsonl.gz"
    if not stage1_file.exists():
        print(f"needs the rlhn-sample at {SAMPLE}", file=sys.stderr)
        return 2

    from hardneg.analysis.labels import labels_from_response_files
    from hardneg.data.io import read_instances
    from hardneg.judge.backends.embedding import EmbeddingJudge
    from hardneg.judge.calibration import calibrate, routing_threshold
    from hardneg.judge.cascade import load_config, routed_on
    from hardneg.judge.store import Judgment
    from hardneg.retrieval.fusion import rank_average

    labels = labels_from_response_files([str(stage1_file), str(stage2_file)]).graded
    instances = list(read_instances(stage1_file))
    emb = {}
    for inst, out in EmbeddingJudge().judge_many((i, i.negative_ids) for i in instances):
        for d, s in (out.scores or {}).items():
            emb[(inst.query_id, d)] = s

    def show(name: str, result: object) -> None:
        r = result.to_dict()  # type: ignore[attr-defined]
        print(
            f"{name}: t_better {r['t_better']:.4f} t_worse {r['t_worse']:.4f} | held-out AUC {r['auc']:.3f} "
            f"kappa {r['kappa']:.3f} precision {r['precision']:.3f} recall {r['recall']:.3f} "
            f"(n={r['held_out_metrics']['relevant']['n_pairs']}, "
            f"relevant {r['held_out_metrics']['relevant']['n_relevant']})"
        )

    n_rel = sum(1 for v in labels.values() if v > 0)
    print(f"rlhn-sample: {len(instances)} instances, {len(labels)} labelled pairs, {n_rel} relevant (GPT-4o final)")
    emb_result = calibrate(emb, labels)
    show("embedding cos(reference)", emb_result)
    routing = routing_threshold(emb, labels, recall=0.9)
    print(
        f"routing cut (recall 0.9 on the tuning half): {routing.threshold:.4f}; held out: keeps "
        f"{routing.recall_held_out:.2f} of relevant, routes {routing.routed_share_held_out:.2f} of negatives"
    )
    if args.llm_pairs == "none":
        return 0

    stage1 = load_config(args.config).stages[0]
    if args.llm_pairs == "all":
        todo = {i.query_id: list(i.negative_ids) for i in instances}
    else:
        todo = {}
        for inst in instances:
            scores = {d: emb[(inst.query_id, d)] for d in inst.negative_ids}
            better = [d for d in inst.negative_ids if scores[d] >= stage1.t_better]
            worse = [d for d in inst.negative_ids if stage1.t_worse <= scores[d] < stage1.t_better]
            record = Judgment(
                inst.query_id,
                1,
                "-",
                "s1",
                "embedding",
                "",
                {},
                None,
                inst.negative_ids,
                None,
                None,
                0,
                0,
                0.0,
                "ok",
                "",
                better,
                worse,
                scores,
            )
            todo[inst.query_id] = routed_on(stage1, record) or []
    llm_scores: dict[tuple[str, str], float] = {}
    if args.scores.exists():
        for line in args.scores.read_text().splitlines():
            row = json.loads(line)
            if row["model"] == args.model:
                llm_scores[(row["query_id"], row["docid"])] = row["p_yes"]
    if args.cached_only:
        complete = {q for q, ds in todo.items() if all((q, d) in llm_scores for d in ds)}
        instances = [i for i in instances if i.query_id in complete]
        todo = {q: ds for q, ds in todo.items() if q in complete}
        labels = {p: v for p, v in labels.items() if p[0] in complete}
        n_rel = sum(1 for v in labels.values() if v > 0)
        print(f"--cached-only: {len(instances)} instances with all LLM scores cached, {n_rel} relevant pairs")
    from hardneg.judge.backends.llama_pointwise import LlamaPointwiseJudge

    judge = LlamaPointwiseJudge(args.model)
    n_todo = sum(1 for q, ds in todo.items() for d in ds if (q, d) not in llm_scores)
    print(f"LLM pairs: {sum(map(len, todo.values()))} ({n_todo} not cached yet) with {args.model}", flush=True)
    start, done = time.perf_counter(), 0
    with open(args.scores, "a", encoding="utf-8") as cache:
        for inst in instances:
            missing = [d for d in todo[inst.query_id] if (inst.query_id, d) not in llm_scores]
            if not missing:
                continue
            out = judge.judge(inst, missing)
            if out.status != "ok":
                print(f"{inst.query_id}: {out.reason}", file=sys.stderr)
                continue
            for d, p in (out.scores or {}).items():
                llm_scores[(inst.query_id, d)] = p
                cache.write(json.dumps({"model": args.model, "query_id": inst.query_id, "docid": d, "p_yes": p}) + "\n")
            cache.flush()
            done += len(missing)
            print(f"  {done}/{n_todo} pairs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    judge.close()
    routed_pairs = {(q, d) for q, ds in todo.items() for d in ds}
    # Negatives the cascade does not route are never flagged by stage 2: score them below every threshold.
    floor = -1.0
    raw = {p: llm_scores.get(p, floor) if p in routed_pairs else floor for p in labels}
    fused = dict.fromkeys(labels, floor)
    for qid, docids in todo.items():
        if docids:
            both = rank_average([{d: emb[(qid, d)] for d in docids}, {d: llm_scores[(qid, d)] for d in docids}])
            fused.update({(qid, d): s for d, s in both.items()})
    kept = sum(1 for p in routed_pairs if labels.get(p, 0) > 0) / max(1, n_rel)
    print(f"stage 2 sees {len(routed_pairs)} pairs, {kept:.2f} of the relevant ones")
    raw_result = calibrate(raw, labels)
    show(f"{args.model} P(yes) ({args.llm_pairs} pairs)", raw_result)
    fused_result = calibrate(fused, labels)
    show(f"rank average embedding + {args.model} ({args.llm_pairs} pairs)", fused_result)
    only = [p for p in labels if p in routed_pairs]
    if only and len({labels[p] > 0 for p in only}) > 1:
        from sklearn.metrics import roc_auc_score

        y = [labels[p] > 0 for p in only]
        print(
            f"AUC within the routed pairs: embedding {roc_auc_score(y, [emb[p] for p in only]):.3f}, "
            f"LLM {roc_auc_score(y, [llm_scores[p] for p in only]):.3f}, "
            f"fused {roc_auc_score(y, [fused[p] for p in only]):.3f}"
        )
    print("\nTHRESHOLDS = {")
    for name, r in (("embedding", emb_result), ("llm-pointwise", raw_result), ("llm-pointwise+fused", fused_result)):
        print(f'    "{name}": {{"t_better": {r.t_better:.4f}, "t_worse": {r.t_worse:.4f}}},')
    print("}")
    print(f"ROUTE_MIN_SCORE = {routing.threshold:.4f}")
    _ = math
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
