"""The transformers judge (`backend: transformers`) on a GPU: negatives/s, tokens/s and the share of bf16 peak.

    python bench/gpu_judge.py [--instances 24] [--negatives 20] [--prefix-tokens 400] [--candidate-tokens 160]
                              [--max-batch 20] [--peak-tflops T] [--tiny] [--json]

Runs `TransformersPointwiseJudge.score_pairs` (the judge's own forward passes: prefix once, candidates batched
over its KV cache) on a randomly initialised model of a real architecture, built in code with no download:
Qwen2-7B's configuration (28 layers, hidden 3584, GQA 28/4 heads, vocabulary 152,064), in bf16 on CUDA. The
prompts are synthetic token ids of the given lengths (a random model reads no text; speed depends only on the
shapes). Measured twice in the same run, with prefix reuse on and off (off: every pair is a whole prompt,
the baseline), after one warm-up instance each:

- negatives/s and tokens/s (tokens evaluated: with reuse, each prefix once plus every candidate);
- model FLOP/s: 2 x parameters (embeddings left out) x tokens + attention (4 x layers x hidden x context per
  token), over the elapsed time; and its fraction of the GPU's dense bf16 peak (`--peak-tflops`, else looked up
  from the device name: H100/H200 989, A100 312, L40S 362, L4 121, A10 125, RTX 4090 165);
- the speed-up of prefix reuse (the ratio of the two runs).

Needs a CUDA GPU (not part of CI). `--tiny`: a tiny random Qwen2 (2 layers, hidden 64) in fp32 on the CPU, a
smoke test of the script itself; its FLOP fraction is against `--peak-tflops` only.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import sys
import time
from typing import Any

PEAKS_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


def qwen2_7b(tiny: bool) -> Any:
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(
            vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=4096,
        )  # fmt: skip
    return Qwen2Config(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
        tie_word_embeddings=False,
    )  # fmt: skip


class _Tokens:
    """What the judge reads from a tokenizer when scoring token ids: the padding id."""

    pad_token_id = 0


def build(tiny: bool, max_batch: int) -> tuple[Any, Any]:
    import torch
    from transformers import Qwen2ForCausalLM

    from hardneg.judging.backends.transformers_pointwise import TransformersPointwiseJudge

    config = qwen2_7b(tiny)
    device = "cpu" if tiny else "cuda"
    dtype = torch.float32 if tiny else torch.bfloat16
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)  # random weights, made where they run
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    judge = TransformersPointwiseJudge(model="random-qwen2-7b", max_batch=max_batch, device=device)
    judge._model, judge._tokenizer = model, _Tokens()  # a random model, token ids in: no tokenizer to load
    judge._answer_ids = {0: [3], 1: [5]}  # any two ids: P(yes) over them (a random model's answer means nothing)
    forward = inspect.signature(model.forward).parameters
    judge._keep_logits = "logits_to_keep" in forward
    judge._cache_arg = "cache" if "cache" in forward else "past_key_values"
    return judge, config


def flops_per_token(config: Any, context: float) -> float:
    """A token's forward FLOPs through the layers (the lm_head is counted apart, at the kept positions only)."""
    h, layers = config.hidden_size, config.num_hidden_layers
    kv = h * config.num_key_value_heads // config.num_attention_heads
    per_layer = 2 * (h * h * 2 + h * kv * 2 + 3 * h * config.intermediate_size)  # q, o, k, v, mlp (2 flops/MAC)
    return layers * per_layer + 4 * layers * h * context


def measure(judge: Any, config: Any, work: list[tuple[list[int], dict[str, list[int]]]], reuse: bool) -> dict:
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() and judge.device == "cuda" else (lambda: None)
    judge.score_pairs(*work[0], prefix_reuse=reuse)  # warm-up (kernels, allocator)
    sync()
    started = time.perf_counter()
    tokens = negatives = 0
    flops = 0.0
    for prefix, candidates in work[1:]:
        _, evaluated = judge.score_pairs(prefix, candidates, prefix_reuse=reuse)
        tokens += evaluated
        negatives += len(candidates)
        for tokens_ in candidates.values():
            context = len(prefix) + len(tokens_) / 2  # mean context a candidate token attends to
            flops += flops_per_token(config, context) * len(tokens_)
            flops += 2 * config.hidden_size * config.vocab_size  # lm_head at its last position
        if reuse:
            flops += flops_per_token(config, len(prefix) / 2) * len(prefix)
        else:
            flops += flops_per_token(config, len(prefix) / 2) * len(prefix) * len(candidates)
    sync()
    elapsed = time.perf_counter() - started
    return {
        "prefix_reuse": reuse,
        "negatives": negatives,
        "seconds": round(elapsed, 3),
        "negatives_per_s": round(negatives / elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
        "tflops": round(flops / elapsed / 1e12, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=24)
    parser.add_argument("--negatives", type=int, default=20)
    parser.add_argument("--prefix-tokens", type=int, default=400)
    parser.add_argument("--candidate-tokens", type=int, default=160)
    parser.add_argument("--max-batch", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--tiny", action="store_true", help="a tiny random model on the CPU (smoke test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA GPU: run with --tiny for a CPU smoke test", file=sys.stderr)
        return 2
    if args.tiny:
        args.instances, args.negatives = min(args.instances, 4), min(args.negatives, 6)
        args.prefix_tokens, args.candidate_tokens = min(args.prefix_tokens, 64), min(args.candidate_tokens, 32)
    judge, config = build(args.tiny, args.max_batch)
    rng = random.Random(0)
    vocab = config.vocab_size
    work = []
    for _ in range(args.instances + 1):  # +1: the warm-up instance
        prefix = [rng.randrange(10, vocab) for _ in range(args.prefix_tokens)]
        candidates = {}
        for j in range(args.negatives):
            n = max(8, int(args.candidate_tokens * rng.uniform(0.6, 1.4)))  # passages differ in length
            candidates[f"d{j}"] = [rng.randrange(10, vocab) for _ in range(n)]
        work.append((prefix, candidates))

    device = "cpu" if args.tiny else torch.cuda.get_device_name(0)
    peak = args.peak_tflops
    if peak is None and not args.tiny:
        peak = next((v for k, v in PEAKS_TFLOPS.items() if k in device), None)
    runs = [measure(judge, config, work, reuse) for reuse in (True, False)]
    for run in runs:
        run["fraction_of_peak"] = round(run["tflops"] / peak, 3) if peak else None
    params = sum(p.numel() for p in judge._model.parameters())
    result = {
        "device": device,
        "model": "Qwen2-7B config, random weights" if not args.tiny else "tiny Qwen2, random weights",
        "parameters": params,
        "dtype": "float32" if args.tiny else "bfloat16",
        "peak_tflops": peak,
        "shapes": {k: getattr(args, k) for k in ("instances", "negatives", "prefix_tokens", "candidate_tokens")},
        "max_batch": args.max_batch,
        "runs": runs,
        "prefix_reuse_speedup": round(runs[0]["negatives_per_s"] / runs[1]["negatives_per_s"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']} ({params / 1e9:.2f} B parameters, {result['dtype']}) on {device}")
    print(f"{args.instances} instances x {args.negatives} negatives, prefix {args.prefix_tokens} tokens, candidates "
          f"~{args.candidate_tokens} tokens, {args.max_batch} candidates per forward pass")  # fmt: skip
    for run in runs:
        share = f"{run['fraction_of_peak']:.1%} of {peak:g} TFLOPS bf16 peak" if run["fraction_of_peak"] else "no peak"
        print(
            f"  prefix reuse {'on ' if run['prefix_reuse'] else 'off'}: {run['negatives_per_s']:>9.2f} negatives/s, "
            f"{run['tokens_per_s']:>10.1f} tokens/s, {run['tflops']:.3f} TFLOP/s ({share})"
        )
    print(f"  prefix reuse speed-up: {result['prefix_reuse_speedup']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
