"""Cross-encoder scoring on torch and under ONNX Runtime (`hardneg.retrieval.cross_encoder`, `.onnx_cross`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hardneg.errors import ConfigError
from hardneg.retrieval.cross_encoder import load_cross_encoder, score_pairs, trained_prefixes
from hardneg.retrieval.onnx import META_FILE, UNSUPPORTED_FILE, OnnxUnsupported
from hardneg.retrieval.onnx_cross import activate
from support.cross_encoder import sample_cross_encoder

PAIRS = [
    ("how long should a steak rest", "Resting a grilled steak for five to ten minutes lets the juices settle."),
    ("why do stock markets crash", "Interest rates set by central banks move stock markets. " * 60),  # truncated
    ("a query " * 80, "a short passage"),  # the query alone is past the limit
    ("an empty passage", ""),
    ("Ünïcödé QUERY", "emoji 🐈, punctuation (a) [b] {c}!"),
]


def test_activations() -> None:
    logits = np.array([-40.0, 0.0, 20.0], dtype=np.float32)
    np.testing.assert_allclose(activate(logits, "sigmoid"), [1 / (1 + np.exp(40.0)), 0.5, 1 / (1 + np.exp(-20.0))])
    assert activate(logits, "sigmoid")[2] < 1.0  # float64: no saturation at logit 20
    np.testing.assert_array_equal(activate(logits, "identity"), logits.astype(np.float64))
    with pytest.raises(OnnxUnsupported):
        activate(logits, "tanh")


def test_missing_folder_and_bad_backend_name_their_parameter(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_cross_encoder(tmp_path / "nope", param="teacher")
    assert info.value.param == "teacher"
    with pytest.raises(ConfigError) as info:
        load_cross_encoder(tmp_path, backend="tensorflow")
    assert info.value.param == "backend"
    assert trained_prefixes(tmp_path) == ("", "")
    (tmp_path / "hardneg_train.json").write_text(json.dumps({"config": {"query_prefix": "q: "}}))
    assert trained_prefixes(tmp_path) == ("q: ", "")


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_cross_encoder(tmp_path_factory)


@pytest.mark.slow
def test_onnx_scores_match_torch(cross_encoder: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    onnx = load_cross_encoder(cross_encoder, backend="onnx", cache_dir=tmp_path / "onnx")
    torch = load_cross_encoder(cross_encoder, backend="torch")
    assert (onnx.backend, torch.backend) == ("onnx", "torch")
    meta = json.loads((onnx.folder / META_FILE).read_text())
    assert meta["kind"] == "cross-encoder" and meta["activation"] == "sigmoid" and meta["max_length"] == 64
    assert meta["verified_max_abs_diff"] <= 1e-3 and (onnx.folder / "model.onnx.data").is_file()
    expected = torch.logits(PAIRS, batch_size=2)
    got = onnx.logits(PAIRS, batch_size=2)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(onnx.activate(got), torch.activate(expected), atol=1e-5)
    # Forward passes of a few tokens each, and chunked scoring, give the same scores, pair for pair.
    onnx.max_batch_tokens = 70
    np.testing.assert_allclose(score_pairs(onnx, PAIRS * 3, batch_size=1), np.tile(got, 3), atol=1e-5)
    # A shorter limit changes the long pairs only.
    short = load_cross_encoder(cross_encoder, backend="onnx", cache_dir=tmp_path / "onnx", max_length=16)
    cut = short.logits(PAIRS)
    assert abs(cut[1] - got[1]) > 1e-4 and cut[3] == pytest.approx(got[3], abs=1e-5)
    # auto picks ONNX Runtime on a CPU.
    assert load_cross_encoder(cross_encoder, cache_dir=tmp_path / "onnx").backend == "onnx"


@pytest.mark.slow
def test_scoring_process_never_imports_torch(cross_encoder: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    load_cross_encoder(cross_encoder, backend="onnx", cache_dir=tmp_path / "onnx")  # the export (a child)
    code = (
        "import sys, json\n"
        "from hardneg.retrieval.cross_encoder import load_cross_encoder\n"
        f"scorer = load_cross_encoder({str(cross_encoder)!r}, cache_dir={str(tmp_path / 'onnx')!r})\n"
        "scores = scorer.activate(scorer.logits([('a query about cats', 'a passage')]))\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'st': 'sentence_transformers' in sys.modules,\n"
        "                  'backend': scorer.backend, 'n': len(scores)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"torch": False, "st": False, "backend": "onnx", "n": 1}


@pytest.mark.slow
def test_unsupported_model_falls_back_or_fails(tmp_path: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    from hardneg.models import minilm_path

    folder = tmp_path / "two-labels"
    CrossEncoder(minilm_path(), num_labels=2).save(str(folder))
    cache = tmp_path / "onnx"
    with pytest.raises(OnnxUnsupported, match="one-label"):
        load_cross_encoder(folder, backend="onnx", cache_dir=cache)
    assert len(list(cache.glob(f"*/{UNSUPPORTED_FILE}"))) == 1  # remembered: no second export child
    # auto falls back to torch, which cannot give one score per pair either: an error naming the parameter.
    with pytest.raises(ConfigError) as info:
        load_cross_encoder(folder, cache_dir=cache, param="rescore")
    assert info.value.param == "rescore" and "one-score" in str(info.value)
