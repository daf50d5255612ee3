"""A two-stage cascade over HTTP (`hardneg judge` in a subprocess), killed with SIGKILL mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hardneg.data.io import read_instances
from hardneg.judging.backends.openai_chat import OpenAIJudge
from hardneg.judging.prompts.templates import load_template
from support import FaultProxy
from support.api_judge import MODEL
from support.proxy import prompt_key

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _records(db: Path) -> dict[tuple[str, int], tuple[str, int]]:
    """{(query_id, stage): (status, attempts)} read without taking a write lock."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT query_id, stage, status, attempts FROM judgments").fetchall()
    except sqlite3.OperationalError:  # the table is not created yet
        rows = []
    finally:
        con.close()
    return {(q, s): (st, a) for q, s, st, a in rows}


def test_cascade_killed_and_resumed(llama_server, key_env, api_key, tiny_file, tmp_path) -> None:
    second = tmp_path / "second-opinion.txt"  # a template file: stage 2's prompts differ from stage 1's
    second.write_text("Second opinion, be strict.\n\n" + load_template("compact").text, encoding="utf-8")
    db = tmp_path / "judgments.sqlite"
    with FaultProxy(llama_server.url) as proxy:
        common = {
            "model": MODEL,
            "base_url": proxy.base_url,
            "api_key_env": key_env,
            "max_tokens": 40,
            "json_schema": "json_object",
            "concurrency": 1,
        }
        config = {
            "name": "api-resume",
            "stages": [
                {"name": "cheap", "backend": "openai", "params": {**common, "template": "compact"}},
                {"name": "strong", "backend": "openai", "params": {**common, "template": str(second)}},
            ],
        }
        config_path = tmp_path / "cascade.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        cmd = [sys.executable, "-c", "from hardneg.cli import main; main()", "--quiet", "judge", str(tiny_file)]
        cmd += ["--store", str(db), "--config", str(config_path), "--json"]
        env = {**os.environ, key_env: api_key}

        client = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(_records(db)) < 2:
            assert client.poll() is None, client.communicate()
            time.sleep(0.2)
        os.kill(client.pid, signal.SIGKILL)  # mid stage 1: at most the call in flight is lost
        client.communicate(timeout=30)
        first = _records(db)
        assert 2 <= len(first) < 4 and all(stage == 1 for _, stage in first)

        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540)
        report = json.loads(resumed.stdout)
        final = _records(db)
        # exit 3 exactly when the run ends with a failed or unparsable call (a 135M judge may write one)
        assert resumed.returncode == (3 if any(st != "ok" for st, _ in final.values()) else 0), resumed.stderr
        seen, delivered = dict(proxy.seen), dict(proxy.delivered)

    assert api_key not in resumed.stdout + resumed.stderr
    stage1 = {q for q, s in final if s == 1}
    assert len(stage1) == 4
    cheap, strong = report["stages"]
    assert strong["routed_in"] == cheap["routed_on"] == sum(1 for q, s in final if s == 2)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) = COUNT(DISTINCT query_id || '/' || stage) FROM judgments").fetchone()[0]
    con.close()
    # a call finished before the kill is never made again: same record, one attempt, one completion served
    judge = OpenAIJudge(MODEL, base_url="http://127.0.0.1:9/v1", template="compact", json_schema="json_object")
    prompts = {i.query_id: prompt_key(judge.render(i, i.negative_ids)) for i in read_instances(tiny_file)}
    for (qid, _), (status, _) in first.items():
        if status == "ok":
            assert final[(qid, 1)] == ("ok", 1)
            assert seen[prompts[qid]] == 1 and delivered[prompts[qid]] == 1
    # every call the proxy saw is a stored record, plus at most the one in flight at the kill
    # (and a retry for any record that was not ok)
    retried = sum(a - 1 for _, a in final.values())
    assert sum(seen.values()) <= len(final) + 1 + retried
