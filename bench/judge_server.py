"""Instances per minute through a local OpenAI-compatible server: OpenAIJudge at concurrency 1 vs 4.

Starts llama-cpp-python's server (SmolLM2-135M by default) on 127.0.0.1, judges the same short real instances
(FiQA from ../shared/data/rlhn-sample, cut to 3 negatives of 120 characters) at concurrency 1 and then 4, and
prints both rates and their ratio. Same server, same run. llama-cpp-python's server runs one completion at a
time (one llama context, no parallel slots), so concurrency mostly overlaps HTTP and prompt rendering with
generation; a server with parallel slots (vLLM, llama.cpp's llama-server -np 4) is where concurrency pays.

    python bench/judge_server.py [--n 4] [--rounds 2] [--model smollm2-135m] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test servers (tests/support) are test code, not part of hardneg
SAMPLE = Path(os.environ.get("HARDNEG_SHARED_DATA", REPO.parent / "shared" / "data")) / "rlhn-sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="instances per setting and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both settings")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=40)
    args = parser.parse_args()

    from hardneg.data.io import read_instances
    from hardneg.judging.backends.openai_chat import OpenAIJudge
    from support import LlamaServer

    source = SAMPLE / "fiqa.stage_1.gpt-4o-mini.jsonl.gz"
    if not source.is_file():
        sys.exit(f"needs {source} (../shared/data)")
    instances = []
    for instance in read_instances(source):
        instance.negatives = instance.negatives[:3]
        for passage in instance.positives + instance.negatives:
            passage.text = passage.text[:120]
        instances.append(instance)
    instances = instances[: args.n]

    # Settings alternate over rounds so that load from other processes (this machine is shared) hits both alike.
    done: dict[int, int] = {1: 0, 4: 0}
    spent: dict[int, float] = {1: 0.0, 4: 0.0}
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with LlamaServer(args.model, n_threads=args.threads, n_ctx=2048) as server:
        judges = {
            c: OpenAIJudge(
                "local-judge",
                base_url=server.base_url,
                template="compact",
                max_tokens=args.max_tokens,
                concurrency=c,
                json_schema="json_object",
                timeout=600,
            )
            for c in (1, 4)
        }
        judges[1].judge(instances[0], instances[0].negative_ids)  # one untimed call: a warm server for both
        for round_no in range(args.rounds):
            for concurrency, judge in judges.items():
                start = time.perf_counter()
                statuses = [out.status for _, out in judge.judge_many((i, i.negative_ids) for i in instances)]
                elapsed = time.perf_counter() - start
                done[concurrency] += len(statuses)
                spent[concurrency] += elapsed
                print(
                    f"round {round_no + 1}, concurrency {concurrency}: {len(statuses)} instances in {elapsed:.1f} s "
                    f"({statuses.count('ok')} ok)",
                    flush=True,
                )
    rates = {c: done[c] / spent[c] * 60 for c in done}
    for c, rate in rates.items():
        print(f"concurrency {c}: {rate:.2f} instances/min")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(f"ratio concurrency 4 / concurrency 1: {rates[4] / rates[1]:.2f}x ({args.model}, {args.threads} threads)")


if __name__ == "__main__":
    main()
