"""ONNX Runtime backend for cross-encoders: (query, passage) scores without torch in the process.

The sibling of `hardneg.retrieval.onnx` (bi-encoders) for sentence-transformers `CrossEncoder` folders, such as
those `hardneg train reranker` writes. Rescoring mined candidates (`hardneg mine --rescore`) and teacher scores
(`hardneg.training.teacher`) only need the sequence-classification head's output, so the model runs under ONNX
Runtime with `tokenizers` and numpy doing the rest.

- `export_cross_encoder(model, folder)`: loads the CrossEncoder (torch) and writes ``model.onnx`` (the
  transformer and its classification head, dynamic batch and length; fused as the bi-encoder export is), the
  tokenizer exactly as sentence-transformers configured it, and `hardneg_onnx.json` (max length, activation,
  inputs). Before the export is kept, its logits are checked against the torch model's on pairs that include
  truncated and empty ones (`VERIFY_ATOL`); a model that disagrees is unsupported. It runs once per model, in a
  child process (``python -m hardneg.retrieval.onnx_cross``), so the scoring process never imports torch.
- `load_onnx_cross_encoder(model)`: the cached export (made on first use) as an `OnnxCrossEncoder`.
- `OnnxCrossEncoder.logits(pairs)`: one raw score per pair, as ``CrossEncoder.predict(...,
  activation_fn=Identity())`` gives; `activate` applies the model's activation (sigmoid or identity).

Supported: a CrossEncoder made of one Transformer module with the ``sequence-classification`` task, one label,
a Sigmoid or Identity activation, no default prompt, and a fast tokenizer. Anything else raises `OnnxUnsupported`;
``backend="auto"`` then scores with torch (`hardneg.retrieval.cross_encoder`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.models import ModelError
from hardneg.models import cache_dir as default_cache_dir
from hardneg.retrieval.keys import key_slug, path_key
from hardneg.retrieval.onnx import (
    DEFAULT_MAX_BATCH_TOKENS,
    META_FILE,
    ONNX_OPSET,
    OnnxSession,
    OnnxUnsupported,
    cached_export,
    export_main,
    finish_graph,
    onnx_runtime_installed,
    prepare_for_export,
    run_export_child,
    staged_export,
    trace_to_onnx,
)
from hardneg.retrieval.torch_backend import load_torch_cross_encoder

# Bump when the export layout or the graph changes, so old exports are not reused.
EXPORT_VERSION = 1
ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": "identity"}
# Largest difference allowed between the exported graph's logits and torch's on the verification pairs.
VERIFY_ATOL = 1e-3
_VERIFY_PAIRS = [
    ("what do cats hunt", "Cats are small domesticated carnivores that purr and hunt mice."),
    ("why do stock markets crash", "Interest rates set by central banks move stock markets. " * 60),
    ("Interest rates and inflation " * 40, "A short passage."),
    ("an empty passage", ""),
    ("UPPER case Query", "Ünïcödé text, emoji 🐈 and punctuation: (a), [b]; {c}!"),
    ("dogs", "Dogs are loyal animals; a dog barks and fetches sticks. " * 8),
]


def export_folder(key: str, cache_dir: str | Path | None = None) -> Path:
    """Where the export of the cross-encoder with cache key `key` lives (``<cache>/onnx/<slug>-ce-<hash>``)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "onnx"
    digest = hashlib.sha256(json.dumps({"cross_encoder": key, "v": EXPORT_VERSION}).encode()).hexdigest()[:16]
    return root / f"{key_slug(key)}-ce-{digest}"


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """The model's activation on raw logits, in float64 (a float32 sigmoid saturates at 1.0 near logit 17)."""
    values = np.asarray(logits, dtype=np.float64)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-values))
    if activation == "identity":
        return values
    raise OnnxUnsupported(f"activation {activation!r} is not supported by the ONNX backend")


# ------------------------------------------------------------------------------------------------------- export


def _check_cross_encoder(model: Any) -> tuple[Any, str]:
    """The Transformer module and activation name of a supported CrossEncoder; `OnnxUnsupported` otherwise."""
    modules = list(model._modules.values())
    names = [type(module).__name__ for module in modules]
    if names != ["Transformer"]:
        raise OnnxUnsupported(
            f"the ONNX backend runs cross-encoders made of one Transformer module; this one is {names}"
        )
    transformer = modules[0]
    task = getattr(transformer, "transformer_task", "sequence-classification")
    if task != "sequence-classification":
        raise OnnxUnsupported(f"transformer task {task!r} is not supported by the ONNX cross-encoder backend")
    if int(model.num_labels) != 1:
        raise OnnxUnsupported(f"the ONNX backend scores one-label cross-encoders; this one has {model.num_labels}")
    activation = ACTIVATIONS.get(type(getattr(model, "activation_fn", None)).__name__)
    if activation is None:
        raise OnnxUnsupported(f"activation {type(model.activation_fn).__name__} is not supported by the ONNX backend")
    if getattr(model, "default_prompt_name", None):
        raise OnnxUnsupported("cross-encoders with a default prompt are not supported by the ONNX backend")
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "backend_tokenizer"):
        raise OnnxUnsupported("the ONNX backend needs a fast (Rust) tokenizer")
    return transformer, activation


def export_cross_encoder(model_name_or_path: str, folder: str | Path) -> Path:
    """Export a CrossEncoder's transformer and head to ``folder/model.onnx`` with its tokenizer and settings.

    Written to a temporary folder, checked against the torch model's logits, and renamed, so a half-written or
    wrong export is never used. Needs torch, sentence-transformers and `onnx`. Raises `OnnxUnsupported` for
    models the backend cannot run, or whose exported scores differ from torch's by more than `VERIFY_ATOL`.
    """
    import torch

    folder = Path(folder)
    model = load_torch_cross_encoder(model_name_or_path, device="cpu")
    transformer, activation = _check_cross_encoder(model)
    auto_model = prepare_for_export(transformer)
    tokenizer = transformer.tokenizer
    with_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    inputs = ["input_ids", "attention_mask", *(["token_type_ids"] if with_types else [])]

    class Logits(torch.nn.Module):
        """The sequence-classification logits: what sentence-transformers' CrossEncoder reads as scores."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits

    with staged_export(folder) as tmp:
        trace_to_onnx(Logits(auto_model), tmp, inputs, "logits", {0: "batch"})
        fused = finish_graph(tmp, auto_model.config, tokenizer, token_type_ids=with_types)
        meta = {
            "kind": "cross-encoder",
            "source": str(model_name_or_path),
            "activation": activation,
            "max_length": int(model.max_seq_length),
            "inputs": inputs,
            "export_version": EXPORT_VERSION,
            "opset": ONNX_OPSET,
            "fused": fused,
            "torch": torch.__version__,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        expected = model.predict(
            _VERIFY_PAIRS, batch_size=4, activation_fn=torch.nn.Identity(), convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        got = OnnxCrossEncoder(tmp, key="verify").logits(_VERIFY_PAIRS, batch_size=4)
        diff = float(np.max(np.abs(np.asarray(expected, dtype=np.float64) - got)))
        if not diff <= VERIFY_ATOL:
            raise OnnxUnsupported(f"the ONNX export's scores differ from torch's by {diff:.2e} (> {VERIFY_ATOL})")
        meta["verified_max_abs_diff"] = diff
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


# ------------------------------------------------------------------------------------------------------- scorer


class OnnxCrossEncoder(OnnxSession):
    """A CrossEncoder's scores under ONNX Runtime (see the module docstring).

    `logits(pairs)` gives one raw score per (query, passage) pair; `activate` the model's activation of them.
    `key`, `max_batch_tokens` and `threads` as for `hardneg.retrieval.onnx.OnnxSession`; `max_length` overrides the
    model's token limit. `query_prefix` / `passage_prefix` are prepended to every pair.
    """

    def __init__(self, folder: str | Path, *, max_length: int | None = None, **options: Any) -> None:
        super().__init__(folder, **options)
        if self.meta.get("kind") != "cross-encoder":
            raise OnnxUnsupported(f"{self.folder} is not a cross-encoder export")
        self.activation: str = self.meta["activation"]
        self.max_length: int = int(max_length or self.meta["max_length"])
        self.inputs: list[str] = list(self.meta["inputs"])
        self.query_prefix = ""
        self.passage_prefix = ""

    def activate(self, logits: np.ndarray) -> np.ndarray:
        return activate(logits, self.activation)

    def logits(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32) -> np.ndarray:
        """``(len(pairs),)`` float32 raw scores, in the order of `pairs`.

        Pairs are tokenized together (truncated longest-first to `max_length`, as transformers does), sorted by
        length and run in forward passes of at most `batch_size` rows and `max_batch_tokens` padded tokens.
        """
        out = np.empty(len(pairs), dtype=np.float32)
        if not len(pairs):
            return out
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        encodings = self.tokenizer.encode_batch(
            [(self.query_prefix + q, self.passage_prefix + p) for q, p in pairs], add_special_tokens=True
        )
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        for start in range(0, len(order), max(1, batch_size)):
            rows = order[start : start + batch_size]
            for run in self._passes([len(encodings[i].ids) for i in rows]):
                chosen = [rows[i] for i in run]
                out[chosen] = self._forward([encodings[i] for i in chosen])
        return out

    def _forward(self, encodings: list[Any]) -> np.ndarray:
        logits, _mask = self._run(encodings, self.inputs)
        return logits.reshape(len(encodings), -1)[:, 0]


def load_onnx_cross_encoder(
    model_name_or_path: str | os.PathLike[str],
    *,
    cache_dir: str | Path | None = None,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    threads: int | None = None,
    max_length: int | None = None,
) -> OnnxCrossEncoder:
    """A CrossEncoder folder under ONNX Runtime, exported on first use (in a child process).

    `cache_dir` is the export root (default ``hardneg.models.cache_dir()/onnx``). Raises `OnnxUnsupported` when
    the model cannot run here (or its export disagrees with torch), `ModelError` when the folder is no model.
    """
    if not onnx_runtime_installed():
        raise OnnxUnsupported("the ONNX backend needs onnxruntime: pip install 'hardneg[onnx]'")
    name = str(model_name_or_path)
    if not Path(name).is_dir():
        raise ModelError(f"no such cross-encoder folder: {name} (e.g. one from `hardneg train reranker`)")
    key = path_key(name)
    folder = cached_export(name, export_folder(key, cache_dir), _export_in_child)
    return OnnxCrossEncoder(
        folder, key=f"cross-encoder:{key}", max_batch_tokens=max_batch_tokens, threads=threads, max_length=max_length
    )


def _export_in_child(model_name_or_path: str, folder: Path) -> None:
    """Run `export_cross_encoder` in a child process, so torch's memory goes away with it."""
    run_export_child("hardneg.retrieval.onnx_cross", model_name_or_path, folder)


def main(argv: list[str] | None = None) -> int:
    """``python -m hardneg.retrieval.onnx_cross MODEL FOLDER``: the export child (exit 3: unsupported, 4: no model)."""
    return export_main(argv, "hardneg.retrieval.onnx_cross", export_cross_encoder)


if __name__ == "__main__":
    raise SystemExit(main())
