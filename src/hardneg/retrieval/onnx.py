"""ONNX Runtime backend for dense encoding: embeddings without torch in the process.

Why: on a CPU, importing torch and sentence-transformers costs about 520 MiB before one text is encoded, and a
32 x 256-token forward pass in torch adds about 260 MiB more. Mining only needs embeddings. So `hardneg mine`
(backend ``auto``) runs the model's transformer exported to ONNX under ONNX Runtime, with `tokenizers` and numpy
doing the rest, and caps each forward pass at a token budget.

- `export_onnx(model, folder)`: loads the SentenceTransformer (torch) and writes ``model.onnx`` (the transformer,
  dynamic batch and length), the tokenizer exactly as sentence-transformers configured it (lower-casing included)
  and `hardneg_onnx.json` (pooling, max length, dimension). It runs once per model, in a child process
  (``python -m hardneg.retrieval.onnx``), so the encoding process never imports torch.
- `load_onnx_encoder(model)`: the cached export (made on first use) as an `OnnxEncoder`.
- `OnnxEncoder.encode(texts, batch_size=...)`: the subset of ``SentenceTransformer.encode`` that
  `hardneg.retrieval.embed` uses. Each batch is split into forward passes of at most `max_batch_tokens` padded
  tokens; embeddings agree with sentence-transformers' to about 2e-7 (tests/retrieval/test_onnx.py checks 1e-5).

Supported: a Transformer module, then Pooling (mean, cls, max or mean_sqrt_len_tokens), then optionally
Normalize. Any other stack (Dense layers, prompts in pooling, causal models) raises `OnnxUnsupported`; the
``auto`` backend then falls back to torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.errors import ConfigError
from hardneg.models import ModelError, minilm_path
from hardneg.models import cache_dir as default_cache_dir
from hardneg.progress import announce
from hardneg.retrieval.keys import key_slug, path_key
from hardneg.retrieval.torch_backend import load_sentence_transformer

META_FILE = "hardneg_onnx.json"
UNSUPPORTED_FILE = "unsupported.json"
# Bump when the export layout or the graph changes, so old exports are not reused.
EXPORT_VERSION = 3
ONNX_OPSET = 17
POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
# 4 texts at MiniLM's 256-token limit. ONNX Runtime's activations grow with rows x length (the attention matrix
# is rows x heads x length^2): mining SciFact peaked at 372 MiB with 1,024 tokens a pass and 495 MiB with 2,048
# (unfused graph), and on 2 cores the smaller passes are no slower per text (docs/benchmarks.md).
DEFAULT_MAX_BATCH_TOKENS = 1024


class OnnxUnsupported(ConfigError):
    """The model cannot be run by the ONNX backend (its module stack, or onnxruntime/onnx is missing)."""


def onnx_runtime_installed() -> bool:
    return find_spec("onnxruntime") is not None


def can_export() -> bool:
    """Exports need torch, sentence-transformers and the `onnx` package (the `onnx` extra)."""
    return all(find_spec(name) is not None for name in ("onnx", "torch", "sentence_transformers"))


def export_folder(key: str, cache_dir: str | Path | None = None) -> Path:
    """Where the export of the model with cache key `key` lives (``<cache>/onnx/<slug>-<hash>``)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "onnx"
    digest = hashlib.sha256(json.dumps({"model": key, "v": EXPORT_VERSION}).encode()).hexdigest()[:16]
    return root / f"{key_slug(key)}-{digest}"


# ------------------------------------------------------------------------------------------------------- export


def _pooling_mode(pooling: Any) -> str:
    mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers >= 6
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()
    return str(mode)


def _check_stack(model: Any) -> tuple[Any, str]:
    """The Transformer and the pooling mode of a supported SentenceTransformer; `OnnxUnsupported` otherwise."""
    modules = list(model._modules.values())
    names = [type(module).__name__ for module in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnsupported(
            f"the ONNX backend runs Transformer -> Pooling [-> Normalize] models; this one is {names}"
        )
    transformer, pooling = modules[0], modules[1]
    mode = _pooling_mode(pooling)
    if mode not in POOLING_MODES:
        raise OnnxUnsupported(
            f"pooling mode {mode!r} is not supported by the ONNX backend ({', '.join(POOLING_MODES)})"
        )
    if getattr(pooling, "include_prompt", True) is False:
        raise OnnxUnsupported("pooling that excludes the prompt is not supported by the ONNX backend")
    if getattr(transformer, "transformer_task", "feature-extraction") != "feature-extraction":
        raise OnnxUnsupported(f"transformer task {transformer.transformer_task!r} is not supported by the ONNX backend")
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "backend_tokenizer"):
        raise OnnxUnsupported("the ONNX backend needs a fast (Rust) tokenizer")
    return transformer, mode


def export_onnx(model_name_or_path: str, folder: str | Path) -> Path:
    """Export a SentenceTransformer's transformer to ``folder/model.onnx`` with its tokenizer and pooling config.

    Written to a temporary folder and renamed, so a half-written export is never used. Needs torch,
    sentence-transformers and `onnx`. Raises `OnnxUnsupported` for stacks the backend cannot run.
    """
    import torch

    folder = Path(folder)
    model = load_sentence_transformer(model_name_or_path, device="cpu")
    transformer, mode = _check_stack(model)
    auto_model = prepare_for_export(transformer)

    class LastHiddenState(torch.nn.Module):
        """The transformer's token embeddings: what sentence-transformers' Pooling reads."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    inputs = ["input_ids", "attention_mask"]
    with staged_export(folder) as tmp:
        trace_to_onnx(LastHiddenState(auto_model), tmp, inputs, "last_hidden_state", {0: "batch", 1: "tokens"})
        fused = finish_graph(tmp, auto_model.config, transformer.tokenizer)
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        meta = {
            "source": str(model_name_or_path),
            "pooling": mode,
            "normalize": len(model._modules) == 3,
            "max_seq_length": int(model.max_seq_length),
            "dimension": int(get_dim()),
            "export_version": EXPORT_VERSION,
            "opset": ONNX_OPSET,
            "fused": fused,
            "torch": torch.__version__,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


# ------------------------------------------------------------------------------------------------ export parts
# Shared by the bi-encoder export here and the cross-encoder one (hardneg.retrieval.onnx_cross).


def prepare_for_export(transformer: Any) -> Any:
    """The sentence-transformers Transformer module's model, in eval mode with eager attention.

    Eager attention exports as plain MatMul/Softmax nodes, which ONNX Runtime's optimizer can fuse
    (`fuse_transformer`); the SDPA path exports as a pattern it does not recognise. Same maths either way.
    """
    auto_model = transformer.auto_model
    auto_model.eval()
    if hasattr(auto_model, "set_attn_implementation"):
        auto_model.set_attn_implementation("eager")
    return auto_model


def trace_to_onnx(module: Any, folder: Path, inputs: Sequence[str], output: str, output_axes: dict[int, str]) -> None:
    """Export `module` (taking the int64 `inputs`, batch x tokens, both dynamic) to ``folder/model.onnx``.

    The TorchScript exporter: one self-contained file, no onnxscript needed.
    """
    import torch

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            module,
            tuple(sample for _ in inputs),
            str(folder / "model.onnx"),
            input_names=list(inputs),
            output_names=[output],
            dynamic_axes={**axes, output: output_axes},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def finish_graph(folder: Path, config: Any, tokenizer: Any, *, token_type_ids: bool = False) -> bool:
    """Fuse ``folder/model.onnx`` where it stays exact, move its weights out, save the fast tokenizer beside it.

    Returns whether the fused graph was kept (`fuse_transformer`).
    """
    fused = fuse_transformer(folder / "model.onnx", config, token_type_ids=token_type_ids)
    weights_to_external_file(folder / "model.onnx")
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    return fused


@contextlib.contextmanager
def staged_export(folder: Path) -> Iterator[Path]:
    """A fresh temporary folder beside `folder`, renamed onto it when the block succeeds and removed otherwise, so
    a half-written (or rejected) export is never used. When another process finished the same export first, its
    copy is kept (as good as this one)."""
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        try:
            tmp.rename(folder)
        except OSError:
            if not (folder / META_FILE).is_file():
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# model_type (transformers config) -> ONNX Runtime optimizer model type, for encoders whose graph it knows.
_FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert"}


def fuse_transformer(path: Path, config: Any, *, token_type_ids: bool = False) -> bool:
    """Fuse attention, GELU and layer norms with ONNX Runtime's transformer optimizer, in place.

    About a quarter faster on a CPU than the plain graph. Kept only when the fused graph gives the same outputs
    as the plain one on a sample batch (max abs difference 1e-4; token outputs compared on real tokens only);
    otherwise the plain graph stays. `token_type_ids`: the graph takes them as a third input (cross-encoders).
    """
    import onnxruntime
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = _FUSABLE.get(getattr(config, "model_type", ""))
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    if model_type is None or not heads or not hidden:
        return False
    fused_path = path.with_name("fused.onnx")
    try:
        optimized = optimize_model(str(path), model_type=model_type, num_heads=heads, hidden_size=hidden)
        if not optimized.get_fused_operator_statistics().get("Attention"):
            return False
        optimized.save_model_to_file(str(fused_path))
        rng = np.random.default_rng(0)
        ids = rng.integers(1000, min(getattr(config, "vocab_size", 2000), 30000), size=(3, 24), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1, 10:] = 0  # padding, so the masked path is compared too
        feeds = {"input_ids": ids, "attention_mask": mask}
        if token_type_ids:
            types = np.zeros_like(ids)
            types[:, 12:] = 1  # a second segment, as a (query, passage) pair has
            feeds["token_type_ids"] = types * mask
        plain = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        fused = onnxruntime.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        if plain.ndim == 3:
            valid = mask.astype(bool)
            plain, fused = plain[valid], fused[valid]
        if not np.allclose(plain, fused, atol=1e-4):
            return False
        fused_path.replace(path)
        return True
    finally:
        fused_path.unlink(missing_ok=True)


def weights_to_external_file(path: Path) -> None:
    """Move the weights out of the protobuf into ``model.onnx.data``: ONNX Runtime then maps them from disk
    instead of parsing a second in-memory copy (about 80 MiB less for MiniLM)."""
    import onnx

    graph = onnx.load(str(path))
    onnx.save_model(
        graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
        location="model.onnx.data", size_threshold=1024,
    )  # fmt: skip


def _export_in_child(model_name_or_path: str, folder: Path) -> None:
    """Run `export_onnx` in a child process, so torch's memory goes away with it."""
    run_export_child("hardneg.retrieval.onnx", model_name_or_path, folder)


def run_export_child(module: str, model_name_or_path: str, folder: Path) -> None:
    """Run ``python -m MODULE MODEL FOLDER`` (an export whose `main` follows this module's exit codes).

    Exit 3 (unsupported) is remembered in ``FOLDER/unsupported.json`` and raised as `OnnxUnsupported`; exit 4 is
    a `ModelError`; any other failure a `ConfigError` with the child's last lines.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A first run on a new machine: tens of seconds (minutes on a busy one) that would otherwise look like a hang.
    announce(f"exporting {Path(model_name_or_path).name} to ONNX once for this machine (cached in {folder.parent})")
    cmd = [sys.executable, "-m", module, model_name_or_path, str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    errors = proc.stderr.strip().splitlines()
    if proc.returncode == _UNSUPPORTED_EXIT:
        reason = errors[-1] if errors else "unsupported model"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / UNSUPPORTED_FILE).write_text(json.dumps({"reason": reason}) + "\n")
        raise OnnxUnsupported(reason)
    if proc.returncode == _MODEL_ERROR_EXIT:
        raise ModelError(errors[-1] if errors else f"cannot load {model_name_or_path!r}")
    if proc.returncode != 0:
        tail = "\n".join(errors[-15:])
        raise ConfigError(f"ONNX export of {model_name_or_path!r} failed (exit {proc.returncode}):\n{tail}")


_UNSUPPORTED_EXIT = 3
_MODEL_ERROR_EXIT = 4


# ------------------------------------------------------------------------------------------------------- encoder


class OnnxSession:
    """What both ONNX models share: an export folder's metadata, its fast tokenizer (no padding) and an ONNX
    Runtime session on the CPU. `max_batch_tokens` caps rows x padded length per forward pass (peak memory);
    `threads` sets ONNX Runtime's intra-op threads (default: all cores). `key` is the model's cache key."""

    backend = "onnx"

    def __init__(
        self,
        folder: str | Path,
        *,
        key: str,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        threads: int | None = None,
    ) -> None:
        if not onnx_runtime_installed():
            raise OnnxUnsupported("the ONNX backend needs onnxruntime: pip install 'hardneg[onnx]'")
        import onnxruntime
        from tokenizers import Tokenizer

        if max_batch_tokens < 1:
            raise ConfigError(f"max_batch_tokens must be positive; got {max_batch_tokens}")
        self.folder = Path(folder)
        self.meta: dict[str, Any] = json.loads((self.folder / META_FILE).read_text())
        self.max_batch_tokens = max_batch_tokens
        self._hardneg_key = f"{key}|onnx"
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def _passes(self, lengths: Sequence[int]) -> list[list[int]]:
        return token_passes(lengths, self.max_batch_tokens)

    def _run(self, encodings: Sequence[Any], inputs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass over `encodings`, right-padded to the longest: the graph's first output and the mask.

        `inputs` are the graph's input names (``input_ids``, ``attention_mask`` and maybe ``token_type_ids``)."""
        width = max(len(e.ids) for e in encodings)
        feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in inputs}
        feeds.setdefault("attention_mask", np.zeros((len(encodings), width), dtype=np.int64))
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            feeds["input_ids"][row, :size] = encoding.ids
            feeds["attention_mask"][row, :size] = 1
            if "token_type_ids" in feeds:
                feeds["token_type_ids"][row, :size] = encoding.type_ids
        (output,) = self.session.run(None, {name: feeds[name] for name in inputs})
        return output, feeds["attention_mask"]


class OnnxEncoder(OnnxSession):
    """A SentenceTransformer's encoder under ONNX Runtime (see the module docstring).

    Offers what `hardneg.retrieval.embed.encode_texts` uses: `encode`, `max_seq_length`, `get_embedding_dimension` and a
    cache key. `key`, `max_batch_tokens` and `threads` as for `OnnxSession`.
    """

    def __init__(self, folder: str | Path, **options: Any) -> None:
        super().__init__(folder, **options)
        self.pooling: str = self.meta["pooling"]
        self.normalize: bool = bool(self.meta["normalize"])
        self.dimension: int = int(self.meta["dimension"])
        self.max_seq_length: int = int(self.meta["max_seq_length"])

    def get_embedding_dimension(self) -> int:
        return self.dimension

    get_sentence_embedding_dimension = get_embedding_dimension

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = False,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings, in the order of `texts`."""
        del convert_to_numpy, show_progress_bar  # always numpy; progress is the caller's
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        self.tokenizer.enable_truncation(self.max_seq_length)
        for start in range(0, len(texts), max(1, batch_size)):
            encodings = self.tokenizer.encode_batch(list(texts[start : start + batch_size]))
            lengths = [len(e.ids) for e in encodings]
            for rows in self._passes(lengths):
                out[start + rows[0] : start + rows[-1] + 1] = self._forward([encodings[i] for i in rows])
        if normalize_embeddings or self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)  # torch.nn.functional.normalize's eps
        return out

    def _forward(self, encodings: list[Any]) -> np.ndarray:
        hidden, mask = self._run(encodings, ("input_ids", "attention_mask"))
        return pool(hidden, mask, self.pooling)


def token_passes(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Consecutive runs of rows whose count x longest length stays within the token budget."""
    passes: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for row, length in enumerate(lengths):
        wider = max(longest, length)
        if current and wider * (len(current) + 1) > max_batch_tokens:
            passes.append(current)
            current, wider = [], length
        current.append(row)
        longest = wider
    if current:
        passes.append(current)
    return passes


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling on ``(batch, tokens, dim)`` token embeddings and the attention mask."""
    weights = mask[..., None].astype(np.float32)
    if mode == "cls":
        return hidden[:, 0].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, hidden, -1e9).max(axis=1).astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    if mode == "mean":
        return (summed / counts).astype(np.float32)
    if mode == "mean_sqrt_len_tokens":
        return (summed / np.sqrt(counts)).astype(np.float32)
    raise OnnxUnsupported(f"pooling mode {mode!r} is not supported by the ONNX backend")


def load_onnx_encoder(
    model_name_or_path: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | Path | None = None,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    threads: int | None = None,
) -> OnnxEncoder:
    """The model (default: the embedded MiniLM) under ONNX Runtime, exported on first use (in a child process).

    `cache_dir` is the export root (default ``hardneg.models.cache_dir()/onnx``). Raises `OnnxUnsupported`
    when the model's stack cannot run here or onnxruntime is missing.
    """
    if not onnx_runtime_installed():
        raise OnnxUnsupported("the ONNX backend needs onnxruntime: pip install 'hardneg[onnx]'")
    name = str(model_name_or_path) if model_name_or_path else minilm_path()
    key = path_key(name)
    folder = cached_export(name, export_folder(key, cache_dir), _export_in_child)
    return OnnxEncoder(folder, key=key, max_batch_tokens=max_batch_tokens, threads=threads)


def cached_export(name: str, folder: Path, export_child: Callable[[str, Path], None]) -> Path:
    """`folder`, holding the export of model `name`: made now by `export_child(name, folder)` (a child process)
    when missing. A model found unsupported before raises its `OnnxUnsupported` again without a new child."""
    if (folder / UNSUPPORTED_FILE).is_file():
        raise OnnxUnsupported(json.loads((folder / UNSUPPORTED_FILE).read_text())["reason"])
    if not (folder / META_FILE).is_file():
        if not can_export():
            raise OnnxUnsupported("exporting a model to ONNX needs torch, sentence-transformers and onnx")
        export_child(name, folder)
    return folder


def export_main(argv: list[str] | None, module: str, export: Callable[[str, str], Any]) -> int:
    """``python -m MODULE MODEL FOLDER``: run `export` as an export child (exit 3: unsupported, 4: no model), the
    codes `run_export_child` reads."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(f"usage: python -m {module} MODEL FOLDER", file=sys.stderr)
        return 2
    try:
        export(args[0], args[1])
    except OnnxUnsupported as exc:
        print(str(exc), file=sys.stderr)
        return _UNSUPPORTED_EXIT
    except ModelError as exc:
        print(str(exc), file=sys.stderr)
        return _MODEL_ERROR_EXIT
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hardneg.retrieval.onnx MODEL FOLDER``: the export child (exit 3: unsupported, 4: model not found)."""
    return export_main(argv, "hardneg.retrieval.onnx", export_onnx)


if __name__ == "__main__":
    raise SystemExit(main())
