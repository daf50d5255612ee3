"""`judge-eval` on stored calls: no judge call, and its seconds per 1,000 negatives (target: under 10 s).

    python bench/judge_eval.py [--beir ../shared/data/scifact] [--split test] [--negatives 10] [--config FILE]

Builds a testbed (`hardneg.analysis.testbed.build_testbed`, BM25 over the whole corpus, so that every query has
its N negatives; unjudged ones are "unknown" and left out of the scores, not of the judging), then runs
`evaluate_judges` twice on a fresh store with the same cascade (default: the one-stage MiniLM embedding judge of
examples/judge-embedding.yaml):

- cold: every call is made (the baseline: what the measurement costs when nothing is stored);
- stored: the same command again; every call comes from the store.

Prints calls made, wall seconds and seconds per 1,000 negatives of each run and the ratio stored / cold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEIR = REPO.parent / "shared" / "data" / "scifact"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR)
    parser.add_argument("--split", default="test")
    parser.add_argument("--negatives", type=int, default=10)
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "judge-embedding.yaml")
    args = parser.parse_args()
    if not args.beir.is_dir():
        print(f"needs {args.beir} (a BEIR folder, e.g. ../shared/data/scifact)", file=sys.stderr)
        return 2

    from hardneg.analysis.judge_eval import evaluate_judges
    from hardneg.analysis.testbed import build_testbed

    started = time.perf_counter()
    testbed = build_testbed(args.beir, split=args.split, negatives=args.negatives, pool="corpus")
    negatives = sum(len(i.negatives) for i in testbed.instances)
    print(
        f"testbed: {len(testbed.instances)} queries, {negatives} negatives ({args.beir.name} {args.split}, "
        f"built in {time.perf_counter() - started:.1f} s); cascade {args.config.name}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "judge-eval.sqlite"
        runs = {}
        for name in ("cold", "stored"):
            t0 = time.perf_counter()
            report = evaluate_judges(testbed, [args.config], store)
            seconds = time.perf_counter() - t0
            calls = sum(r["calls_now"] for r in report.runs.values())
            runs[name] = seconds
            print(
                f"{name:7} calls made {calls:6d}  {seconds:7.2f} s  {1000 * seconds / max(1, negatives):6.2f} s "
                "per 1,000 negatives"
            )
    print(f"stored / cold: {runs['stored'] / runs['cold']:.3f}x (target: stored under 10 s per 1,000 negatives)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
