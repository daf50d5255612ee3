"""What the local LLM cascade (`local-llm`: embedding routing to an LLM stage) saves on the rlhn-sample: GPT-4o's
relevant negatives reaching the LLM stage, and LLM tokens per instance, for embedding-routed stage 2 vs the LLM on
every negative.

    python bench/cascade_cost.py [--config local-llm|FILE] [--model qwen2.5-coder-1.5b]

Stage 1 (embedding) and its routing rule are taken from the cascade config (`hardneg.judging.cascade.routed_on`,
the rule the cascade itself applies); the LLM token counts are those the pointwise judge evaluates with prefix
reuse (shared prefix once per instance + each candidate), counted with the model's tokenizer (nothing is
generated, so no LLM time is spent). Labels: GPT-4o's final verdicts (stage 2 where routed, else stage 1).
Also printed: the same for a few fixed top shares, for comparison.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "rlhn-sample"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="local-llm", help="A shipped cascade's name or a YAML file.")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    args = parser.parse_args()
    stage1_file = SAMPLE / "fiqa.stage_1.gpt-4o-mini.jsonl.gz"
    stage2_file = SAMPLE / "fiqa.stage_2.gpt-4o.jsonl.gz"
    if not stage1_file.exists():
        print(f"needs the rlhn-sample at {SAMPLE}", file=sys.stderr)
        return 2

    from hardneg.analysis.labels import labels_from_response_files
    from hardneg.data.io import read_instances
    from hardneg.judging.backends.embedding import EmbeddingJudge
    from hardneg.judging.backends.llama_pointwise import LlamaPointwiseJudge
    from hardneg.judging.cascade import load_cascade, routed_on
    from hardneg.judging.store import Judgment

    config = load_cascade(args.config)
    stage1 = config.stages[0]
    labels = labels_from_response_files([str(stage1_file), str(stage2_file)]).graded
    instances = list(read_instances(stage1_file))
    embedder = EmbeddingJudge(**{k: v for k, v in stage1.params.items() if k in ("model", "score")})
    outputs = {inst.query_id: out for inst, out in embedder.judge_many((i, i.negative_ids) for i in instances)}
    llm = LlamaPointwiseJudge(args.model)
    parts = {inst.query_id: llm.prompt_parts(inst, inst.negative_ids) for inst in instances}
    relevant = {p for p, v in labels.items() if v > 0}

    def record(query_id: str) -> Judgment:
        out = outputs[query_id]
        scores = out.scores or {}
        better = [d for d in out.docids if scores[d] >= stage1.t_better]
        worse = [d for d in out.docids if stage1.t_worse <= scores[d] < stage1.t_better]
        return Judgment(
            query_id,
            1,
            "-",
            stage1.name,
            stage1.backend,
            "",
            {},
            None,
            list(out.docids),
            None,
            None,
            0,
            0,
            0.0,
            "ok",
            "",
            better,
            worse,
            dict(scores),
        )

    def cost(passed: dict[str, list[str]]) -> tuple[float, float, float, float]:
        """(share of relevant negatives passed on, LLM tokens per instance, share of negatives, instances)."""
        tokens = 0
        for qid, docids in passed.items():
            if docids:
                tokens += len(parts[qid].prefix) + sum(len(parts[qid].candidates[d]) for d in docids)
        kept = sum(1 for q, docids in passed.items() for d in docids if (q, d) in relevant)
        n_neg = sum(len(d) for d in passed.values())
        total_neg = sum(len(i.negatives) for i in instances)
        return kept / len(relevant), tokens / len(instances), n_neg / total_neg, sum(1 for d in passed.values() if d)

    every = {i.query_id: list(i.negative_ids) for i in instances}
    naive = sum(len(p.prefix) * len(p.candidates) + sum(map(len, p.candidates.values())) for p in parts.values())
    routed = {i.query_id: routed_on(stage1, record(i.query_id)) or [] for i in instances}
    print(
        f"rlhn-sample: {len(instances)} FiQA instances, {sum(len(i.negatives) for i in instances)} negatives, "
        f"{len(relevant)} relevant per GPT-4o; LLM {args.model}, config {args.config.name} "
        f"(stage 1 route {stage1.route!r}, route_top {stage1.route_top}, route_min_score {stage1.route_min_score})"
    )
    header = f"{'strategy':46s} {'relevant reaching LLM':>22s} {'negatives to LLM':>17s} {'LLM tokens/inst':>16s}"
    print(header)
    rows = [("LLM on every negative (prefix reuse)", every), ("default cascade (embedding routes)", routed)]
    for share in (0.1, 0.3, 0.5):
        top = {}
        for inst in instances:
            scores = outputs[inst.query_id].scores or {}
            ranked = sorted(inst.negative_ids, key=lambda d: -scores[d])
            top[inst.query_id] = ranked[: max(1, math.ceil(share * len(ranked)))]
        rows.append((f"embedding top {share:.0%} of every instance", top))
    base_tokens = cost(every)[1]
    for name, passed in rows:
        kept, tokens, share, n_inst = cost(passed)
        print(
            f"{name:46s} {kept:22.2f} {share:17.2f} {tokens:16.0f}   ({tokens / base_tokens:.0%} of every-negative; "
            f"{n_inst:.0f} instances reach the LLM)"
        )
    print(f"(LLM on every negative without prefix reuse: {naive / len(instances):.0f} tokens/instance)")
    llm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
