"""Soak: `hardneg judge` under faults and kill -9, against a real local server. Nothing paid twice, nothing lost.

Starts llama-cpp-python's OpenAI-compatible server (SmolLM2-135M) on 127.0.0.1 behind `FaultProxy` (about 20%
HTTP 500, and hangs past the client timeout, garbage answers, truncated answers and dropped connections), then
runs `hardneg judge` subprocesses (an `openai` stage, concurrency 2) on one store, each killed with SIGKILL at
a random moment, for --rounds rounds or --max-seconds; then lets runs finish (until one exits 0, or one has
nothing left to ask: only unreadable answers asked max_attempts times). Prints:

- instances, rounds (killed / ended by themselves), requests the proxy received, forwarded to the server and
  answered intact;
- calls billed twice: prompts the server answered intact more than once whose answer was usable (the final
  record is ok), split into those a kill explains (the prompt was being answered when its runner was killed, or
  was answered and not yet stored: a kill loses the calls in flight), those answered after the client's timeout
  (the client gave up and retried: the judge counts these as possibly billed; the server answers one request at a
  time, so requests left by killed runners delay the next run's) and the rest, which must be 0;
- unreadable answers asked again: prompts whose intact answer was the model's own unreadable one (a parse
  error), asked again by design, up to max_attempts;
- instances lost: instances without a record at the end (must be 0);
- whether `hardneg relabel` of the soaked store writes the same file as that of a fault-free run on a fresh
  store (yes/no), and whether the two stores hold the same outcomes (the same usable answer, or unreadable in both).
  (This phase is about kills: its cascade allows 10 timeouts per instance, so that the proxy's rare hangs do not
  leave an instance failed on timeouts by design, which the fault-free run would not.)

Then the slow-server phase (no model: a loopback server that answers nothing before 60 s, far past the client's
--slow-timeout): --slow-runs `hardneg judge` runs of the same command over --slow-instances instances, then one
with --retry-failed. Every request the server receives is one the client gave up on: possibly billed. Prints the
requests per run, the most any instance cost over the plain runs (bounded: at most the cascade's `max_timeouts`,
default 2, whatever the number of runs; before, every run paid max_retries + 1 per instance) and what the
--retry-failed run sent (at most `max_timeouts` more each). `--slow-only` runs this phase alone (seconds).

The comparison is meaningful with a near-random 135M judge because the judge is made deterministic: temperature
0 (greedy decoding), so the server gives each prompt the same answer whenever it is asked, and the faults only
decide *when* a prompt gets through, never what its answer is. The fault-free run therefore pays for exactly
the answers the soaked run should end with; any difference is a verdict lost, duplicated or taken from a
garbled answer. (Greedy decoding on a CPU is reproducible in practice; "same outcomes: no" with a listed
instance would point at the server, "same output: no" with "same outcomes: yes" at hardneg.)

    python bench/soak.py [--rounds 20] [--max-seconds 1200] [--instances 12] [--seed 0] [--kill-max 10]
    python bench/soak.py --slow-only [--slow-runs 3] [--slow-instances 5] [--slow-timeout 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test servers (tests/support) are test code, not part of hardneg
CHAT = "/v1/chat/completions"
MODEL = "local-judge"
KEY_ENV = "HARDNEG_SOAK_KEY"
CONCURRENCY = 2
NOT_FORWARDED = ("error_500", "rate_429", "timeout", "drop", "bad_body")  # the proxy answers these itself


def counting_proxy(upstream: str, plan: Any, client_timeout: float) -> Any:
    """A FaultProxy that also counts, per prompt, the answers the server gave (200s, garbled after or not), the
    prompts being answered now, and the answers that came after the client's timeout (it had given up)."""
    from support import FaultProxy
    from support.proxy import body_key

    class CountingProxy(FaultProxy):
        def __init__(self) -> None:
            super().__init__(upstream, plan)
            self.answered: Counter[str] = Counter()
            self.in_flight: Counter[str] = Counter()  # prompts sent to the server, not answered yet
            self.late: Counter[str] = Counter()  # answered after the client gave up: possibly billed, sent again

        async def _forward(self, request: Any) -> Any:
            chat = request.path.endswith("/chat/completions")
            key = body_key(request.body) if chat else ""
            self.in_flight[key] += 1
            started = time.monotonic()
            try:
                response = await super()._forward(request)
            finally:
                self.in_flight[key] -= 1
            if chat and response.status == 200:
                self.answered[key] += 1
                if time.monotonic() - started >= client_timeout - 0.5:
                    self.late[key] += 1
            return response

        async def _flying(self) -> set[str]:
            return {k for k, n in self.in_flight.items() if n > 0 and k}

        def flying(self) -> set[str]:
            """The prompts the server is answering now (read on the proxy's own loop)."""
            return self.call(self._flying())

    return CountingProxy()


def write_inputs(folder: Path, n: int, base_url: str, timeout: float) -> tuple[Path, Path, list[Any]]:
    import yaml

    from hardneg.data.io import read_instances, write_instances
    from hardneg.data.sample import sample_train_path

    folder.mkdir(parents=True, exist_ok=True)
    instances = []
    for instance in read_instances(sample_train_path()):
        instance.negatives = instance.negatives[:3]
        instance.positives = instance.positives[:1]
        for passage in instance.positives + instance.negatives:
            passage.text = passage.text[:120]
        instances.append(instance)
    instances = instances[:n]
    data = folder / "train.jsonl"
    write_instances(data, instances)
    params = {
        "model": MODEL,
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "template": "compact",
        "json_schema": "json_object",
        "temperature": 0.0,
        "max_tokens": 24,
        "concurrency": CONCURRENCY,
        "timeout": timeout,
        "max_retries": 3,
        "backoff_base": 0.1,
        "backoff_max": 0.5,
        "retry_after_max": 1.0,
    }
    config = folder / "cascade.yaml"
    stages = [{"name": "api", "backend": "openai", "params": params}]
    config.write_text(yaml.safe_dump({"name": "soak", "max_timeouts": 10, "stages": stages}), encoding="utf-8")
    return data, config, instances


def slow_server_phase(work: Path, env: dict[str, str], n: int, runs: int, timeout: float) -> list[tuple[str, Any]]:
    """Runs of the same `hardneg judge` against a server slower than the client timeout (see the docstring)."""
    import yaml

    from hardneg.judging.cascade.config import CascadeConfig
    from support.slow_server import SlowServer

    folder = work / "slow"
    max_timeouts = CascadeConfig.model_fields["max_timeouts"].default
    with SlowServer() as slow:
        data, config, instances = write_inputs(folder, n, slow.server.url + "/v1", timeout)
        cascade = yaml.safe_load(config.read_text(encoding="utf-8"))
        cascade.pop("max_timeouts")  # the default policy
        cascade["stages"][0]["params"]["max_retries"] = 5  # what the issue measured: 6 requests a call, each run
        config.write_text(yaml.safe_dump(cascade), encoding="utf-8")
        cmd = judge_cmd(data, folder / "slow.db", config)
        per_run, billed = [], []
        for _ in range(runs):
            before = slow.total
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode not in (0, 3):
                sys.exit(f"judge failed (exit {done.returncode}): {done.stderr[-2000:]}")
            per_run.append(slow.total - before)
            billed.append(json.loads(done.stdout)["possibly_billed"])
        most = max(slow.received.values(), default=0)
        before = slow.total
        done = subprocess.run([*cmd, "--retry-failed"], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode not in (0, 3):
            sys.exit(f"judge --retry-failed failed (exit {done.returncode}): {done.stderr[-2000:]}")
        retried = slow.total - before
    return [
        ("slow server: instances, runs", f"{len(instances)}, {runs} (client timeout {timeout} s, max_retries 5)"),
        ("slow server: requests received per run", " ".join(map(str, per_run))),
        ("slow server: possibly billed per run (judge --json)", " ".join(map(str, billed))),
        ("slow server: most requests for one instance", f"{most} (bound: max_timeouts = {max_timeouts})"),
        ("slow server: bounded", "yes" if most <= max_timeouts else "NO"),
        ("slow server: a --retry-failed run sent", f"{retried} (at most {max_timeouts * len(instances)})"),
    ]


def print_rows(rows: list[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def judge_cmd(data: Path, store: Path, config: Path) -> list[str]:
    cli = [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet"]
    return [*cli, "judge", str(data), "--store", str(store), "--config", str(config), "--json"]


def run_to_end(cmd: list[str], env: dict[str, str], tries: int = 8) -> list[dict[str, Any]]:
    """Run until a run exits 0, or a run has nothing left to ask: every record left failing is an unreadable
    answer asked max_attempts times (the model's own, or one the proxy garbled on every attempt)."""
    reports = []
    for _ in range(tries):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode not in (0, 3):
            sys.exit(f"judge failed (exit {done.returncode}): {done.stderr[-2000:]}")
        reports.append(json.loads(done.stdout))
        asked = sum(stage["judged_now"] for stage in reports[-1]["stages"])
        if done.returncode == 0 or asked == 0:
            break
    return reports


def records(store: Path) -> dict[str, Any]:
    from hardneg.judging.store import JudgmentStore

    with JudgmentStore(store, readonly=True) as db:
        return {r.query_id: r for r in db.iter_judgments(stage=1)}


def relabel(data: Path, store: Path, out: Path, env: dict[str, str]) -> bytes:
    cli = [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet"]
    done = subprocess.run(
        [*cli, "relabel", str(data), "--store", str(store), "-o", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        sys.exit(f"relabel failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return out.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="runs killed with SIGKILL at a random moment")
    parser.add_argument("--max-seconds", type=float, default=1200.0, help="stop the killing rounds after this")
    parser.add_argument("--instances", type=int, default=12, help="instances of the shipped sample (at most 24)")
    parser.add_argument("--kill-max", type=float, default=10.0, help="a run is killed 0.5..KILL_MAX s after start")
    parser.add_argument("--timeout", type=float, default=20.0, help="client timeout (a hang costs this)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="server threads")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the stores and outputs here")
    parser.add_argument("--slow-only", action="store_true", help="run only the slow-server phase (no model)")
    parser.add_argument("--slow-runs", type=int, default=3, help="plain runs of the slow-server phase")
    parser.add_argument("--slow-instances", type=int, default=5, help="instances of the slow-server phase")
    parser.add_argument("--slow-timeout", type=float, default=0.3, help="client timeout of the slow-server phase")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    if args.slow_only:
        work = args.workdir or Path(tempfile.mkdtemp(prefix="hardneg-soak-"))
        slow_env = {**env, KEY_ENV: "sk-soak-" + secrets.token_hex(12)}
        print_rows(slow_server_phase(work, slow_env, args.slow_instances, args.slow_runs, args.slow_timeout))
        print(f"(stores in {work})")
        return

    from hardneg.judging.backends.openai_chat import OpenAIJudge
    from support import FaultPlan, LlamaServer
    from support.proxy import prompt_key

    rng = random.Random(args.seed)
    key = "sk-soak-" + secrets.token_hex(12)
    env = {**env, KEY_ENV: key}
    plan = FaultPlan(
        error_500=0.20, timeout=0.04, drop=0.05, garbage=0.05, truncate=0.03, seed=args.seed, hang_s=args.timeout + 10
    )
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hardneg-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with LlamaServer("smollm2-135m", api_key=key, model_alias=MODEL, n_ctx=2048, n_threads=args.threads) as server:
        # -- the soak: runs killed at random moments, then runs to the end
        with counting_proxy(server.url, plan, args.timeout) as proxy:
            data, config, instances = write_inputs(work, args.instances, proxy.base_url, args.timeout)
            store = work / "soak.db"
            cmd = judge_cmd(data, store, config)
            judge = OpenAIJudge(MODEL, base_url=proxy.base_url, template="compact", json_schema="json_object")
            key_of = {prompt_key(judge.render(i, i.negative_ids)): i.query_id for i in instances}
            killed = ended = 0
            # prompts a kill may make the server answer twice: in flight at the kill, or answered and not stored
            excused: Counter[str] = Counter()
            for _ in range(args.rounds):
                if time.monotonic() - started > args.max_seconds:
                    break
                before = Counter(proxy.delivered)
                proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                lost: set[str] = set()
                try:
                    proc.wait(timeout=rng.uniform(0.5, args.kill_max))
                    ended += 1
                except subprocess.TimeoutExpired:
                    flying = proxy.flying()
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    killed += 1
                    stored = {q for q, r in records(store).items() if r.status == "ok"} if store.exists() else set()
                    # answered in this run but not stored (its runner was killed between the two)
                    unstored = {k for k, n in proxy.delivered.items() if n > before[k] and key_of.get(k) not in stored}
                    lost = flying | unstored
                    excused.update(lost)
                what = f"exit {proc.returncode}" if proc.returncode >= 0 else "killed"
                calls = ", ".join(sorted(key_of.get(k, "?") for k in lost)) or "none"
                print(f"round {killed + ended}: {what}; calls in flight at the kill: {calls}", flush=True)
            finishing = run_to_end(cmd, env)
            soak_seconds = time.monotonic() - started
        soaked = records(store)
        # -- the reference: a fault-free run on a fresh store, same server
        with counting_proxy(server.url, FaultPlan(), 600) as clean_proxy:
            ref_data, ref_config, _ = write_inputs(work / "reference", args.instances, clean_proxy.base_url, 600)
            ref_store = work / "reference" / "fault-free.db"
            run_to_end(judge_cmd(ref_data, ref_store, ref_config), env, tries=1)
        reference = records(ref_store)
        ref_out = relabel(ref_data, ref_store, work / "reference" / "clean.jsonl", env)
        soak_out = relabel(data, store, work / "clean.jsonl", env)

    status = {q: r.status for q, r in soaked.items()}
    repeats = {k: n - 1 for k, n in proxy.delivered.items() if n > 1 and status.get(key_of.get(k, "")) == "ok"}
    allowed = {k: min(n, excused[k]) for k, n in repeats.items()}
    late = {k: min(n - allowed[k], proxy.late[k]) for k, n in repeats.items()}
    unexplained = {key_of[k]: n - allowed[k] - late[k] for k, n in repeats.items() if n > allowed[k] + late[k]}
    again_unreadable = sum(n - 1 for k, n in proxy.delivered.items() if n > 1 and status.get(key_of.get(k, "")) != "ok")
    lost = [i.query_id for i in instances if i.query_id not in soaked]
    forwarded = proxy.requests[CHAT] - sum(proxy.faults[k] for k in NOT_FORWARDED)
    # the same outcome: the same usable answer, or unreadable in both (the last unreadable text may differ: the
    # model's own, or a garbled copy of it from the proxy)
    differ = sorted(
        q for q in reference if q not in soaked or soaked[q].status != reference[q].status or (
            reference[q].status == "ok" and soaked[q].raw_response != reference[q].raw_response)
    )  # fmt: skip
    finals = Counter(status.values())
    rows = [
        ("instances", len(instances)),
        ("rounds killed / ended by themselves", f"{killed} / {ended}"),
        ("finishing runs", len(finishing)),
        ("requests received by the proxy", proxy.requests[CHAT]),
        ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(proxy.faults.items())) or "none"),
        ("calls made (forwarded to the server)", forwarded),
        ("answered intact", sum(proxy.delivered.values())),
        ("calls billed twice (usable answer, asked again)", sum(repeats.values())),
        ("  of which in flight at a kill (allowed)", sum(allowed.values())),
        ("  of which answered after the client timed out", sum(late.values())),
        ("  of which not explained by a kill (must be 0)", sum(unexplained.values())),
        ("unreadable answers asked again (by design)", again_unreadable),
        ("instances lost (no record)", len(lost)),
        ("final records ok / parse_error / failed", "/".join(str(finals[x]) for x in ("ok", "parse_error", "failed"))),
        ("fault-free run: calls made", clean_proxy.requests[CHAT]),
        ("same outcomes as the fault-free run", "yes" if not differ else f"no: {', '.join(differ)}"),
        ("relabelled output equals the fault-free run's", "yes" if soak_out == ref_out else "no"),
        ("soak seconds", f"{soak_seconds:.0f}"),
        *slow_server_phase(work, env, args.slow_instances, args.slow_runs, args.slow_timeout),
    ]
    print_rows(rows)
    if repeats:
        print(f"answered more than once: {sorted(key_of[k] for k in repeats)}")
    if unexplained:
        print(f"paid twice without a kill to explain it: {unexplained}")
    print(f"(stores and outputs in {work})")


if __name__ == "__main__":
    main()
