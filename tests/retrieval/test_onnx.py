"""The ONNX Runtime encoder: same embeddings as sentence-transformers, without torch in the process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.errors import ConfigError
from hardneg.models import ModelError
from hardneg.retrieval.encoders import load_encoder
from hardneg.retrieval.onnx import (
    META_FILE,
    UNSUPPORTED_FILE,
    OnnxEncoder,
    OnnxUnsupported,
    load_onnx_encoder,
    pool,
)

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

TEXTS = [
    "Cats are small domesticated carnivores that purr and hunt mice.",
    "  leading and trailing spaces  ",
    "",
    "UPPER CASE and lower case",
    "Interest rates set by central banks move stock markets. " * 60,  # past the 256-token limit: truncated
    "a",
    "Dogs are loyal animals; a dog barks and fetches sticks. " * 8,
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> OnnxEncoder:
    """The embedded MiniLM, exported by the child process into a fresh folder."""
    return load_onnx_encoder(cache_dir=tmp_path_factory.mktemp("onnx"))


def test_passes_respect_the_token_budget() -> None:
    encoder = OnnxEncoder.__new__(OnnxEncoder)  # only the splitting rule, no session
    encoder.max_batch_tokens = 40
    assert encoder._passes([10, 10, 10, 10, 10]) == [[0, 1, 2, 3], [4]]
    assert encoder._passes([30, 10, 10]) == [[0], [1, 2]]  # the 30-token row pads the pair to 60 > 40
    assert encoder._passes([50, 5]) == [[0], [1]]  # a row longer than the budget still gets its own pass
    assert encoder._passes([]) == []


def test_pooling_modes_by_hand() -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])  # the third token is padding and must not count
    np.testing.assert_allclose(pool(hidden, mask, "mean"), [[2.0, -1.0]])
    np.testing.assert_allclose(pool(hidden, mask, "cls"), [[1.0, 2.0]])
    np.testing.assert_allclose(pool(hidden, mask, "max"), [[3.0, 2.0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean_sqrt_len_tokens"), [[4.0 / np.sqrt(2), -2.0 / np.sqrt(2)]])
    with pytest.raises(OnnxUnsupported):
        pool(hidden, mask, "lasttoken")


@pytest.mark.slow
def test_embeddings_match_sentence_transformers(exported: OnnxEncoder) -> None:
    meta = json.loads((exported.folder / META_FILE).read_text())
    assert meta["pooling"] == "mean" and meta["normalize"] and meta["max_seq_length"] == 256
    assert (exported.folder / "model.onnx.data").is_file()  # weights mapped from disk, not parsed into memory
    model = load_encoder(device="cpu")
    expected = model.encode(TEXTS, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    got = exported.encode(TEXTS, batch_size=4, normalize_embeddings=True)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Truncation at the model's limit: a shorter limit changes the long text only.
    exported.max_seq_length = 32
    try:
        short = exported.encode(TEXTS, batch_size=4, normalize_embeddings=True)
    finally:
        exported.max_seq_length = 256
    assert not np.allclose(short[4], got[4], atol=1e-3)
    np.testing.assert_allclose(short[0], got[0], atol=1e-5)
    # Forward passes of a few tokens each give the same embeddings, row for row.
    exported.max_batch_tokens = 16
    try:
        split = exported.encode(TEXTS, batch_size=len(TEXTS), normalize_embeddings=True)
    finally:
        exported.max_batch_tokens = 1024
    np.testing.assert_allclose(split, got, atol=1e-5)


@pytest.mark.slow
def test_encoding_process_never_imports_torch(exported: OnnxEncoder) -> None:
    code = (
        "import sys, json\n"
        "from hardneg.retrieval.onnx import load_onnx_encoder\n"
        f"encoder = load_onnx_encoder(cache_dir={str(exported.folder.parent)!r})\n"
        "emb = encoder.encode(['a query about cats', 'a passage'], normalize_embeddings=True)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'st': 'sentence_transformers' in sys.modules,\n"
        "                  'shape': list(emb.shape)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"torch": False, "st": False, "shape": [2, 384]}


@pytest.mark.slow
def test_unsupported_stack_falls_back_to_torch(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    base = load_encoder(device="cpu")
    with_dense = SentenceTransformer(modules=[base[0], base[1], Dense(384, 64)], device="cpu")
    folder = tmp_path / "minilm-dense"
    with_dense.save(str(folder))
    cache = tmp_path / "onnx"
    with pytest.raises(OnnxUnsupported, match="Dense"):
        load_onnx_encoder(folder, cache_dir=cache)
    # The verdict is remembered: the next call answers without starting an export child.
    assert len(list(cache.glob(f"*/{UNSUPPORTED_FILE}"))) == 1
    with pytest.raises(OnnxUnsupported, match="Dense"):
        load_encoder(folder, backend="onnx", cache_dir=cache)
    fallback = load_encoder(folder, backend="auto", device="cpu", cache_dir=cache)
    assert isinstance(fallback, SentenceTransformer)
    assert fallback.encode(["x"]).shape == (1, 64)


@pytest.mark.slow
def test_missing_model_is_a_model_error_and_leaves_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "onnx"
    with pytest.raises(ModelError, match="no-such-model"):
        load_onnx_encoder(tmp_path / "no-such-model", cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.slow
def test_mine_cli_with_each_backend(tmp_path: Path) -> None:
    beir = tmp_path / "toy"
    (beir / "qrels").mkdir(parents=True)
    docs = {f"d{i}": text for i, text in enumerate(TEXTS) if text.strip()}
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in docs.items()))
    queries = {"q1": "what do cats hunt", "q2": "why do markets move"}
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\nq2\td4\t1\n")
    reports, rows = {}, {}
    for backend in ("onnx", "torch"):
        out = tmp_path / f"{backend}.jsonl"
        args = ["mine", str(beir), "-o", str(out), "--method", "dense", "--negatives", "3", "--save-scores"]
        result = CliRunner().invoke(app, [*args, "--backend", backend, "--no-cache", "--json"])
        assert result.exit_code == 0, result.output
        reports[backend] = json.loads(result.stdout)
        rows[backend] = [json.loads(line) for line in out.read_text().splitlines()]
    assert reports["onnx"]["encoder"] == "onnx" and reports["torch"]["encoder"] == "torch"
    # Same negatives in the same order, same cosine scores to float precision.
    for a, b in zip(rows["onnx"], rows["torch"], strict=True):
        assert [n["docid"] for n in a["negative_passages"]] == [n["docid"] for n in b["negative_passages"]]
        np.testing.assert_allclose(
            [n["score"] for n in a["negative_passages"]], [n["score"] for n in b["negative_passages"]], atol=1e-5
        )
    bad = CliRunner().invoke(app, ["mine", str(beir), "-o", str(tmp_path / "x.jsonl"), "--backend", "tf"])
    assert bad.exit_code == 2 and "--backend" in bad.output


@pytest.mark.slow
def test_export_failure_falls_back_under_auto_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformer

    def broken_export(model: str, folder: Path) -> None:  # a fault a real exporter gives only on exotic models
        raise ConfigError(f"ONNX export of {model!r} failed (exit 1):\nTorchExportError: unsupported operator")

    monkeypatch.setattr("hardneg.retrieval.onnx._export_in_child", broken_export)
    with pytest.raises(ConfigError, match="unsupported operator"):
        load_encoder(backend="onnx", cache_dir=tmp_path)
    assert isinstance(load_encoder(backend="auto", device="cpu", cache_dir=tmp_path), SentenceTransformer)
