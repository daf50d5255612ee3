"""Every verb that reads input, given each bad input: exit 2, one clear line naming the file (FILE:LINE: field
where it applies), no traceback, and nothing new in the folder (no store created, no output, no temp file).

One table (`CASES`): (case, argv, fragments of the message). The inputs are built small in tmp_path by the
`inputs` fixture: the shipped sample's first rows, the same rows judged in the reference layout, a copy of the
shipped BEIR folder, and the bad variants (empty, bad UTF-8 on line 2, a control character inside a JSON string
on line 2, duplicate ids, random bytes and a foreign SQLite database as stores, YAML configs naming an unknown
backend, a missing GGUF file or a misspelt parameter). `test_allow_empty_accepts_an_empty_input` checks the
other side: where a verb has --allow-empty, the same empty input is accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import support.lexical_judges  # noqa: F401 (registers the `lexical` backend the configs name)
from hardneg.cli import app
from hardneg.cluster import ray_installed
from hardneg.data.sample import sample_beir_dir, sample_train_path
from hardneg.judging.importer import import_judgments
from hardneg.judging.store import JudgmentStore
from hardneg.models import minilm_path
from support.experiment_yaml import sample_experiment
from support.judged_sample import judged_rows

runner = CliRunner()

# said by no row: a traceback, click's usage errors (a wrong argv in the table would also exit 2), the doubled
# "at" of json's own message, and the error an unknown backend used to give
FORBIDDEN = ("Traceback", "Usage:", "at at", "t_better is required")

SCORE_STAGE = "  - {name: s, backend: lexical, t_better: 0.5}\n"
CONFIGS = {
    "ok.yaml": f"stages:\n{SCORE_STAGE}",
    # a listwise judge's name misspelt: no thresholds, as a user of a listwise backend writes it
    "unknown.yaml": "stages:\n  - {name: s, backend: gpt4-judge, params: {model: gpt-4o}}\n",
    "gguf.yaml": "stages:\n  - {name: s, backend: llm-pointwise, t_better: 0.5, params: {model: models/nope.gguf}}\n",
    "params.yaml": "stages:\n  - {name: s, backend: openai, params: {model: gpt-4o-mini, temprature: 0.1}}\n",
}


def _bad_utf8(line: str) -> bytes:
    raw = line.encode("utf-8")
    return raw[:30] + b"\xff\xfe" + raw[30:]


def _control_char(line: str) -> str:
    at = line.index('"query": "') + len('"query": "') + 3  # inside a JSON string
    return line[:at] + "\x01" + line[at:]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A testbed of the shipped sample's test split (`hardneg testbed`), built once per module."""
    folder = tmp_path_factory.mktemp("testbed") / "tb"
    made = runner.invoke(app, ["testbed", str(sample_beir_dir()), "--split", "test", "-n", "3", "-o", str(folder)])
    assert made.exit_code == 0, made.output
    return folder


@pytest.fixture
def inputs(tmp_path: Path, testbed: Path) -> Path:
    """Good and bad inputs of every kind, in one folder."""
    d = tmp_path
    rows = sample_train_path().read_text(encoding="utf-8").splitlines()[:3]
    judged = [json.dumps(r) for r in judged_rows(1)[:3]]
    (d / "good.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (d / "empty.jsonl").write_bytes(b"")
    (d / "badutf8.jsonl").write_bytes(rows[0].encode() + b"\n" + _bad_utf8(rows[1]) + b"\n" + rows[2].encode() + b"\n")
    (d / "ctrl.jsonl").write_text(f"{rows[0]}\n{_control_char(rows[1])}\n", encoding="utf-8")
    (d / "judged.jsonl").write_text("\n".join(judged) + "\n", encoding="utf-8")
    (d / "judged_dup.jsonl").write_text("\n".join([*judged, judged[0]]) + "\n", encoding="utf-8")
    (d / "judged_badutf8.jsonl").write_bytes(judged[0].encode() + b"\n" + _bad_utf8(judged[1]) + b"\n")
    (d / "judged_ctrl.jsonl").write_text(f"{judged[0]}\n{_control_char(judged[1])}\n", encoding="utf-8")
    for name, text in CONFIGS.items():
        (d / name).write_text(text, encoding="utf-8")
    (d / "rand.db").write_bytes(os.urandom(4096))
    (d / "empty.db").write_bytes(b"")  # a 0-byte store: "empty store" where it is read, a new store where written
    (d / "ray.yaml").write_text(
        sample_experiment("engine: ray\nray_address: 127.0.0.1:1\nvariants: [default]\nmine: {method: bm25}\n"),
        encoding="utf-8",
    )
    shutil.copytree(testbed, d / "tb")
    conn = sqlite3.connect(d / "foreign.db")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    (d / "storedir").mkdir()
    with JudgmentStore(d / "good.db") as store:
        import_judgments([d / "judged.jsonl"], 1, "judge-1", store)
    # A reader of a WAL store leaves SQLite's own -wal/-shm files beside it (it may not remove them): the store
    # is read once here, as any earlier reader would have, so the listing compares only what the verb writes.
    with JudgmentStore(d / "good.db", readonly=True) as store:
        store.final_verdicts()
    shutil.copytree(sample_beir_dir(), d / "beir")
    shutil.copytree(sample_beir_dir(), d / "dupbeir")
    corpus = (d / "dupbeir" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    (d / "dupbeir" / "corpus.jsonl").write_text("\n".join([*corpus, corpus[1]]) + "\n", encoding="utf-8")
    return d


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256 of the bytes, or 'dir'} of everything under the folder, dot files included."""
    out = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        out[name] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def one_line(text: str) -> str:
    return " ".join(text.split())


OUT = "{d}/out.jsonl"
NEW_STORE = "{d}/new.db"
JUDGE = ["judge", "--store", NEW_STORE, "--config", "{d}/ok.yaml"]
CLEAN = ["clean", "-o", OUT, "--config", "{d}/ok.yaml"]
RELABEL = ["relabel", "--store", "{d}/good.db", "-o", OUT]
IMPORT = ["import-judgments", "--stage", "1", "--judge", "j", "--store", NEW_STORE]
CALIBRATE = ["calibrate", "--labels-from-responses", "{d}/judged.jsonl"]
ESTIMATE = ["estimate", "--config", "{d}/ok.yaml"]
AGREEMENT = ["agreement", "--a", "final", "--b", "stage:1"]
REPORT = ["report", "--store", "{d}/good.db", "-o", "{d}/r.html"]
MISSING = "missing.jsonl: -: no such file"
EMPTY = "no instances: the input is empty"
UTF8 = "badutf8.jsonl:2: -: not UTF-8: byte 0xff at column 31"
CTRL = "ctrl.jsonl:2: -: broken JSON: Invalid control character at column"
RANDOM = "rand.db: -: not a SQLite file"
FOREIGN = "foreign.db: -: a SQLite database that is not a hardneg judgment store (tables: users); it was not modified"
UNKNOWN = "unknown.yaml: stages.0.backend: unknown judge backend 'gpt4-judge'"
GGUF = "gguf.yaml: stages.0.params.model: no such GGUF file 'models/nope.gguf'"
PARAMS = "params.yaml: stages.0.params: openai takes no parameter 'temprature'"
slow = pytest.mark.slow
needs_ray = pytest.mark.skipif(not ray_installed(), reason="Ray is not installed (pip install 'hardneg[ray]')")
BATCH_COLLECT = ["batch", "collect", "--config", "{d}/ok.yaml", "--store"]
ANNOTATE = ["annotate", "export", "--instances", "{d}/good.jsonl", "-o", "{d}/tasks.json", "--store"]
JUDGE_EVAL = ["judge-eval", "{d}/tb", "--config", "{d}/ok.yaml", "--store"]
MINE = ["mine", "{d}/beir", "-o", OUT]
RAY = ["--engine", "ray", "--ray-address", "127.0.0.1:1"]  # port 1: nothing listens there
RAY_DOWN = "--ray-address: no Ray cluster answers at 127.0.0.1:1"
EMPTY_STORE = "empty.db: -: empty store (0 bytes)"
NOT_TESTBED = "not a testbed folder"
NOT_YAML = "rand.db: -: not a YAML text file (not UTF-8: byte"
NOT_QRELS = "rand.db: -: not a qrels text file (not UTF-8"

CASES = [
    # -- a missing input file
    ("missing", ["validate", "{d}/missing.jsonl"], [MISSING]),
    ("missing", ["stats", "{d}/missing.jsonl"], [MISSING]),
    ("missing", ["convert", "{d}/missing.jsonl", OUT], [MISSING]),
    ("missing", [*JUDGE, "{d}/missing.jsonl"], [MISSING]),
    ("missing", [*CLEAN, "{d}/missing.jsonl"], [MISSING]),
    ("missing", [*RELABEL, "{d}/missing.jsonl"], [MISSING]),
    ("missing", [*IMPORT, "{d}/missing.jsonl"], [MISSING]),
    ("missing", [*ESTIMATE, "{d}/missing.jsonl"], [MISSING]),
    ("missing", [*CALIBRATE, "{d}/missing.jsonl"], [MISSING]),
    ("missing", ["calibrate", "{d}/good.jsonl", "--labels-from-responses", "{d}/missing.jsonl"], [MISSING]),
    (
        "missing",
        ["agreement", "--a", "final", "--b", "qrels:{d}/missing.tsv", "--store", "{d}/good.db"],
        ["missing.tsv: -: no such file"],
    ),
    ("missing", [*REPORT, "--instances", "{d}/missing.jsonl"], [MISSING]),
    ("missing", ["mine", "{d}/nobeir", "-o", OUT], ["nobeir: -: not a BEIR folder"]),
    ("missing", ["evaluate", "--bm25", "{d}/nobeir"], ["nobeir: -: not a BEIR folder"]),
    pytest.param("missing", ["train", "retriever", "{d}/missing.jsonl", "-o", "{d}/model"], [MISSING], marks=slow),
    # -- a missing store, where it is read
    ("missing store", [*RELABEL[:1], "{d}/good.jsonl", "--store", "{d}/none.db", "-o", OUT], ["none.db", "no such"]),
    ("missing store", [*AGREEMENT, "--store", "{d}/none.db"], ["none.db", "no such judgment store"]),
    ("missing store", ["report", "--store", "{d}/none.db", "-o", "{d}/r.html"], ["none.db", "no such judgment store"]),
    # -- an empty input file
    ("empty", ["validate", "{d}/empty.jsonl"], ["empty.jsonl: -: no instances: the file is empty (--allow-empty"]),
    ("empty", ["convert", "{d}/empty.jsonl", OUT], [f"empty.jsonl: -: {EMPTY} (--allow-empty accepts it)"]),
    ("empty", [*JUDGE, "{d}/empty.jsonl"], [f"empty.jsonl: -: {EMPTY} (--allow-empty accepts it)"]),
    ("empty", [*CLEAN, "{d}/empty.jsonl"], [f"empty.jsonl: -: {EMPTY} (--allow-empty accepts it)"]),
    ("empty", [*RELABEL, "{d}/empty.jsonl"], [f"empty.jsonl: -: {EMPTY} (--allow-empty accepts it)"]),
    ("empty", [*IMPORT, "{d}/empty.jsonl"], ["empty.jsonl: -: no judged rows: the file is empty"]),
    ("empty", [*CALIBRATE, "{d}/empty.jsonl"], ["empty.jsonl: -: no instances: the input is empty"]),
    ("empty", [*ESTIMATE, "{d}/empty.jsonl"], [f"empty.jsonl: -: {EMPTY}"]),
    ("empty", [*REPORT, "--instances", "{d}/empty.jsonl"], [f"empty.jsonl: -: {EMPTY}"]),
    pytest.param("empty", ["train", "retriever", "{d}/empty.jsonl", "-o", "{d}/model"], [EMPTY], marks=slow),
    pytest.param("empty", ["train", "reranker", "{d}/empty.jsonl", "-o", "{d}/model"], [EMPTY], marks=slow),
    # -- bad UTF-8 on line 2: reported on line 2
    ("bad utf-8", ["validate", "{d}/badutf8.jsonl"], [UTF8]),
    ("bad utf-8", ["convert", "{d}/badutf8.jsonl", OUT], [UTF8]),
    ("bad utf-8", [*JUDGE, "{d}/badutf8.jsonl"], [UTF8]),
    ("bad utf-8", [*CLEAN, "{d}/badutf8.jsonl"], [UTF8]),
    ("bad utf-8", [*RELABEL, "{d}/badutf8.jsonl"], [UTF8]),
    ("bad utf-8", [*IMPORT, "{d}/judged_badutf8.jsonl"], ["judged_" + UTF8]),
    ("bad utf-8", [*ESTIMATE, "{d}/badutf8.jsonl"], [UTF8]),
    ("bad utf-8", [*CALIBRATE, "{d}/badutf8.jsonl"], [UTF8]),
    pytest.param("bad utf-8", ["train", "retriever", "{d}/badutf8.jsonl", "-o", "{d}/model"], [UTF8], marks=slow),
    # -- broken JSON: a control character inside a string
    ("control char", ["validate", "{d}/ctrl.jsonl"], [CTRL]),
    ("control char", ["convert", "{d}/ctrl.jsonl", OUT], [CTRL]),
    ("control char", [*JUDGE, "{d}/ctrl.jsonl"], [CTRL]),
    ("control char", [*CLEAN, "{d}/ctrl.jsonl"], [CTRL]),
    ("control char", [*RELABEL, "{d}/ctrl.jsonl"], [CTRL]),
    ("control char", [*IMPORT, "{d}/judged_ctrl.jsonl"], ["judged_" + CTRL]),
    ("control char", [*ESTIMATE, "{d}/ctrl.jsonl"], [CTRL]),
    # -- duplicate ids
    ("duplicate", [*IMPORT, "{d}/judged_dup.jsonl"], ["judged_dup.jsonl:4: query_id: duplicate query_id 'cq01'"]),
    ("duplicate", ["mine", "{d}/dupbeir", "-o", OUT], ["corpus.jsonl:", ": _id: duplicate _id 'ck02' (first at line"]),
    ("duplicate", ["evaluate", "--bm25", "{d}/dupbeir"], ["corpus.jsonl:", ": _id: duplicate _id 'ck02'"]),
    # -- bad cascade configs, named with the config file
    ("unknown backend", ["judge", "{d}/good.jsonl", "--store", NEW_STORE, "--config", "{d}/unknown.yaml"], [UNKNOWN]),
    ("unknown backend", ["clean", "{d}/good.jsonl", "-o", OUT, "--config", "{d}/unknown.yaml"], [UNKNOWN]),
    ("unknown backend", ["estimate", "{d}/good.jsonl", "--config", "{d}/unknown.yaml"], [UNKNOWN]),
    ("missing gguf", ["judge", "{d}/good.jsonl", "--store", NEW_STORE, "--config", "{d}/gguf.yaml"], [GGUF]),
    ("missing gguf", ["clean", "{d}/good.jsonl", "-o", OUT, "--config", "{d}/gguf.yaml"], [GGUF]),
    ("bad params", ["judge", "{d}/good.jsonl", "--store", NEW_STORE, "--config", "{d}/params.yaml"], [PARAMS]),
    ("bad params", ["clean", "{d}/good.jsonl", "-o", OUT, "--config", "{d}/params.yaml"], [PARAMS]),
    # -- a reranker that is not there
    # (slow: the check comes after the first stage and the sentence-transformers import)
    pytest.param(
        "missing reranker",
        ["evaluate", "--bm25", "{d}/beir", "--reranker", "{d}/MISSING"],
        ["MISSING: -: no such"],
        marks=slow,
    ),
    # -- stores that are not judgment stores: random bytes, a foreign SQLite database, a folder
    ("random store", ["judge", "{d}/good.jsonl", "--store", "{d}/rand.db", "--config", "{d}/ok.yaml"], [RANDOM]),
    ("random store", [*CLEAN, "{d}/good.jsonl", "--store", "{d}/rand.db"], [RANDOM]),
    ("random store", ["relabel", "{d}/good.jsonl", "--store", "{d}/rand.db", "-o", OUT], [RANDOM]),
    ("random store", [*AGREEMENT, "--store", "{d}/rand.db"], [RANDOM]),
    ("random store", [*IMPORT[:-1], "{d}/rand.db", "{d}/judged.jsonl"], [RANDOM]),
    ("random store", ["report", "--store", "{d}/rand.db", "-o", "{d}/r.html"], [RANDOM]),
    ("random store", ["calibrate", "{d}/good.jsonl", "--labels-store", "{d}/rand.db"], [RANDOM]),
    ("foreign store", ["judge", "{d}/good.jsonl", "--store", "{d}/foreign.db", "--config", "{d}/ok.yaml"], [FOREIGN]),
    ("foreign store", [*CLEAN, "{d}/good.jsonl", "--store", "{d}/foreign.db"], [FOREIGN]),
    ("foreign store", ["relabel", "{d}/good.jsonl", "--store", "{d}/foreign.db", "-o", OUT], [FOREIGN]),
    ("foreign store", [*AGREEMENT, "--store", "{d}/foreign.db"], [FOREIGN]),
    ("foreign store", [*IMPORT[:-1], "{d}/foreign.db", "{d}/judged.jsonl"], [FOREIGN]),
    ("foreign store", ["report", "--store", "{d}/foreign.db", "-o", "{d}/r.html"], [FOREIGN]),
    ("folder store", ["judge", "{d}/good.jsonl", "--store", "{d}/storedir", "--config", "{d}/ok.yaml"], ["a folder"]),
    # -- verbs and options added since the table was first written (issue 20) --------------------------------
    # batch status / collect run the store checks too (they used to accept any file and add their tables to it)
    ("random store", ["batch", "status", "--store", "{d}/rand.db"], [RANDOM]),
    ("random store", [*BATCH_COLLECT, "{d}/rand.db"], [RANDOM]),
    ("foreign store", ["batch", "status", "--store", "{d}/foreign.db"], [FOREIGN]),
    ("foreign store", [*BATCH_COLLECT, "{d}/foreign.db"], [FOREIGN]),
    ("folder store", ["batch", "status", "--store", "{d}/storedir"], ["a folder"]),
    ("missing store", ["batch", "status", "--store", "{d}/none.db"], ["none.db", "no such judgment store"]),
    ("random store", [*ANNOTATE, "{d}/rand.db"], [RANDOM]),
    ("foreign store", [*ANNOTATE, "{d}/foreign.db"], [FOREIGN]),
    ("random store", [*JUDGE_EVAL, "{d}/rand.db"], [RANDOM]),
    ("foreign store", [*JUDGE_EVAL, "{d}/foreign.db"], [FOREIGN]),
    ("folder store", [*JUDGE_EVAL, "{d}/storedir"], ["a folder"]),
    # a 0-byte store, where a store is read (it used to crash them with exit 1)
    ("empty store", ["relabel", "{d}/good.jsonl", "--store", "{d}/empty.db", "-o", OUT], [EMPTY_STORE]),
    ("empty store", ["report", "--store", "{d}/empty.db", "-o", "{d}/r.html"], [EMPTY_STORE]),
    ("empty store", [*AGREEMENT, "--store", "{d}/empty.db"], [EMPTY_STORE]),
    ("empty store", [*ANNOTATE, "{d}/empty.db"], [EMPTY_STORE]),
    ("empty store", ["calibrate", "{d}/good.jsonl", "--labels-store", "{d}/empty.db"], [EMPTY_STORE]),
    ("empty store", ["batch", "status", "--store", "{d}/empty.db"], [EMPTY_STORE]),
    ("empty store", [*BATCH_COLLECT, "{d}/empty.db"], [EMPTY_STORE]),
    # testbed and judge-eval
    ("testbed", ["testbed", "{d}/nobeir", "-o", "{d}/tb2"], ["nobeir: -: not a BEIR folder"]),
    ("testbed", ["testbed", "{d}/beir", "-o", "{d}/tb2", "--method", "nope"], ["--method: expected one of"]),
    ("testbed", ["testbed", "{d}/beir", "-o", "{d}/tb2", "--pool", "nope"], ["--pool: expected judged or corpus"]),
    ("testbed", ["testbed", "{d}/beir", "-o", "{d}/tb2", "--split", "nope"], ["no qrels for split 'nope'"]),
    ("judge-eval", ["judge-eval", "{d}/beir", "--config", "{d}/ok.yaml", "--store", NEW_STORE], [NOT_TESTBED]),
    ("judge-eval", ["judge-eval", "{d}/nobeir", "--config", "{d}/ok.yaml", "--store", NEW_STORE], [NOT_TESTBED]),
    ("judge-eval", [*JUDGE_EVAL, NEW_STORE, "--tags", "nope"], ["--tags: expected better or both; got 'nope'"]),
    ("judge-eval", [*JUDGE_EVAL, NEW_STORE, "--target", "precision>>0.7"], ["--target: expected"]),
    ("judge-eval", ["judge-eval", "{d}/tb", "--config", "{d}/nope.yaml", "--store", NEW_STORE], ["nope.yaml"]),
    ("unknown backend", ["judge-eval", "{d}/tb", "--config", "{d}/unknown.yaml", "--store", NEW_STORE], [UNKNOWN]),
    # mine --rescore: a bi-encoder would score with a randomly initialised head; refused before any mining
    ("rescore", [*MINE, "--rescore", "{minilm}"], ["--rescore:", "is a sentence-transformers", "not a cross-encoder"]),
    ("rescore", [*MINE, "--rescore", "{d}/beir"], ["--rescore:", "not a model folder (no config.json)"]),
    ("rescore", [*MINE, "--rescore", "{d}/MISSING"], ["--rescore: no such cross-encoder folder"]),
    # convert --to st-labeled-list, and an unknown layout
    ("bad utf-8", ["convert", "{d}/badutf8.jsonl", OUT, "--to", "st-labeled-list"], [UTF8]),
    ("control char", ["convert", "{d}/ctrl.jsonl", OUT, "--to", "st-labeled-list"], [CTRL]),
    ("empty", ["convert", "{d}/empty.jsonl", OUT, "--to", "st-labeled-list"], [f"empty.jsonl: -: {EMPTY}"]),
    ("layout", ["convert", "{d}/good.jsonl", OUT, "--to", "st-labeled-lists"], ["unknown export layout"]),
    # relabel treatments and tags
    ("treatment", [*RELABEL, "{d}/good.jsonl", "--treatment", "rlhn+filter", "--tags", "nope"], ["tags 'nope'"]),
    ("treatment", [*RELABEL, "{d}/good.jsonl", "--treatment", "nope"], ["unknown treatment 'nope'"]),
    # the output-path rule: the name says the format; an existing folder hardneg did not write is never replaced
    ("output", ["convert", "{d}/good.jsonl", "{d}/out.txt"], ["out.txt: unknown output format"]),
    ("output", ["relabel", "{d}/good.jsonl", "--store", "{d}/good.db", "-o", "{d}/out.csv"], ["out.csv: unknown"]),
    ("output", ["mine", "{d}/beir", "-o", "{d}/out.csv"], ["out.csv: unknown output format"]),
    ("output", ["convert", "{d}/good.jsonl", "{d}/beir/"], ["is an existing folder hardneg did not write"]),
    ("output", ["testbed", "{d}/beir", "-o", "{d}/beir"], ["is an existing folder hardneg did not write"]),
    ("output", ["testbed", "{d}/beir", "-o", "{d}/good.jsonl"], ["exists and is not a folder"]),
    # files that are not text where a YAML / qrels / JSON file is read
    ("binary config", ["judge", "{d}/good.jsonl", "--store", NEW_STORE, "--config", "{d}/rand.db"], [NOT_YAML]),
    ("binary config", ["estimate", "{d}/good.jsonl", "--config", "{d}/rand.db"], [NOT_YAML]),
    ("binary config", ["experiment", "{d}/rand.db"], [NOT_YAML]),
    ("binary config", [*JUDGE, "{d}/good.jsonl", "--prices", "{d}/rand.db"], ["price table", "not UTF-8"]),
    ("binary qrels", ["agreement", "--a", "final", "--b", "qrels:{d}/rand.db", "--store", "{d}/good.db"], [NOT_QRELS]),
    ("binary qrels", ["calibrate", "{d}/good.jsonl", "--qrels", "{d}/rand.db"], [NOT_QRELS]),
    ("binary export", ["annotate", "import", "{d}/rand.db", "-o", "{d}/labels.tsv"], ["rand.db: -: not a JSON text"]),
    ("folder export", ["annotate", "import", "{d}/storedir", "-o", "{d}/labels.tsv"], ["storedir: -: a folder"]),
    (
        "file as folder",
        ["judge", "{d}/good.jsonl", "--store", "{d}/good.jsonl/j.db", "--config", "{d}/ok.yaml"],
        ["good.jsonl", "(EEXIST)"],
    ),
    # --engine ray with an address nothing answers at: exit 2 at once (it used to wait minutes in ray.init)
    pytest.param("ray", [*JUDGE, "{d}/good.jsonl", *RAY], [RAY_DOWN], marks=needs_ray),
    pytest.param("ray", [*CLEAN, "{d}/good.jsonl", *RAY], [RAY_DOWN], marks=needs_ray),
    pytest.param("ray", [*MINE, "--method", "dense", *RAY], [RAY_DOWN], marks=needs_ray),
    pytest.param("ray", ["experiment", "{d}/ray.yaml"], ["ray.yaml: ray_address: no Ray cluster"], marks=needs_ray),
]


def _id(case: object) -> str:
    values = case.values if hasattr(case, "values") else case
    label, argv = values[0], values[1]
    verb = " ".join(a for a in argv[:2] if not a.startswith(("-", "{")))
    return f"{label}: {verb}"


@pytest.mark.parametrize(("case", "argv", "fragments"), CASES, ids=[_id(c) for c in CASES])
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(
    inputs: Path, case: str, argv: list[str], fragments: list[str]
) -> None:
    args = [a.format(d=inputs, minilm=minilm_path()) for a in argv]
    before = snapshot(inputs)
    result = runner.invoke(app, args)
    message = one_line(result.stderr)
    assert result.exit_code == 2, f"{case}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    for fragment in fragments:
        assert one_line(fragment) in message, f"{case}: {fragment!r} not in {message!r}"
    for bad in FORBIDDEN:
        assert bad not in result.output, f"{case}: {bad!r} in {result.output!r}"
    after = snapshot(inputs)
    assert after == before, f"{case}: new or changed {sorted(set(after.items()) ^ set(before.items()))}"


@pytest.mark.parametrize(
    ("verb", "argv", "writes"),
    [
        ("validate", ["validate", "{d}/empty.jsonl"], []),
        ("convert", ["convert", "{d}/empty.jsonl", OUT], ["out.jsonl"]),
        ("judge", [*JUDGE, "{d}/empty.jsonl"], ["new.db"]),
        ("clean", [*CLEAN, "{d}/empty.jsonl"], ["out.jsonl", "out.jsonl.judgments.sqlite"]),
        ("relabel", [*RELABEL, "{d}/empty.jsonl"], ["out.jsonl"]),
    ],
)
def test_allow_empty_accepts_an_empty_input(inputs: Path, verb: str, argv: list[str], writes: list[str]) -> None:
    args = [a.format(d=inputs) for a in argv]
    result = runner.invoke(app, [*args, "--allow-empty"])
    assert result.exit_code == 0, f"{verb}: {result.output}"
    for name in writes:
        assert (inputs / name).exists(), f"{verb} wrote no {name}"
    if "out.jsonl" in writes:
        assert (inputs / "out.jsonl").read_bytes() == b""  # an empty output, not a missing one
    assert not [p for p in inputs.iterdir() if ".hardneg-tmp-" in p.name]


# Option values click itself refuses (exit 2, its usage message naming the option), before any work: --limit must
# be at least 1 wherever it exists (a --limit 0 used to read one instance in calibrate).
LIMIT_VERBS = [
    ["mine", "{d}/beir", "-o", OUT],
    ["testbed", "{d}/beir", "-o", "{d}/tb2"],
    ["judge-eval", "{d}/tb", "--config", "{d}/ok.yaml", "--store", NEW_STORE],
    [*JUDGE, "{d}/good.jsonl"],
    [*CLEAN, "{d}/good.jsonl"],
    ["calibrate", "{d}/good.jsonl", "--labels-from-responses", "{d}/judged.jsonl"],
    [*ESTIMATE, "{d}/good.jsonl"],
]


@pytest.mark.parametrize("value", ["0", "-3"])
@pytest.mark.parametrize("argv", LIMIT_VERBS, ids=[a[0] for a in LIMIT_VERBS])
def test_a_limit_below_one_exits_2_before_any_work(inputs: Path, argv: list[str], value: str) -> None:
    args = [a.format(d=inputs) for a in argv]
    before = snapshot(inputs)
    result = runner.invoke(app, [*args, "--limit", value])
    assert result.exit_code == 2, f"{argv[0]} --limit {value}: exit {result.exit_code}\n{result.output}"
    assert "Invalid value for '--limit'" in one_line(result.output), result.output
    assert "Traceback" not in result.output
    assert snapshot(inputs) == before
