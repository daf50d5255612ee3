"""Exit codes of runs that fail on their way: 3 for failed judge calls, 2 for a full disk or a read-only mount.

Exit code 3: a judge run that ends with failed or unparsable calls, or that its judge stopped, says so.

`hardneg judge` (and `hardneg clean`) exit 3 and say on stderr how many instances failed and why, grouped by
kind; --json carries the same counts (`failures_now`). Real failures: a connection refused by a closed loopback
port, a wrong API key against the real llama.cpp server (which requires one; the run stops after the first 401
instead of sending one request per instance), and answers no parser can read (the real server's answers
garbled by `FaultProxy`, or a real judge that rambles).

Exit code 2 for the file system: a write that fails for a full disk (ENOSPC, simulated in the writer), a file-size
limit (EFBIG: a real one, RLIMIT_FSIZE in a child process) or a read-only mount (EROFS: a real read-only bind mount,
where the tests run as root and may mount) is one line naming the path, with no traceback and no partial output.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import support.lexical_judges  # noqa: F401 (registers the `flaky` backend)
from hardneg.cli import app
from hardneg.data.io import read_instances, write_instances
from hardneg.judging.store import JudgmentStore
from support import FaultPlan, FaultProxy, free_port
from support.api_judge import MODEL

runner = CliRunner()
CHAT = "/v1/chat/completions"


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def four(sample_train: Path, tmp_path: Path) -> Path:
    """The first 4 instances of the shipped sample, cut short (3 negatives) so a 135M model answers fast."""
    instances = []
    for instance in read_instances(sample_train):
        instance.negatives = instance.negatives[:3]
        instances.append(instance)
        if len(instances) == 4:
            break
    path = tmp_path / "four.jsonl"
    write_instances(path, instances)
    return path


def write_config(path: Path, stages: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "stages": stages}), encoding="utf-8")
    return path


def judge(file: Path, store: Path, config: Path) -> Any:
    return runner.invoke(app, ["judge", str(file), "--store", str(store), "--config", str(config), "--json"])


@pytest.mark.slow  # a few seconds: the openai client and OpenAI's tokenizer load
def test_connection_refused_exits_3_and_says_how_many_failed(four: Path, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    params = {
        "model": "gpt-4o-mini",
        "base_url": f"http://127.0.0.1:{closed}/v1",
        "template": "compact",
        "max_retries": 0,
        "timeout": 5,
        "max_tokens": 16,
    }
    config = write_config(tmp_path / "refused.yaml", [{"name": "api", "backend": "openai", "params": params}])
    db = tmp_path / "j.db"
    result = judge(four, db, config)
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["failures_now"] == {"connection refused": 4}
    assert report["stages"][0]["failures_now"] == {"connection refused": 4}
    assert report["failed"] == 4 and report["stopped"] == ""
    assert "4 instance(s) have a failed judgment (4 connection refused)" in one_line(result.stderr)
    with JudgmentStore(db, readonly=True) as store:
        records = list(store.iter_judgments())
    assert len(records) == 4 and {(r.status, r.attempts) for r in records} == {("failed", 1)}
    # the same command retries them (and fails again: exit 3 again)
    again = judge(four, db, config)
    assert again.exit_code == 3 and json.loads(again.stdout)["stages"][0]["judged_now"] == 4
    with JudgmentStore(db, readonly=True) as store:
        assert {r.attempts for r in store.iter_judgments()} == {2}


def test_parse_errors_only_exit_3_grouped_as_parse_error(four: Path, tmp_path: Path) -> None:
    stage = {"name": "rambler", "backend": "support.call_log_judges:UnreadableJudge", "mode": "verdict"}
    config = write_config(tmp_path / "unreadable.yaml", [stage])
    result = judge(four, tmp_path / "j.db", config)
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["failures_now"] == {"parse error": 4}
    assert report["stages"][0]["parse_errors"] == 4
    assert "4 instance(s) have a failed judgment (4 parse error)" in one_line(result.stderr)


def test_a_successful_run_exits_0(four: Path, tmp_path: Path) -> None:
    stage = {"name": "lex", "backend": "support.call_log_judges:CountingJudge", "t_better": 0.9, "params": {}}
    config = write_config(tmp_path / "ok.yaml", [stage])
    result = judge(four, tmp_path / "j.db", config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failures_now"] == {}


def test_clean_exits_3_when_failures_remain(four: Path, tmp_path: Path) -> None:
    ids = [i.query_id for i in read_instances(four)]
    stage = {"name": "flaky", "backend": "flaky", "t_better": 0.3, "params": {"fail_ids": ids[:2]}}
    config = write_config(tmp_path / "flaky.yaml", [stage])
    out = tmp_path / "clean.jsonl"
    args = ["clean", str(four), "-o", str(out), "--config", str(config), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["judging"]["failures_now"] == {"server error": 2}
    assert "2 instance(s) have a failed judgment (2 server error)" in one_line(result.stderr)
    # the output is written, the failed instances unchanged
    written = {i.query_id: i for i in read_instances(out)}
    originals = {i.query_id: i for i in read_instances(four)}
    assert set(written) == set(originals)
    assert all(written[q].to_row() == originals[q].to_row() for q in ids[:2])
    # the same command retries them (and they fail again)
    again = runner.invoke(app, args)
    assert again.exit_code == 3 and json.loads(again.stdout)["judging"]["stages"][0]["judged_now"] == 2


# -- against the real llama.cpp server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """llama-cpp-python's OpenAI-compatible server (SmolLM2-135M) on 127.0.0.1, requiring an API key."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'hardneg[local]')")
    for name in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        pytest.importorskip(name, reason=f"{name} is missing: pip install 'hardneg[api]'")
    from support import LlamaServer

    key = "sk-hardneg-test-" + secrets.token_hex(12)
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer("smollm2-135m", api_key=key, model_alias=MODEL, n_ctx=2048, n_threads=1, log_path=log) as srv:
        srv.test_key = key
        yield srv


def api_stage(name: str, base_url: str, key_env: str, **params: Any) -> dict[str, Any]:
    params = {
        "model": MODEL,
        "base_url": base_url,
        "api_key_env": key_env,
        "template": "compact",
        "max_tokens": 24,
        "concurrency": 1,
        "max_retries": 0,
        **params,
    }
    return {"name": name, "backend": "openai", "params": params}


@pytest.mark.slow
def test_a_refused_key_stops_the_run_after_the_first_call(
    server: Any, sample_train: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-" + secrets.token_hex(8)
    monkeypatch.setenv("HARDNEG_TEST_WRONG_KEY", wrong)
    db = tmp_path / "j.db"
    with FaultProxy(server.url) as proxy:
        stages = [
            api_stage("cheap", proxy.base_url, "HARDNEG_TEST_WRONG_KEY"),
            api_stage("strong", proxy.base_url, "HARDNEG_TEST_WRONG_KEY", template="stage2"),
        ]
        result = judge(sample_train, db, write_config(tmp_path / "wrong-key.yaml", stages))
    assert result.exit_code == 3, result.output
    # one request reached the server, not one per instance (24); stage 2 never started
    assert 1 <= proxy.requests[CHAT] <= 2
    report = json.loads(result.stdout)
    assert "HTTP 401" in report["stopped"] and "HARDNEG_TEST_WRONG_KEY" in report["stopped"]
    assert len(report["stages"]) == 1 and report["stages"][0]["stopped"] == report["stopped"]
    assert set(report["failures_now"]) == {"auth"} and report["failures_now"]["auth"] <= 2
    stderr = one_line(result.stderr)
    assert "stopped: " in stderr and "auth" in stderr
    assert wrong not in result.output
    with JudgmentStore(db, readonly=True) as store:
        assert store.count() <= 2  # the instances never sent have no record: the next run sends them


@pytest.mark.slow
def test_garbled_answers_of_the_real_server_exit_3_as_parse_errors(
    server: Any, four: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARDNEG_TEST_KEY", server.test_key)
    with FaultProxy(server.url, FaultPlan(garbage=1.0)) as proxy:
        stages = [api_stage("api", proxy.base_url, "HARDNEG_TEST_KEY")]
        result = judge(four, tmp_path / "j.db", write_config(tmp_path / "garbage.yaml", stages))
    assert proxy.faults["garbage"] == proxy.requests[CHAT] == 4  # each answered by the model, then garbled
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["failures_now"] == {"parse error": 4}
    assert "4 instance(s) have a failed judgment (4 parse error)" in one_line(result.stderr)


# -- the file system: a full disk, a file-size limit, a read-only mount -----------------------------------------


def test_a_full_disk_while_writing_exits_2_naming_the_output(
    sample_train: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hardneg.data import io as data_io

    def full(self: Any, row: dict[str, Any]) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write on a full disk raises it: no file name

    monkeypatch.setattr(data_io._JsonlSink, "write", full)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["convert", str(sample_train), str(out)])
    assert result.exit_code == 2, result.output
    assert f"writing {out}: No space left on device (ENOSPC)" in one_line(result.stderr)
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no temp file


def _hardneg() -> str:
    return str(Path(sys.executable).with_name("hardneg"))


def _limit_file_size() -> None:  # in the child, before exec: writes past 2 KiB fail with EFBIG (no SIGXFSZ)
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_file_size_limit_while_writing_exits_2_naming_the_output(sample_train: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [_hardneg(), "-q", "convert", str(sample_train), str(out)],
        capture_output=True, text=True, env=env, preexec_fn=_limit_file_size, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"writing {out}: File too large (EFBIG)" in one_line(done.stderr)
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@contextlib.contextmanager
def read_only_mount(source: Path, target: Path) -> Iterator[Path]:
    """`source` seen read-only at `target` (a bind mount); skips the test where that cannot be done."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root and mount(8)")
    target.mkdir()
    made = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"mount --bind failed: {made.stderr.decode(errors='replace').strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"remount read-only failed: {ro.stderr.decode(errors='replace').strip()}")
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def test_a_store_on_a_read_only_mount_is_named_read_only(sample_train: Path, tmp_path: Path) -> None:
    from hardneg.judging.importer import import_judgments
    from support.judged_sample import judged_rows

    source = tmp_path / "rw"
    source.mkdir()
    judged = tmp_path / "judged.jsonl"
    judged.write_text("".join(json.dumps(r) + "\n" for r in judged_rows(1)), encoding="utf-8")
    with JudgmentStore(source / "j.db") as store:
        import_judgments([judged], 1, "judge-1", store)
    before = sorted(p.name for p in source.iterdir())
    with read_only_mount(source, tmp_path / "ro") as ro:
        store = str(ro / "j.db")
        for args in (
            ["relabel", str(sample_train), "--store", store, "-o", str(tmp_path / "out.jsonl")],
            ["report", "--store", store, "-o", str(tmp_path / "r.html")],
            ["judge", str(sample_train), "--store", store],
        ):
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (args[0], result.output)
            message = one_line(result.stderr)
            assert f"{store}: -: on a read-only file system" in message, (args[0], message)
            assert "not a readable SQLite database" not in message and "Traceback" not in result.output
        # an output on the read-only mount: refused before any work
        result = runner.invoke(app, ["convert", str(sample_train), str(ro / "out.jsonl")])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert str(ro / "out.jsonl") in one_line(result.stderr)
    assert sorted(p.name for p in source.iterdir()) == before
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "r.html").exists()
