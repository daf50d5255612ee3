"""Training throughput of `hardneg train retriever` / `train reranker` (short fixed runs).

For each trainer it measures examples/s of the real training function (hardneg.train, sentence-transformers
Trainer, per-epoch sampling, atomic save excluded from the timing) and of a plain PyTorch loop doing the same
forward/backward/step on the same batches with the same loss (the baseline, measured in the same run). The ratio
trainer / baseline is the overhead the Trainer and our data pipeline add (1.0 = none).

On a GPU it also reports model FLOPs utilisation: 6 x parameters x tokens per second over the GPU's dense
bf16/fp16 peak (from the table below, or --peak-tflops). Tokens are the non-padding tokens after truncation.

    python bench/train.py                      # SciFact train from ../shared/data, CPU-sized defaults
    python bench/train.py --steps 20 --batch-size 64 --max-length 256   # GPU-sized
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARDNEG_SHARED_DATA", REPO.parent / "shared" / "data"))

# Dense bf16/fp16 tensor-core peaks in TFLOP/s (vendor data sheets, without sparsity), matched by device name.
GPU_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "A10G": 125.0,
    "L40S": 362.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
    "V100": 125.0,
    "T4": 65.0,
}


def gpu_peak(name: str) -> float | None:
    for key, value in GPU_PEAK_TFLOPS.items():  # most specific names come first
        if key.lower() in name.lower():
            return value
    return None


def build_training_file(path: Path, instances: int, negatives: int, seed: int) -> None:
    """SciFact train instances with random corpus negatives (throughput does not depend on negative quality)."""
    from hardneg.data.beir import load_beir
    from hardneg.data.io import write_instances
    from hardneg.data.records import Instance

    data = load_beir(SHARED / "scifact", "train")
    rng = random.Random(seed)
    docids = sorted(data.corpus)
    rows = []
    for qid in sorted(data.qrels)[:instances]:
        pos = [data.corpus[d] for d, r in data.qrels[qid].items() if r > 0 and d in data.corpus]
        negs = [data.corpus[d] for d in rng.sample(docids, negatives) if d not in data.qrels[qid]]
        rows.append(Instance(qid, data.queries[qid], pos, negs, "scifact"))
    write_instances(path, rows)


def count_tokens(tokenizer: Any, texts: list[str], max_length: int, pairs: list[tuple[str, str]] | None = None) -> int:
    if pairs is not None:
        enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True, max_length=max_length)
    else:
        enc = tokenizer(texts, truncation=True, max_length=max_length)
    return sum(len(ids) for ids in enc["input_ids"])


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def baseline_retriever(train: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Plain loop: SentenceTransformer forward, MultipleNegativesRankingLoss, AdamW step."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from hardneg.models import minilm_path
    from hardneg.training.data import build_examples, load_training_instances

    model = SentenceTransformer(minilm_path())
    model.max_seq_length = args.max_length
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    examples = build_examples(load_training_instances(train), negatives=args.negatives, epochs=1, seed=0)[0][0]
    batches = [examples[i : i + args.batch_size] for i in range(0, len(examples), args.batch_size)][: args.steps]
    autocast = _autocast()
    model.train()

    def step(batch: list[Any]) -> int:
        columns = [[e.query for e in batch], [e.positive for e in batch]]
        columns += [[e.negatives[j] for e in batch] for j in range(args.negatives)]
        features = [model.tokenize(col) for col in columns]
        count = sum(int(f["attention_mask"].sum()) for f in features)
        features = [{k: v.to(model.device) if hasattr(v, "to") else v for k, v in f.items()} for f in features]
        with autocast:
            loss = loss_fn(features, None)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return count

    step(batches[0])  # warm-up (allocator, kernels), untimed
    sync()
    tokens = 0
    start = time.perf_counter()
    for batch in batches:
        tokens += step(batch)
    sync()
    seconds = time.perf_counter() - start
    n = sum(len(b) for b in batches)
    return {"examples": n, "seconds": seconds, "tokens": tokens, "params": _params(model)}


def baseline_reranker(train: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Plain loop: CrossEncoder forward on (query, passage) pairs, BCE with pos_weight = k, AdamW step."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    from hardneg.models import minilm_path
    from hardneg.training.data import build_examples, load_training_instances

    model = CrossEncoder(minilm_path(), num_labels=1, max_length=args.max_length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float(args.negatives), device=model.device))
    examples = build_examples(load_training_instances(train), negatives=args.negatives, epochs=1, seed=0)[0][0]
    pairs: list[tuple[str, str, float]] = []
    for e in examples:
        pairs.append((e.query, e.positive, 1.0))
        pairs += [(e.query, n, 0.0) for n in e.negatives]
    batches = [pairs[i : i + args.batch_size] for i in range(0, len(pairs), args.batch_size)][: args.steps]
    autocast = _autocast()
    model.model.train()

    def step(batch: list[tuple[str, str, float]]) -> int:
        enc = model.tokenizer(
            [q for q, _, _ in batch], [p for _, p, _ in batch], padding=True, truncation=True,
            max_length=args.max_length, return_tensors="pt",
        )  # fmt: skip
        count = int(enc["attention_mask"].sum())
        enc = {k: v.to(model.device) for k, v in enc.items()}
        labels = torch.tensor([y for _, _, y in batch], device=model.device)
        with autocast:
            logits = model.model(**enc).logits.view(-1)
        loss = loss_fn(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return count

    step(batches[0])  # warm-up, untimed
    sync()
    tokens = 0
    start = time.perf_counter()
    for batch in batches:
        tokens += step(batch)
    sync()
    seconds = time.perf_counter() - start
    return {
        "examples": sum(len(b) for b in batches),
        "seconds": seconds,
        "tokens": tokens,
        "params": _params(model.model),
    }


def _autocast() -> Any:
    import contextlib

    import torch

    from hardneg.training.common import resolve_precision

    precision = resolve_precision("auto")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def hardneg_run(kind: str, train: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from hardneg.training.reranker import RerankerConfig, train_reranker
    from hardneg.training.retriever import RetrieverConfig, train_retriever

    if kind == "retriever":
        config: Any = RetrieverConfig(  # the baseline's loss: plain InfoNCE, one backward pass per batch
            negatives=args.negatives, batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps,
            warmup=0, quiet=True, cached_loss=False,
        )  # fmt: skip
        result = train_retriever(train, out, config)
    else:
        config = RerankerConfig(  # one forward pass per step, as the baseline
            negatives=args.negatives, batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps,
            warmup=0, quiet=True, mini_batch_size=args.batch_size,
        )  # fmt: skip
        result = train_reranker(train, out, config)
    return {"examples": result.examples, "seconds": result.seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU (default: table).")
    parser.add_argument("--only", choices=["retriever", "reranker"], default=None)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    if not (SHARED / "scifact").is_dir():
        print(f"needs SciFact at {SHARED / 'scifact'}", file=sys.stderr)
        return 2

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    peak = args.peak_tflops or (gpu_peak(device) if torch.cuda.is_available() else None)
    report: dict[str, Any] = {"device": device, "torch_threads": torch.get_num_threads(), "settings": vars(args)}
    with tempfile.TemporaryDirectory(prefix="hardneg-bench-train-") as tmp:
        train = Path(tmp) / "train.jsonl"
        build_training_file(train, args.instances, max(args.negatives, 8), seed=0)
        kinds = [args.only] if args.only else ["retriever", "reranker"]
        for kind in kinds:
            # Model loading is outside both timings; hardneg's includes the Trainer's start-up (conservative).
            base = baseline_retriever(train, args) if kind == "retriever" else baseline_reranker(train, args)
            with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its log lines on stdout
                ours = hardneg_run(kind, train, Path(tmp) / kind, args)
            entry: dict[str, Any] = {
                "hardneg_examples_per_s": ours["examples"] / ours["seconds"],
                "baseline_examples_per_s": base["examples"] / base["seconds"],
                "ratio_vs_plain_loop": (ours["examples"] / ours["seconds"]) / (base["examples"] / base["seconds"]),
                "examples": ours["examples"],
                "params": base["params"],
            }
            # Unit note: a retriever example is a group (query + 1 + k passages); a reranker example is one pair.
            tokens_per_s = base["tokens"] / base["seconds"]
            entry["baseline_tokens_per_s"] = tokens_per_s
            if peak:
                entry["mfu_baseline"] = 6 * base["params"] * tokens_per_s / (peak * 1e12)
                # hardneg's loop handles the same batches, so its token rate scales with its example rate.
                entry["mfu_hardneg"] = entry["mfu_baseline"] * entry["ratio_vs_plain_loop"]
                entry["peak_tflops"] = peak
            report[kind] = entry
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"device: {device}, torch threads {report['torch_threads']}, {args.steps} steps x batch {args.batch_size}, "
          f"{args.negatives} negatives, max length {args.max_length}")  # fmt: skip
    for kind in ("retriever", "reranker"):
        if kind not in report:
            continue
        e = report[kind]
        unit = "groups" if kind == "retriever" else "pairs"
        line = (f"{kind:9s}: hardneg {e['hardneg_examples_per_s']:.2f} {unit}/s, plain loop "
                f"{e['baseline_examples_per_s']:.2f} {unit}/s, ratio {e['ratio_vs_plain_loop']:.2f}")  # fmt: skip
        if "mfu_hardneg" in e:
            line += f", MFU {100 * e['mfu_hardneg']:.1f}% (plain loop {100 * e['mfu_baseline']:.1f}%)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
