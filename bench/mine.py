"""Benchmark: `hardneg mine --method dense` vs sentence-transformers `mine_hard_negatives`.

Same corpus, queries, model (the embedded MiniLM), batch size, candidate depth and number of negatives;
FAISS exact inner product on both sides (`use_faiss=True`); no embedding cache on either side (cold).
Each side runs in its own subprocess, so its peak RSS (from `os.wait4`) is its own. Prints wall time,
peak RSS and the two ratios (hardneg / sentence-transformers). Targets: time <= 1.0x, peak RSS <= 1/3.

hardneg runs with its default `--backend auto`: on a CPU with onnxruntime installed it encodes with ONNX Runtime
and never imports torch (hardneg.encode_onnx). The model's ONNX export is a one-time artefact, made on first use
and cached like a downloaded model; the bench makes it first, outside the timed runs, and prints what that cost.
`--backend torch` measures hardneg's torch path instead.

A torch process first imports torch and sentence-transformers and loads the model, which alone costs several
hundred MiB; on a small corpus that fixed part is nearly all of its peak. So when hardneg encodes with torch, a
third process measures it (import + model load + one encode call, nothing mined), and the bench also prints the
ratio of what each side needs *above* that baseline: the memory that grows with the corpus and the queries. The
baseline encodes one batch of texts longer than the model's limit, so it holds the largest forward pass either
side can make (activations at full length), not only the weights.

With `--rescore [CROSS_ENCODER]` the bench measures the rescoring path instead: `hardneg mine --method dense
--rescore CE` against `mine_hard_negatives(..., cross_encoder=CrossEncoder(CE))`, same cross-encoder, same
relative margin (`--relative-margin`, default 0: sentence-transformers only rescores when a margin or a cut is
set) and the same number of candidates rescored per query: sentence-transformers rescores range_max + the most
positives any query has, so hardneg gets `--rescore-depth` = that number. Without a folder, a cross-encoder is
first trained for a few steps on the shipped sample (`hardneg.train_reranker`, max length
`--rescore-max-length`): its quality does not matter for time and memory. Its ONNX export is made before the
timed runs, as the encoder's. Targets: time <= 1.0x, peak RSS <= 0.5x. The bench also prints how many of
hardneg's negatives sentence-transformers picked too.

    python bench/mine.py                       # SciFact train from ../shared/data (all 5,183 docs)
    python bench/mine.py --max-docs 1000       # a smaller corpus: all positives + the first docs
    python bench/mine.py --beir-dir DIR --split train --negatives 30
    python bench/mine.py --backend torch       # hardneg's torch encoder (adds the baseline process)
    python bench/mine.py --rescore --max-queries 200 --depth 30 --negatives 10   # the cross-encoder path
    python bench/mine.py --rescore models/reranker                              # your own cross-encoder
    python bench/mine.py --index-recall         # FAISS ivf / hnsw against flat: recall@100 and search time
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardneg.retrieval.encoders import BACKENDS

REPO = Path(__file__).resolve().parents[1]
SHARED_SCIFACT = REPO.parent / "shared" / "data" / "scifact"

ST_SCRIPT = r"""
import json, sys
from hardneg.data.beir import load_beir
from hardneg.data.records import passage_text
from hardneg.models import minilm_path
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import mine_hard_negatives

folder, split, out, negatives, depth, batch_size, cross_encoder, margin = sys.argv[1:9]
data = load_beir(folder, split)
anchors, positives = [], []
for qid, labels in data.qrels.items():
    for docid, label in labels.items():
        if label > 0 and docid in data.corpus:
            anchors.append(data.queries[qid])
            positives.append(passage_text(data.corpus[docid], with_title=True))
corpus = [passage_text(p, with_title=True) for p in data.corpus.values()]
model = SentenceTransformer(minilm_path(), device="cpu")
options = {}
if cross_encoder:
    from sentence_transformers.cross_encoder import CrossEncoder
    options = {"cross_encoder": CrossEncoder(cross_encoder, device="cpu"), "relative_margin": float(margin)}
result = mine_hard_negatives(
    Dataset.from_dict({"query": anchors, "positive": positives}), model, corpus=corpus,
    range_min=0, range_max=int(depth), num_negatives=int(negatives), sampling_strategy="top",
    output_format="n-tuple", batch_size=int(batch_size), use_faiss=True, verbose=False, **options,
)
result.to_json(out)
print(json.dumps({"rows": len(result)}))
"""

BASELINE_SCRIPT = r"""
import sys
from hardneg.models import minilm_path
from sentence_transformers import SentenceTransformer
batch_size = int(sys.argv[1])
model = SentenceTransformer(minilm_path(), device="cpu")
# Longer than max_seq_length, so every text is truncated to the limit: the largest batch either side encodes.
model.encode(["retrieval training data with false negatives " * 200] * batch_size, batch_size=batch_size)
print("{}")
"""

EXPORT_SCRIPT = r"""
import sys
from hardneg.retrieval.keys import path_key
from hardneg.retrieval.onnx import META_FILE, export_folder, load_onnx_encoder
from hardneg.retrieval import onnx_cross
from hardneg.models import minilm_path
cached = (export_folder(path_key(minilm_path())) / META_FILE).is_file()
load_onnx_encoder()
done = ["encoder " + ("already cached" if cached else "exported now")]
if len(sys.argv) > 1:
    cached = (onnx_cross.export_folder(path_key(sys.argv[1])) / META_FILE).is_file()
    onnx_cross.load_onnx_cross_encoder(sys.argv[1])
    done.append("cross-encoder " + ("already cached" if cached else "exported now"))
print(", ".join(done))
"""

TRAIN_CE_SCRIPT = r"""
import sys
import hardneg
from hardneg.data.sample import sample_train_path
hardneg.train_reranker(sample_train_path(), sys.argv[1], hardneg.RerankerConfig(
    negatives=3, batch_size=8, max_length=int(sys.argv[2]), max_steps=8, warmup=0, quiet=True))
"""

TINY_DOCS = [
    ("Cats", "Cats are small domesticated carnivores that purr and hunt mice."),
    ("Dogs", "Dogs are loyal animals; a dog barks and fetches sticks."),
    ("Mice", "Mice are small rodents that cats hunt at night."),
    ("Markets", "Stock markets crash when investors panic and sell shares."),
    ("Rates", "Interest rates set by central banks move stock markets."),
    ("Pets", "Cats and dogs can live together when raised as pets."),
    ("Birds", "Small carnivores such as cats hunt mice and birds."),
    ("Farms", "Farmers markets sell fresh vegetables every week."),
]


def write_tiny(folder: Path) -> Path:
    """A shipped toy corpus for checkouts without ../shared (numbers then mean little)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as handle:
        for i, (title, text) in enumerate(TINY_DOCS):
            handle.write(json.dumps({"_id": f"d{i}", "title": title, "text": text}) + "\n")
    queries = {"q0": "what do cats hunt", "q1": "why do markets crash", "q2": "do dogs bark"}
    with open(folder / "queries.jsonl", "w") as handle:
        handle.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td3\t1\nq2\td1\t1\n")
    return folder


def subsample(src: Path, split: str, dst: Path, max_docs: int, max_queries: int = 0) -> Path:
    """Copy a BEIR folder keeping the first `max_queries` queries of `split` (sorted ids; 0: all) and every positive
    of `split` plus the first docs, up to `max_docs` (0: all)."""
    from hardneg.data.beir import iter_corpus, load_qrels

    qrels = load_qrels(src, split)
    if max_queries:
        qrels = {q: qrels[q] for q in sorted(qrels)[:max_queries]}
    positives = {d for labels in qrels.values() for d, v in labels.items() if v > 0}
    (dst / "qrels").mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(dst / "corpus.jsonl", "w") as handle:
        for passage in iter_corpus(src):
            if not max_docs or passage.docid in positives or kept < max_docs - len(positives):
                handle.write(json.dumps({"_id": passage.docid, "title": passage.title, "text": passage.text}) + "\n")
                kept += 1
    for name in ("queries.jsonl", "queries.jsonl.gz"):
        if (src / name).exists():
            (dst / name).write_bytes((src / name).read_bytes())
    with open(dst / "qrels" / f"{split}.tsv", "w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{q}\t{d}\t{v}\n" for q, labels in qrels.items() for d, v in labels.items())
    return dst


def max_positives(folder: Path, split: str) -> int:
    """The most positives (label > 0, in the corpus) any query of `split` has: sentence-transformers retrieves and
    rescores range_max + that many candidates per query."""
    from hardneg.data.beir import load_beir

    data = load_beir(folder, split)
    counts = [sum(1 for d, v in labels.items() if v > 0 and d in data.corpus) for labels in data.qrels.values()]
    return max(counts, default=0)


def overlap(ours: Path, st: Path) -> tuple[int, int]:
    """(hardneg's negatives that sentence-transformers also picked for the same query, hardneg's negatives)."""
    from hardneg.data.io import iter_jsonl, read_instances
    from hardneg.data.records import passage_text

    theirs: dict[str, set[str]] = {}
    for _n, row in iter_jsonl(st):
        theirs.setdefault(row["query"], set()).update(v for k, v in row.items() if k.startswith("negative"))
    common = total = 0
    for inst in read_instances(ours):
        texts = {passage_text(p, with_title=True) for p in inst.negatives}
        common += len(texts & theirs.get(inst.query, set()))
        total += len(texts)
    return common, total


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stdout of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024, stdout  # ru_maxrss is KiB on Linux


def index_recall(folder: Path, split: str, depth: int, batch_size: int) -> None:
    """`--index ivf|hnsw` against `flat` on the same embeddings (MiniLM, from the embedding cache): build time,
    search time of every query of `split`, and recall@depth of the exact top `depth`."""
    from hardneg.data.beir import load_beir
    from hardneg.data.records import passage_text
    from hardneg.retrieval.embed import encode_texts
    from hardneg.retrieval.encoders import load_encoder
    from hardneg.retrieval.index import DenseIndex, recall_at_k

    data = load_beir(folder, split)
    model = load_encoder(backend="auto")
    corpus = encode_texts(
        model, [passage_text(p, with_title=True) for p in data.corpus.values()], batch_size=batch_size
    )
    queries = encode_texts(model, [data.queries[q] for q in data.qrels if q in data.queries], batch_size=batch_size)
    print(f"data: {folder} (split {split}): {len(corpus)} passages, {len(queries)} queries; recall@{depth} vs flat")
    timings = {}
    exact = None
    for kind in ("flat", "ivf", "hnsw"):
        start = time.perf_counter()
        index = DenseIndex(corpus, kind)
        built = time.perf_counter() - start
        start = time.perf_counter()
        _, found = index.search(queries, depth)
        timings[kind] = time.perf_counter() - start
        exact = found if exact is None else exact
        settings = ", ".join(f"{k} {v}" for k, v in index.describe().items() if k != "index")
        print(f"{kind:5s} build {built:6.2f} s  search {timings[kind]:6.3f} s "
              f"({timings[kind] / timings['flat']:.2f}x flat)  recall@{depth} {recall_at_k(found, exact):.4f}"
              + (f"  ({settings})" if settings else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir-dir", type=Path, default=None, help="default: ../shared/data/scifact, else a toy set")
    parser.add_argument("--split", default="train")
    parser.add_argument("--negatives", type=int, default=30)
    parser.add_argument("--depth", type=int, default=100, help="candidates considered (range 0-DEPTH / range_max)")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size, both sides")
    parser.add_argument("--max-docs", type=int, default=0, help="subsample the corpus (0: all)")
    parser.add_argument("--toy", action="store_true", help="the shipped 8-document toy set (a smoke run)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="hardneg's encoder")
    parser.add_argument("--max-queries", type=int, default=0, help="the first N queries of the split (0: all)")
    parser.add_argument(
        "--rescore", nargs="?", const="", default=None, metavar="CROSS_ENCODER",
        help="measure the cross-encoder rescoring path (no folder: train a small one on the shipped sample first)",
    )  # fmt: skip
    parser.add_argument("--rescore-max-length", type=int, default=256, help="max length of the trained cross-encoder")
    parser.add_argument(
        "--relative-margin", type=float, default=0.0,
        help="with --rescore, on both sides (0: drop candidates the cross-encoder scores above the positive)",
    )  # fmt: skip
    parser.add_argument(
        "--index-recall", action="store_true",
        help="instead: recall@DEPTH and search time of the FAISS ivf / hnsw indexes against flat (hardneg alone)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.index_recall:
        index_recall(args.beir_dir or SHARED_SCIFACT, args.split, args.depth, args.batch_size)
        return

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory(prefix="hardneg-bench-mine-") as tmp_name:
        tmp = Path(tmp_name)
        if args.toy or (args.beir_dir is None and not SHARED_SCIFACT.is_dir()):
            folder = write_tiny(tmp / "toy")
        else:
            folder = args.beir_dir or SHARED_SCIFACT
        if args.max_docs or args.max_queries:
            folder = subsample(folder, args.split, tmp / "subset", args.max_docs, args.max_queries)
        rescore = args.rescore is not None
        cross_encoder = ""
        extra: list[str] = []
        if rescore:
            cross_encoder = args.rescore or str(tmp / "cross-encoder")
            if not args.rescore:
                train_time, _, _ = run_child(
                    [sys.executable, "-c", TRAIN_CE_SCRIPT, cross_encoder, str(args.rescore_max_length)], env
                )
                print(f"cross-encoder: trained on the shipped sample for 8 steps (max length "
                      f"{args.rescore_max_length}), {train_time:.1f} s, not part of the timed runs")  # fmt: skip
            # sentence-transformers retrieves and rescores range_max + max positives candidates per query.
            depth = args.depth + max_positives(folder, args.split)
            extra = ["--rescore", cross_encoder, "--rescore-depth", str(depth),
                     "--relative-margin", str(args.relative_margin)]  # fmt: skip
        print(f"data: {folder} (split {args.split}); negatives {args.negatives}, depth {args.depth}, "
              f"batch size {args.batch_size}; cpu threads: torch default"
              + (f"; rescored by {cross_encoder}, {depth} candidates per query, relative margin "
                 f"{args.relative_margin}" if rescore else ""))  # fmt: skip

        ours_cmd = [
            sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet", "mine", str(folder),
            "--split", args.split, "-o", str(tmp / "ours.jsonl"), "--method", "dense", "--no-cache",
            "--negatives", str(args.negatives), "--range", f"0-{args.depth}", "--batch-size", str(args.batch_size),
            "--backend", args.backend, "--json", *extra,
        ]  # fmt: skip
        st_cmd = [
            sys.executable, "-c", ST_SCRIPT, str(folder), args.split, str(tmp / "st.jsonl"),
            str(args.negatives), str(args.depth), str(args.batch_size), cross_encoder, str(args.relative_margin),
        ]  # fmt: skip
        if args.backend != "torch":
            export_cmd = [sys.executable, "-c", EXPORT_SCRIPT, *([cross_encoder] if rescore else [])]
            export_time, export_rss, export_out = run_child(export_cmd, env)
            print(f"one-time ONNX export (cached, not part of the timed runs): {export_out.strip()}, "
                  f"{export_time:.1f} s, peak RSS {export_rss:.0f} MiB")  # fmt: skip
        st_time, st_rss, st_out = run_child(st_cmd, env)
        ours_time, ours_rss, ours_out = run_child(ours_cmd, env)
        ours_report = json.loads(ours_out)
        common, total = overlap(tmp / "ours.jsonl", tmp / "st.jsonl")
        base_rss = None
        if ours_report["encoder"] == "torch" and not rescore:
            _, base_rss, _ = run_child([sys.executable, "-c", BASELINE_SCRIPT, str(args.batch_size)], env)

    what = "cross_encoder=..." if rescore else ""
    print(f"sentence-transformers mine_hard_negatives({what}): {st_time:7.1f} s  peak RSS {st_rss:7.0f} MiB  "
          f"rows {json.loads(st_out.strip().splitlines()[-1])['rows']}")  # fmt: skip
    ours_what = "--method dense --rescore" if rescore else "--method dense"
    rescorer = f", rescorer: {ours_report.get('rescorer')}, {ours_report.get('rescored')} pairs" if rescore else ""
    print(f"hardneg mine {ours_what}: {ours_time:7.1f} s  peak RSS {ours_rss:7.0f} MiB  "
          f"instances {ours_report['instances']}  (encoder: {ours_report['encoder']}{rescorer})")  # fmt: skip
    print(f"negatives in common: {common} of hardneg's {total} ({common / max(total, 1):.0%}) were also picked by "
          "sentence-transformers for the same query")  # fmt: skip
    time_ratio = ours_time / st_time
    rss_ratio = ours_rss / st_rss
    rss_target = 0.5 if rescore else 1 / 3
    print(f"time ratio (hardneg / st): {time_ratio:.2f}x  (target <= 1.00x: {'met' if time_ratio <= 1 else 'MISSED'})")
    rss_verdict = "met" if rss_ratio <= rss_target else "MISSED"
    print(f"peak RSS ratio (hardneg / st): {rss_ratio:.2f}x  (target <= {rss_target:.2f}x: {rss_verdict})")
    if base_rss is None and rescore:
        return
    if base_rss is None:
        print("hardneg's process never imported torch (ONNX Runtime encoder): the whole-process ratio is the measure")
        return
    st_above, ours_above = max(st_rss - base_rss, 1.0), max(ours_rss - base_rss, 0.0)
    above_ratio = ours_above / st_above
    print(f"baseline (torch + sentence-transformers + model + one full-length batch, nothing mined): "
          f"peak RSS {base_rss:.0f} MiB")  # fmt: skip
    print(f"RSS above baseline: hardneg {ours_above:.0f} MiB, st {st_above:.0f} MiB -> ratio {above_ratio:.2f}x  "
          f"(target <= 0.33x: {'met' if above_ratio <= 1 / 3 else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
