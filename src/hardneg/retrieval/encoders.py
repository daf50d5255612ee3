"""Which encoder runs a sentence-transformers model: torch or ONNX Runtime, resolved in this one place.

`backend="auto"` picks ONNX Runtime on a CPU when onnxruntime is installed (no torch in the process: about a
quarter of the memory, docs/benchmarks.md), and torch otherwise or when a GPU is visible. A model the ONNX
backend cannot run (its module stack), or whose export fails, falls back to torch under ``auto`` and is an error
under ``onnx``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from hardneg.errors import ConfigError
from hardneg.retrieval import onnx
from hardneg.retrieval.onnx import OnnxUnsupported
from hardneg.retrieval.torch_backend import load_sentence_transformer

EncoderBackend = Literal["auto", "torch", "onnx"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
logger = logging.getLogger(__name__)


def check_backend(backend: str, param: str = "backend") -> None:
    """`ConfigError` naming `param` unless `backend` is one of `BACKENDS`."""
    if backend not in BACKENDS:
        raise ConfigError(f"expected one of {', '.join(BACKENDS)}; got {backend!r}", param=param)


def gpu_present() -> bool:
    """An NVIDIA GPU is visible, checked without importing torch (which is what the ONNX backend avoids)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def resolve_backend(backend: str, device: str | None = None) -> str:
    """``torch`` or ``onnx`` for a requested backend: ``auto`` picks onnx on CPU when onnxruntime is installed."""
    check_backend(backend)
    if backend != "auto":
        return backend
    on_cpu = device == "cpu" or (device is None and not gpu_present())
    return "onnx" if on_cpu and onnx.onnx_runtime_installed() else "torch"


def load_encoder(
    model_name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
) -> Any:
    """Load a sentence-transformers model offline (default: the embedded all-MiniLM-L6-v2 from `hardneg.models`).

    `backend`: ``torch`` gives a SentenceTransformer; ``onnx`` the same model under ONNX Runtime
    (`hardneg.retrieval.onnx.OnnxEncoder`: no torch in the process, exported once into `cache_dir`, default
    ``<cache>/onnx``); ``auto`` picks onnx on a CPU when onnxruntime is installed and the model's stack is
    supported, else torch. `device` (torch) defaults to ``cuda`` when available, else ``cpu``. The returned
    encoder carries a cache key (`_hardneg_key`) derived from its path (and the size/mtime of its files) and
    backend, used by `encode_texts`. Raises `hardneg.models.ModelError` when the model cannot be found locally.
    """
    chosen = resolve_backend(backend, device)
    if chosen == "onnx":
        try:
            return onnx.load_onnx_encoder(model_name_or_path, cache_dir=cache_dir)
        except OnnxUnsupported as exc:
            if backend == "onnx":
                raise
            logger.info("ONNX backend not used (%s); encoding with torch", exc)
        except ConfigError as exc:  # the export itself failed (a ModelError is not one): auto still has torch
            if backend == "onnx":
                raise
            logger.warning("ONNX export failed, encoding with torch: %s", exc)
    return load_sentence_transformer(model_name_or_path, device=device)
