"""Calibrate the shipped local cascade on people: NovelEval's human grades, tuned on one half, reported on the other.

    python bench/calibrate_defaults.py [--store runs/judges-noveleval.sqlite] [--min-precision 0.6]

1. The NovelEval testbed (`hardneg testbed`; a negative graded >= 1 by people is a false negative) and a seeded
   split of its queries (seed 0): thresholds are chosen on the TUNING half, every figure printed is measured on
   the HELD-OUT half.
2. The scores of every local judge on every negative, from `bench/judges.py`'s store (run that first: the LLM
   judges take the better part of an hour on 2 cores; this script then makes no model call): the MiniLM cosine
   with the reference, Qwen2.5-Coder-1.5B P(yes) and its expected grade, and the plain sum of the cosine and P(yes).
3. Objective (stated before looking at the held-out half): the highest recall at precision >= --min-precision
   on the tuning half. Each candidate judge gets its cut there. The embedding judge is the baseline the default
   starts from; a candidate with an LLM stage replaces it only if it beats it ON HELD-OUT PAIRS (Cohen's kappa at
   the tuned cuts), since an LLM stage costs two orders of magnitude more time per negative. Choosing among a
   few candidates on the held-out half makes the winner's held-out figures slightly optimistic; with the
   embedding baseline kept (the common outcome), its figures are untouched by the choice.
4. A second opinion, reported separately: the chosen default's agreement with GPT-4o's verdicts on the 25 FiQA
   instances of ../shared/data/rlhn-sample (relevant = either of GPT-4o's lists).

5. Operating points per treatment, of the embedding judge (the shipped default's only stage): a relabelled true
   negative teaches the retriever a wrong positive, a removed one only costs a negative. precision-first (for
   `rlhn`, `rlhn+filter` and `default`): the highest recall at precision >= --precision-first on the tuning half;
   recall-first (for `remove`, `hn_remove`): the highest precision at recall >= --recall-first on the tuning half.
   Each cut's figures are printed for the tuning half and measured on the held-out half. MiniLM only (seconds):

       python bench/calibrate_defaults.py --judges embedding

Prints the candidates, the operating points and the block to paste into src/hardneg/judging/defaults.py.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
NOVELEVAL = REPO.parent / "shared" / "data" / "noveleval"
RLHN = REPO.parent / "shared" / "data" / "rlhn-sample"


def cuts(scores: dict, labels: dict, queries: set) -> list[tuple[float, float, float]]:
    """Every (cut, recall, precision) on `queries`, from the highest cut down (a cut lies between distinct scores)."""
    pairs = [p for p in scores if p in labels and p[0] in queries]
    ranked = sorted(pairs, key=lambda p: -scores[p])
    relevant = sum(labels[p] for p in pairs)
    points, tp = [], 0
    for n, pair in enumerate(ranked, start=1):
        tp += labels[pair]
        if n < len(ranked) and scores[ranked[n]] == scores[pair]:
            continue
        points.append((scores[pair], tp / max(1, relevant), tp / n))
    return points


def best_cut(scores: dict, labels: dict, queries: set, min_precision: float) -> tuple[float, float, float] | None:
    """(cut, recall, precision) on `queries`: the highest recall with precision >= min_precision; None if none."""
    best = None
    for point in cuts(scores, labels, queries):
        if point[2] >= min_precision and (best is None or point[1] > best[1]):
            best = point
    return best


def best_cut_at_recall(
    scores: dict, labels: dict, queries: set, min_recall: float
) -> tuple[float, float, float] | None:
    """(cut, recall, precision) on `queries`: the highest precision with recall >= min_recall (of equal precisions,
    the highest cut); None if none."""
    best = None
    for point in cuts(scores, labels, queries):
        if point[1] >= min_recall and (best is None or point[2] > best[2]):
            best = point
    return best


def measure(scores: dict, labels: dict, queries: set, cut: float) -> dict[str, Any]:
    from hardneg.analysis.judge_eval import binary_metrics, ranking_metrics

    pairs = sorted(p for p in scores if p in labels and p[0] in queries)
    y = [labels[p] for p in pairs]
    m = binary_metrics(y, [int(scores[p] >= cut) for p in pairs])
    auc = ranking_metrics(y, [scores[p] for p in pairs])[0]
    return {"precision": m.precision, "recall": m.recall, "kappa": m.kappa, "auc": auc, "pairs": m.pairs,
            "relevant": m.relevant, "flagged": m.flagged}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "runs" / "judges-noveleval.sqlite")
    parser.add_argument("--negatives", type=int, default=10, help="as bench/judges.py --negatives")
    parser.add_argument("--judges", default="embedding,llm-pointwise,llm-graded", help="the score judges to run")
    parser.add_argument("--min-precision", type=float, default=0.6, help="the objective choosing the judge")
    parser.add_argument("--precision-first", type=float, default=0.7, help="rlhn's operating point: precision >=")
    parser.add_argument("--recall-first", type=float, default=0.8, help="remove's operating point: recall >=")
    args = parser.parse_args()
    if not NOVELEVAL.is_dir():
        print(f"needs {NOVELEVAL}", file=sys.stderr)
        return 2
    from judges import score_testbed

    from hardneg.analysis.testbed import build_testbed
    from hardneg.judging.calibration import split_queries
    from hardneg.judging.store import JudgmentStore

    testbed = build_testbed(NOVELEVAL, split="test", negatives=args.negatives)
    labels = testbed.labels()
    tune, held = split_queries({i.query_id for i in testbed.instances}, 0.5, 0)
    with JudgmentStore(args.store) as store:
        runs = {kind: score_testbed(testbed, kind, store) for kind in args.judges.split(",")}
    empty: dict = {}
    candidates: dict[str, dict] = {
        "embedding cos(reference)": runs.get("embedding", {}).get("scores", empty),
        "llm P(yes)": runs.get("llm-pointwise", {}).get("scores", empty),
        "llm expected grade": runs.get("llm-graded", {}).get("scores", empty),
    }
    emb, llm = candidates["embedding cos(reference)"], candidates["llm P(yes)"]
    candidates["cos + P(yes)"] = {p: emb[p] + llm[p] for p in emb if p in llm}
    objective = f"the highest recall at precision >= {args.min_precision} on the tuning half ({len(tune)} queries)"
    print(f"objective: {objective}")
    print(f"{'judge':28} {'cut':>8} {'tune R':>7} {'tune P':>7} | held-out: {'P':>5} {'R':>5} {'kappa':>6} {'AUC':>5}")
    chosen: tuple[float, str, float] | None = None
    for name, scores in candidates.items():
        if not scores:
            print(f"{name:28} (no scores: run bench/judges.py first)")
            continue
        cut = best_cut(scores, labels, tune, args.min_precision)
        if cut is None:
            print(f"{name:28} precision >= {args.min_precision} is not reached on the tuning half")
            continue
        out = measure(scores, labels, held, cut[0])
        kappa = "—" if out["kappa"] is None else f"{out['kappa']:.3f}"
        print(
            f"{name:28} {cut[0]:8.4f} {cut[1]:7.3f} {cut[2]:7.3f} | held-out: {out['precision']:5.3f} "
            f"{out['recall']:5.3f} {kappa:>6} {out['auc']:5.3f}"
        )
        held_kappa = -1.0 if out["kappa"] is None else out["kappa"]
        baseline = name == "embedding cos(reference)"
        if (chosen is None and baseline) or (chosen is not None and not baseline and held_kappa > chosen[0]):
            chosen = (held_kappa, name, cut[0])
    if chosen is None:
        return 1
    print(f"judge chosen: {chosen[1]} (an LLM candidate replaces the embedding judge only if it beats it on")
    print("held-out kappa)")
    cuts = operating_points(emb, labels, tune, held, args.precision_first, args.recall_first) if emb else {}
    if "precision-first" in cuts and chosen[1] == "embedding cos(reference)":
        chosen = (chosen[0], chosen[1], cuts["precision-first"])  # the cut rlhn relabels at
    if RLHN.is_dir() and chosen[1] == "embedding cos(reference)":
        from hardneg.analysis.labels import labels_from_response_files
        from hardneg.data.io import read_instances
        from hardneg.judging.backends.embedding import EmbeddingJudge

        stage1, stage2 = RLHN / "fiqa.stage_1.gpt-4o-mini.jsonl.gz", RLHN / "fiqa.stage_2.gpt-4o.jsonl.gz"
        gpt = {p: int(v > 0) for p, v in labels_from_response_files([stage1, stage2]).graded.items()}
        instances = list(read_instances(stage1))
        scores = {}
        for inst, out in EmbeddingJudge().judge_many((i, i.negative_ids) for i in instances):
            scores.update({(inst.query_id, d): s for d, s in (out.scores or {}).items()})
        everyone = {q for q, _ in gpt}
        second = measure(scores, gpt, everyone, chosen[2])
        kappa = "—" if second["kappa"] is None else f"{second['kappa']:.3f}"
        print(
            f"second opinion at cut {chosen[2]:.4f}, GPT-4o on the FiQA rlhn-sample ({second['pairs']} pairs, "
            f"{second['relevant']} relevant):"
            f" precision {second['precision']:.3f}, recall {second['recall']:.3f}, kappa {kappa}, "
            f"flagged {second['flagged']}"
        )
    if not math.isfinite(chosen[2]):
        return 1
    return 0


def operating_points(
    scores: dict, labels: dict, tune: set, held: set, precision_first: float, recall_first: float
) -> None:
    """Print the embedding judge's two operating points (tuned on `tune`, measured on `held`) and their
    `defaults.OPERATING_POINTS` block."""
    points = {
        "precision-first": (
            f"the highest recall at precision >= {precision_first}",
            best_cut(scores, labels, tune, precision_first),
        ),
        "recall-first": (
            f"the highest precision at recall >= {recall_first}",
            best_cut_at_recall(scores, labels, tune, recall_first),
        ),
    }
    print("\noperating points of the embedding judge, cut on the tuning half, figures on the held-out half:")
    header = f"{'point':16} {'cut':>7} {'tune P':>7} {'tune R':>7} | held-out: {'P':>5} {'R':>5} {'kappa':>6}"
    print(f"{header} flagged/pairs")
    block, cuts = [], {}
    for name, (objective, cut) in points.items():
        if cut is None:
            print(f"{name:16} {objective}: not reached on the tuning half")
            continue
        cuts[name] = cut[0]
        out = measure(scores, labels, held, cut[0])
        kappa = "—" if out["kappa"] is None else f"{out['kappa']:.3f}"
        print(
            f"{name:16} {cut[0]:7.4f} {cut[2]:7.3f} {cut[1]:7.3f} | held-out: {out['precision']:5.3f} "
            f"{out['recall']:5.3f} {kappa:>6} {out['flagged']}/{out['pairs']} ({out['relevant']} relevant)"
            f"   objective: {objective}"
        )
        block.append(
            f'    "{name}": {{"cut": {cut[0]:.4f}, "tune_precision": {cut[2]:.3f}, "tune_recall": {cut[1]:.3f},\n'
            f'        "precision": {out["precision"]:.3f}, "recall": {out["recall"]:.3f}, "kappa": {kappa}, '
            f'"n_pairs": {out["pairs"]}, "n_relevant": {out["relevant"]}}},'
        )
    print("\n# src/hardneg/judging/defaults.py")
    print("OPERATING_POINTS: dict[str, dict[str, float]] = {")
    print("\n".join(block))
    print("}")
    return cuts


if __name__ == "__main__":
    raise SystemExit(main())
