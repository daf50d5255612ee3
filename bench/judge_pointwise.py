"""Pairs/s of the llama.cpp pointwise judge with prefix reuse vs one full prompt per pair (same model, same pairs),
and the judge's tokens/s against the model's raw prefill rate at 1 thread and at every CPU the process may use.

    python bench/judge_pointwise.py [--model qwen2.5-coder-1.5b] [--instances 3] [--negatives 5] [--state]

Prints the measured speed-up beside the bound the token counts allow (naive tokens / reused tokens: what the
speed-up would be if time were proportional to evaluated tokens), the fraction of that bound reached (target
>= 90%); the raw prefill tokens/s (one 512-token prompt evaluated from an empty cache, best of 3) at 1 thread
and at all threads (`hardneg.models.available_cpus()`, the judge's default), and the judge's own tokens/s with
prefix reuse as a fraction of the all-threads raw rate (target >= 70%). `--state` also times the save_state /
load_state alternative to KV truncation. Data: ../shared/data/rlhn-sample, else the shipped sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [
    REPO.parent / "shared" / "data" / "rlhn-sample" / "fiqa.stage_1.gpt-4o-mini.jsonl.gz",
    REPO / "src" / "hardneg" / "resources" / "sample" / "train.jsonl",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--input", type=Path, default=None)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-chars", type=int, default=None, help="max_passage_chars (judge default if unset)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per mode; the fastest counts")
    parser.add_argument("--state", action="store_true", help="also time save_state/load_state prefix reuse")
    args = parser.parse_args()

    from hardneg.data.io import read_instances
    from hardneg.judging.backends.llama_pointwise import LlamaPointwiseJudge

    path = args.input or next((p for p in SAMPLES if p.exists()), None)
    if path is None:
        print("no data: pass --input FILE", file=sys.stderr)
        return 2
    instances = []
    for inst in read_instances(path):
        if inst.positives and len(inst.negatives) >= args.negatives:
            instances.append(inst)
        if len(instances) >= args.instances:
            break
    extra = {"max_passage_chars": args.max_chars} if args.max_chars else {}
    judge = LlamaPointwiseJudge(args.model, n_threads=args.threads, **extra)
    start = time.perf_counter()
    judge.llm  # noqa: B018 - load the model outside the timed runs
    load_s = time.perf_counter() - start
    parts = [judge.prompt_parts(inst, inst.negative_ids[: args.negatives]) for inst in instances]
    n_pairs = sum(len(p.candidates) for p in parts)
    print(
        f"model {args.model} ({judge.llm.context_params.n_threads} threads, "
        f"{judge.llm.context_params.n_threads_batch} for prompts), "
        f"loaded in {load_s:.1f} s; data {path.name}: {len(parts)} instances, {n_pairs} pairs; "
        f"cpu count {os.cpu_count()}"
    )

    def run(reuse: bool) -> tuple[float, int, dict]:
        t0 = time.perf_counter()
        tokens = 0
        scores: dict = {}
        for p in parts:
            s, n = judge.score_pairs(p, prefix_reuse=reuse)
            tokens += n
            scores.update(s)
        return time.perf_counter() - t0, tokens, scores

    judge.score_pairs(parts[0], prefix_reuse=True)  # warm-up (first decode allocates buffers)

    def run_state() -> float:
        llm = judge.llm
        t0 = time.perf_counter()
        for p in parts:
            judge._eval_from(0, p.prefix)
            state = llm.save_state()
            for tokens in p.candidates.values():
                llm.load_state(state)
                llm.eval(tokens)
                judge._p_yes()
        return time.perf_counter() - t0

    t_state = float("inf")
    # Interleaved repeats, best time per mode: other load on a shared machine hits both modes alike.
    t_full = t_reuse = float("inf")
    for _ in range(max(1, args.repeats)):
        t, n_full, s_full = run(False)
        t_full = min(t_full, t)
        t, n_reuse, s_reuse = run(True)
        t_reuse = min(t_reuse, t)
        if args.state:
            t_state = min(t_state, run_state())
    worst = max(abs(s_full[d] - s_reuse[d]) for d in s_full)
    speedup = t_full / t_reuse
    bound = n_full / n_reuse
    print(
        f"full prompt per pair: {n_pairs / t_full:.3f} pairs/s  ({n_full} tokens in {t_full:.1f} s, "
        f"raw prefill {n_full / t_full:.1f} tokens/s)"
    )
    print(
        f"prefix reuse (KV truncation): {n_pairs / t_reuse:.3f} pairs/s  ({n_reuse} tokens in {t_reuse:.1f} s, "
        f"{n_reuse / t_reuse:.1f} tokens/s)"
    )
    print(
        f"speed-up {speedup:.2f}x; token bound {bound:.2f}x; fraction of bound reached {speedup / bound:.0%} "
        f"(target >= 90%); max |P(yes) difference| {worst:.2e}"
    )
    if t_state < float("inf"):
        print(
            f"prefix reuse (save_state/load_state): {n_pairs / t_state:.3f} pairs/s ({t_state:.1f} s); "
            f"KV truncation takes {t_reuse / t_state:.2f}x the time of state restore"
        )
    raw_all = _raw_prefill(args.model, None)
    raw_one = _raw_prefill(args.model, 1)
    from hardneg.models import available_cpus

    judge_rate = n_reuse / t_reuse
    print(
        f"raw prefill: {raw_one:.1f} tokens/s at 1 thread, {raw_all:.1f} tokens/s at {available_cpus()} threads "
        f"({raw_all / raw_one:.2f}x); the judge: {judge_rate:.1f} tokens/s = {judge_rate / raw_all:.0%} of the "
        "all-threads raw rate (target >= 70%)"
    )
    judge.close()
    return 0


def _raw_prefill(model: str, threads: int | None, n_tokens: int = 512, repeats: int = 3) -> float:
    """Tokens/s of one n_tokens-long prompt evaluated from an empty KV cache (best of `repeats`)."""
    from hardneg.models import load_llama

    llm = load_llama(model, n_ctx=2048, n_threads=threads, seed=0)
    text = " ".join(f"word{i} of a long enough prompt for timing." for i in range(n_tokens))
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)[:n_tokens]
    llm.n_tokens = 0
    llm.eval(tokens[:16])  # warm-up: first decode allocates buffers
    best = float("inf")
    for _ in range(repeats):
        llm.n_tokens = 0
        start = time.perf_counter()
        llm.eval(tokens)
        best = min(best, time.perf_counter() - start)
    llm.close()
    return len(tokens) / best


if __name__ == "__main__":
    raise SystemExit(main())
