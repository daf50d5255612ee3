"""The README quickstart on SciFact at its defaults: each step's wall time and peak RSS, and the training step
against the same training through sentence-transformers directly, measured in the same run.

Steps (each a fresh process, measured by a small monitor process: wall time and the peak RSS of the step's
process tree, `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`):

    hardneg mine SCIFACT --split train -o scifact.train.jsonl.gz --negatives 15 --save-scores
    hardneg clean scifact.train.jsonl.gz -o scifact.rlhn.jsonl.gz --store judgments.db
    hardneg train retriever scifact.train.jsonl.gz -o models/default
    hardneg evaluate models/default SCIFACT --split test --json
    sentence-transformers: the same training (MiniLM from hardneg.models.minilm_path(), the same rows: query,
        positive, negative_1..k as hardneg samples them, CachedMultipleNegativesRankingLoss at the same scale and
        mini-batch size, the same batch size, learning rate, warmup, steps and max length) with
        SentenceTransformerTrainer directly.

Targets: every step's peak RSS under 4 GB; training time and peak RSS each at most 1.0x sentence-transformers'.

    python bench/quickstart.py                              # the whole quickstart: hours of training on 2 CPU cores
    python bench/quickstart.py --limit 32 --max-steps 1 --batch-size 8    # a quick try (minutes)
    python bench/quickstart.py --json

`--limit N` mines only the first N train queries (`hardneg mine --limit`) and evaluates on the first N test queries
over their judged documents plus 500 others; `--max-steps` and `--batch-size` are passed to both trainings (with
the cached loss the peak does not depend on the batch size: mini-batches of `--mini-batch-size` texts).
SciFact comes from ../shared/data (HARDNEG_SHARED_DATA overrides).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARDNEG_SHARED_DATA", REPO.parent / "shared" / "data"))
GB = 1024**3
TARGET_RSS = 4 * GB


def measure(command: list[str], log: Path) -> dict[str, Any]:
    """Run `command` under a fresh monitor process: wall and CPU (user + sys) seconds, peak RSS of its process
    tree, exit code. On a shared machine CPU seconds move less with the load than wall time."""
    monitor = (
        "import json, resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "with open(sys.argv[1], 'w') as log:\n"
        "    rc = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "cpu = usage.ru_utime + usage.ru_stime\n"
        "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - start, 'cpu_seconds': cpu,\n"
        "                  'peak_rss': usage.ru_maxrss * 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", monitor, str(log), *command], capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"step failed (exit {result['rc']}): {' '.join(command)}\n{tail}")
    return result


def hardneg(*args: str) -> list[str]:
    return [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet", *args]


def test_slice(scifact: Path, out: Path, limit: int, others: int = 500) -> Path:
    """The first `limit` test queries over their judged documents plus `others` random ones (a BEIR folder)."""
    from hardneg.data.beir import load_beir

    test = load_beir(scifact, "test")
    qids = sorted(test.qrels)[:limit]
    keep = {d for q in qids for d in test.qrels[q] if d in test.corpus}
    keep |= set(random.Random(0).sample(sorted(set(test.corpus) - keep), others))
    (out / "qrels").mkdir(parents=True)
    with open(out / "corpus.jsonl", "w") as handle:
        for docid in sorted(keep):
            p = test.corpus[docid]
            handle.write(json.dumps({"_id": docid, "title": p.title, "text": p.text}) + "\n")
    with open(out / "queries.jsonl", "w") as handle:
        for qid in qids:
            handle.write(json.dumps({"_id": qid, "text": test.queries[qid]}) + "\n")
    with open(out / "qrels" / "test.tsv", "w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for qid in qids:
            for docid, label in test.qrels[qid].items():
                handle.write(f"{qid}\t{docid}\t{label}\n")
    return out


def st_direct(train: str, out: str, settings: str) -> None:
    """The training step through sentence-transformers alone (run in its own process by `main`)."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    from hardneg.data.io import read_instances
    from hardneg.models import minilm_path
    from hardneg.training.common import group_columns
    from hardneg.training.data import build_examples

    s = json.loads(settings)
    # the same rows hardneg trains on (its sampler is plain Python; the training is sentence-transformers')
    per_epoch, _ = build_examples(list(read_instances(train)), negatives=s["negatives"], epochs=1, seed=s["seed"])
    dataset = Dataset.from_dict(group_columns(per_epoch, s["negatives"]))
    model = SentenceTransformer(minilm_path())
    model.max_seq_length = s["max_length"]
    loss = CachedMultipleNegativesRankingLoss(model, scale=1.0 / s["temperature"], mini_batch_size=s["mini_batch_size"])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(Path(out) / "scratch"), num_train_epochs=1, max_steps=s["max_steps"] or -1,
        per_device_train_batch_size=s["batch_size"], learning_rate=s["lr"], warmup_steps=s["warmup"], seed=s["seed"],
        save_strategy="no", report_to="none", disable_tqdm=True, dataloader_drop_last=False,
    )  # fmt: skip
    SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss).train()
    model.save(str(Path(out) / "model"))


def _row(result: dict[str, Any]) -> dict[str, float]:
    return {
        "seconds": round(result["seconds"], 1),
        "cpu_seconds": round(result["cpu_seconds"], 1),
        "peak_rss_gb": round(result["peak_rss"] / GB, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="First N train queries (and N test queries).")
    parser.add_argument("--max-steps", type=int, default=None, help="Training steps (default: one epoch).")
    parser.add_argument("--batch-size", type=int, default=None, help="Training batch (default: hardneg's).")
    parser.add_argument("--skip-clean", action="store_true", help="Leave out the clean step.")
    parser.add_argument("--train-only", action="store_true", help="Mine, then the two trainings only.")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the outputs here (default: a temp folder).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--st-direct", nargs=3, metavar=("TRAIN", "OUT", "SETTINGS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.st_direct:
        st_direct(*args.st_direct)
        return 0

    from hardneg.training.retriever import RetrieverConfig

    scifact = SHARED / "scifact"
    if not (scifact / "corpus.jsonl").exists() and not (scifact / "corpus.jsonl.gz").exists():
        print(f"SciFact not found under {scifact}", file=sys.stderr)
        return 2
    defaults = RetrieverConfig()
    with tempfile.TemporaryDirectory(prefix="hardneg-quickstart-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        train = work / "scifact.train.jsonl.gz"
        limit = ["--limit", str(args.limit)] if args.limit else []
        train_flags = [*(["--max-steps", str(args.max_steps)] if args.max_steps else []),
                       *(["--batch-size", str(args.batch_size)] if args.batch_size else [])]  # fmt: skip
        beir = test_slice(scifact, work / "test-slice", args.limit) if args.limit else scifact
        mine = ["mine", str(scifact), "--split", "train", "-o", str(train), "--negatives", "15", "--save-scores"]
        steps: list[tuple[str, list[str]]] = [("mine", hardneg(*mine, *limit))]
        if not (args.skip_clean or args.train_only):
            clean = ["clean", str(train), "-o", str(work / "scifact.rlhn.jsonl.gz"), "--store", str(work / "j.db")]
            steps.append(("clean", hardneg(*clean)))
        model = work / "models" / "default"
        steps.append(("train retriever", hardneg("train", "retriever", str(train), "-o", str(model), *train_flags)))
        settings = {
            "negatives": defaults.negatives,
            "seed": defaults.seed,
            "max_length": defaults.max_length,
            "temperature": defaults.temperature,
            "mini_batch_size": defaults.mini_batch_size,
            "batch_size": args.batch_size or defaults.batch_size,
            "lr": defaults.lr,
            "warmup": defaults.warmup,
            "max_steps": args.max_steps,
        }
        direct = [sys.executable, str(Path(__file__).resolve()), "--st-direct", str(train), str(work / "st")]
        steps.append(("train (sentence-transformers)", [*direct, json.dumps(settings)]))
        if not args.train_only:
            evaluate = ["evaluate", str(model), str(beir), "--split", "test", "--no-cache", "--json"]
            steps.append(("evaluate", hardneg(*evaluate)))
        rows: dict[str, dict[str, Any]] = {}
        for name, command in steps:
            rows[name] = measure(command, work / f"{name.replace(' ', '_')}.log")
            print(f"{name}: {rows[name]['seconds']:.1f} s ({rows[name]['cpu_seconds']:.1f} s CPU), "
                  f"peak RSS {rows[name]['peak_rss'] / GB:.2f} GB",
                  file=sys.stderr, flush=True)  # fmt: skip
        ours, base = rows["train retriever"], rows["train (sentence-transformers)"]
        report = {
            "limit": args.limit,
            "max_steps": args.max_steps,
            "batch_size": settings["batch_size"],
            "max_length": settings["max_length"],
            "mini_batch_size": settings["mini_batch_size"],
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "steps": {n: _row(r) for n, r in rows.items()},
            "train_time_ratio": round(ours["seconds"] / base["seconds"], 3),
            "train_cpu_time_ratio": round(ours["cpu_seconds"] / base["cpu_seconds"], 3),
            "train_rss_ratio": round(ours["peak_rss"] / base["peak_rss"], 3),
            "every_step_under_4gb": all(r["peak_rss"] < TARGET_RSS for r in rows.values()),
        }
        evaluation = (work / "evaluate.log").read_text() if "evaluate" in rows else ""
        with contextlib.suppress(ValueError, KeyError):
            report["ndcg@10"] = json.loads(evaluation[evaluation.index("{") :])["ndcg@10"]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'step':32} {'wall s':>9} {'CPU s':>9} {'peak RSS GB':>12}")
    for name, row in report["steps"].items():
        print(f"{name:32} {row['seconds']:>9.1f} {row['cpu_seconds']:>9.1f} {row['peak_rss_gb']:>12.2f}")
    print(f"training vs sentence-transformers: wall time {report['train_time_ratio']:.2f}x, CPU time "
          f"{report['train_cpu_time_ratio']:.2f}x (target <= 1.0), peak RSS {report['train_rss_ratio']:.2f}x "
          "(target <= 1.0)")  # fmt: skip
    print(f"every step under 4 GB: {report['every_step_under_4gb']}; load average {report['load_average']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
