"""Cross-encoder scoring of (query, passage) pairs, on torch or ONNX Runtime (resolved as for encoders).

`load_cross_encoder(folder, backend="auto")` gives a scorer with the same three members on either backend:

- `logits(pairs, batch_size=32)`: one raw score per pair (``CrossEncoder.predict(..., activation_fn=Identity())``);
- `activate(logits)`: the model's own activation of them (sigmoid for the one-label models `hardneg train
  reranker` writes), in float64: the scale `CrossEncoder.predict` returns by default, so margins and score cuts
  mean what they mean in sentence-transformers' `mine_hard_negatives`;
- `backend` (``onnx`` or ``torch``), `max_length`, `query_prefix` / `passage_prefix`.

`backend="auto"` scores under ONNX Runtime on a CPU when onnxruntime is installed (no torch in the process,
`hardneg.retrieval.onnx_cross`) and with torch otherwise, or when the model cannot be exported (logged). A folder
written by `hardneg train reranker` brings its prefixes (its `hardneg_train.json`), as `hardneg evaluate
--reranker` uses them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.errors import ConfigError
from hardneg.retrieval.encoders import check_backend, resolve_backend
from hardneg.retrieval.keys import path_key
from hardneg.retrieval.onnx import OnnxUnsupported
from hardneg.retrieval.onnx_cross import ACTIVATIONS, activate, load_onnx_cross_encoder
from hardneg.retrieval.torch_backend import load_torch_cross_encoder

logger = logging.getLogger(__name__)
# The metadata `hardneg train` writes beside a model (hardneg.training.common.METADATA_FILE; train is a layer above).
TRAIN_METADATA_FILE = "hardneg_train.json"
# Pairs are scored in chunks of this many batches, so progress is reported as it goes.
_BATCHES_PER_CHUNK = 16


class TorchCrossEncoder:
    """A sentence-transformers CrossEncoder behind the scorer interface (see the module docstring)."""

    backend = "torch"

    def __init__(self, model: Any, *, key: str, param: str = "model") -> None:
        self.model = model
        self.query_prefix = ""
        self.passage_prefix = ""
        self._hardneg_key = f"{key}|torch"
        if int(model.num_labels) != 1:
            raise ConfigError(
                f"expected a one-score cross-encoder; this one has {model.num_labels} labels", param=param
            )
        self.activation = ACTIVATIONS.get(type(model.activation_fn).__name__, "model")

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length)

    def logits(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32) -> np.ndarray:
        import torch

        if not len(pairs):
            return np.empty(0, dtype=np.float32)
        inputs = [(self.query_prefix + q, self.passage_prefix + p) for q, p in pairs]
        scores = self.model.predict(
            inputs, batch_size=batch_size, activation_fn=torch.nn.Identity(), convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))

    def activate(self, logits: np.ndarray) -> np.ndarray:
        if self.activation != "model":
            return activate(logits, self.activation)
        import torch

        values = torch.as_tensor(np.asarray(logits, dtype=np.float64))
        return self.model.activation_fn(values).numpy().astype(np.float64)


def trained_prefixes(folder: str | Path) -> tuple[str, str]:
    """The query and passage prefixes a model was trained with (its `hardneg_train.json`), else empty."""
    path = Path(folder) / TRAIN_METADATA_FILE
    try:
        config = json.loads(path.read_text()).get("config", {}) if path.is_file() else {}
    except (OSError, json.JSONDecodeError, AttributeError):
        config = {}
    if not isinstance(config, dict):
        return "", ""
    return str(config.get("query_prefix") or ""), str(config.get("passage_prefix") or "")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def check_cross_encoder(folder: str | Path, *, param: str = "rescore") -> None:
    """Refuse (`ConfigError` naming `param`) a missing folder, or a model folder that is not a cross-encoder,
    before anything loads.

    Loaded as a CrossEncoder, a model without a sequence-classification head (a sentence-transformers bi-encoder
    such as MiniLM, a bare ``BertModel``) gets a randomly initialised head: scores that mean nothing and differ
    from run to run. A cross-encoder is a folder whose ``config_sentence_transformers.json`` says
    ``"model_type": "CrossEncoder"``, or whose ``config.json`` names a ``...ForSequenceClassification``
    architecture (what sentence-transformers and `hardneg train reranker` save); a folder saying neither is
    refused when its ``config.json`` names other architectures or its ``modules.json`` has a pooling module (a
    bi-encoder), and a folder without a ``config.json`` is not a model. Anything else is left to the loader.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"no such cross-encoder folder: {folder} (e.g. one from `hardneg train reranker`)", param=param
        )
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{folder} is not a model folder (no config.json): name a cross-encoder folder (e.g. one from "
            "`hardneg train reranker`)",
            param=param,
        )
    st_type = _read_json(path / "config_sentence_transformers.json").get("model_type")
    if st_type == "CrossEncoder":
        return
    architectures = [str(a) for a in _read_json(path / "config.json").get("architectures") or []]
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return
    modules = path / "modules.json"
    try:
        pooling = modules.is_file() and "Pooling" in modules.read_text(encoding="utf-8")
    except OSError:
        pooling = False
    if st_type or pooling:
        kind = f"a sentence-transformers {st_type or 'bi-encoder'} (an embedding model)"
    elif architectures:
        kind = f"a model without a scoring head (config.json: {', '.join(architectures)})"
    else:
        return
    raise ConfigError(
        f"{folder} is {kind}, not a cross-encoder: loaded as one it would score with a randomly initialised head. "
        "Name a cross-encoder folder (a ...ForSequenceClassification model, e.g. from `hardneg train reranker`)",
        param=param,
    )


def load_cross_encoder(
    model_name_or_path: str | os.PathLike[str],
    *,
    backend: str = "auto",
    device: str | None = None,
    max_length: int | None = None,
    cache_dir: str | Path | None = None,
    param: str = "rescore",
) -> Any:
    """A cross-encoder scorer for a CrossEncoder folder (`TorchCrossEncoder` or `OnnxCrossEncoder`).

    `backend`: ``auto`` (ONNX Runtime on a CPU when installed and the model allows it, else torch), ``torch`` or
    ``onnx`` (an error when the model cannot run there). `max_length` overrides the model's own token limit.
    `cache_dir` is the ONNX export root. Raises `hardneg.models.ModelError` for a folder that is not a model; a
    missing folder, or a model that is not a cross-encoder (`check_cross_encoder`), is a `ConfigError` naming
    `param`.
    """
    check_backend(backend)
    name = str(model_name_or_path)
    check_cross_encoder(name, param=param)
    if max_length is not None and max_length < 8:
        raise ConfigError(f"must be at least 8 tokens; got {max_length}", param=f"{param}_max_length")
    prefixes = trained_prefixes(name)
    scorer: Any = None
    if resolve_backend(backend, device) == "onnx":
        try:
            scorer = load_onnx_cross_encoder(name, cache_dir=cache_dir, max_length=max_length)
        except OnnxUnsupported as exc:
            if backend == "onnx":
                raise
            logger.info("ONNX backend not used for the cross-encoder (%s); scoring with torch", exc)
        except ConfigError as exc:  # the export itself failed: auto still has torch
            if backend == "onnx":
                raise
            logger.warning("ONNX export of the cross-encoder failed, scoring with torch: %s", exc)
    if scorer is None:
        model = load_torch_cross_encoder(name, device=device, max_length=max_length)
        scorer = TorchCrossEncoder(model, key=f"cross-encoder:{path_key(name)}", param=param)
    scorer.query_prefix, scorer.passage_prefix = prefixes
    return scorer


def score_pairs(
    scorer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Raw scores (logits) of `pairs`, scored in chunks; `progress(pairs done)` after each chunk."""
    out = np.empty(len(pairs), dtype=np.float32)
    chunk = max(1, batch_size * _BATCHES_PER_CHUNK)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        out[start : start + len(part)] = scorer.logits(part, batch_size=batch_size)
        if progress:
            progress(start + len(part))
    return out
