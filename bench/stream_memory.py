"""Streaming memory benchmark: peak RSS and throughput of JSONL.gz -> Parquet -> JSONL at two sizes.

Rows are real reference-implementation rows (../shared/data/rlhn-sample, ~25 KB each) cloned with new
query_ids; without ../shared/data the shipped sample is used. Each size runs in a fresh subprocess that
reports its own peak RSS (ru_maxrss), so sizes do not share a high-water mark.

Targets: peak RSS under 300 MB and flat (ratio near 1); time linear (ratio near the size ratio).

    python bench/stream_memory.py                    # 10,000 and 200,000 rows
    python bench/stream_memory.py --sizes 1000,20000 --workdir /tmp/hardneg-bench
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARDNEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def source_rows() -> tuple[str, list[dict[str, Any]]]:
    from hardneg.data.io import iter_raw_rows
    from hardneg.data.sample import sample_train_path

    sample = SHARED / "rlhn-sample"
    files = sorted(sample.glob("*.jsonl.gz")) if sample.is_dir() else []
    if files:
        return "rlhn-sample", [row for f in files for _n, row in iter_raw_rows(f)]
    return "shipped sample", [row for _n, row in iter_raw_rows(sample_train_path())]


def cloned(rows: list[dict[str, Any]], n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        row = dict(rows[i % len(rows)])
        row["query_id"] = f"{row['query_id']}-{i}"
        yield row


def generate(path: Path, rows: list[dict[str, Any]], size: int) -> None:
    # Fast gzip (level 1): generating the input is not what is measured.
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        for row in cloned(rows, size):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(size: int, workdir: Path) -> None:
    """Convert size rows: JSONL.gz -> Parquet -> JSONL with hardneg's own streaming readers and writers."""
    from hardneg.data.io import read_instances, write_instances

    src = workdir / f"in-{size}.jsonl.gz"
    mid = workdir / f"mid-{size}.parquet"
    out = workdir / f"out-{size}.jsonl"
    rss_start = peak_rss_mb()
    t0 = time.perf_counter()
    n1 = write_instances(mid, read_instances(src))
    t1 = time.perf_counter()
    rss_after_parquet = peak_rss_mb()
    n2 = write_instances(out, read_instances(mid))
    t2 = time.perf_counter()
    assert n1 == n2 == size, (n1, n2, size)
    print(
        json.dumps(
            {
                "size": size,
                "gz_to_parquet_s": t1 - t0,
                "parquet_to_jsonl_s": t2 - t1,
                "total_s": t2 - t0,
                "rows_per_s": 2 * size / (t2 - t0),
                "peak_rss_mb": peak_rss_mb(),
                "peak_rss_after_import_mb": rss_start,
                "peak_rss_after_parquet_mb": rss_after_parquet,
                "bytes": {"jsonl.gz": src.stat().st_size, "parquet": mid.stat().st_size, "jsonl": out.stat().st_size},
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--workdir", type=Path, default=None, help="Scratch folder (default: a temp folder, removed)")
    parser.add_argument("--reuse-inputs", action="store_true", help="Keep and reuse generated inputs in --workdir")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.workdir)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hardneg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    name, rows = source_rows()
    print(f"source: {name}, {len(rows)} distinct rows; workdir {workdir}", flush=True)
    results = []
    try:
        for size in sizes:
            t = time.perf_counter()
            if args.reuse_inputs and (workdir / f"in-{size}.jsonl.gz").exists():
                print(f"reusing {workdir / f'in-{size}.jsonl.gz'}", flush=True)
            else:
                generate(workdir / f"in-{size}.jsonl.gz", rows, size)
                print(f"generated {size} rows in {time.perf_counter() - t:.1f}s", flush=True)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--workdir", str(workdir)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"{size:>8} rows: peak RSS {result['peak_rss_mb']:.0f} MB "
                f"(after imports {result['peak_rss_after_import_mb']:.0f} MB, "
                f"after gz->parquet {result['peak_rss_after_parquet_mb']:.0f} MB), "
                f"{result['rows_per_s']:.0f} rows/s (gz->parquet {result['gz_to_parquet_s']:.1f}s, "
                f"parquet->jsonl {result['parquet_to_jsonl_s']:.1f}s), files {result['bytes']}",
                flush=True,
            )
            for f in workdir.glob(f"*-{size}.*"):
                if not (args.reuse_inputs and f.name.startswith("in-")):
                    f.unlink()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(
            f"ratios {large['size']}/{small['size']} rows (size ratio {large['size'] / small['size']:.0f}): "
            f"peak RSS {large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (target ~1), "
            f"time {large['total_s'] / small['total_s']:.1f} (target ~{large['size'] / small['size']:.0f})"
        )
        ok = max(r["peak_rss_mb"] for r in results) < 300
        print(f"peak RSS under 300 MB: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
