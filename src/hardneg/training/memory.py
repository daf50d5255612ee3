"""Will one training step fit in memory? An estimate, checked before the first step.

Why a step at the old defaults took 20 GB: without gradient caching, one backward pass holds the activations of
every text of the batch (32 groups x (query + positive + 7 negatives) = 288 texts at up to 256 tokens), and in
training mode on a CPU the attention probabilities (batch x heads x L x L, with their dropout masks) are
materialised for the backward pass. For all-MiniLM-L6-v2 that is about 118 MB per 256-token text (measured:
fp32, dropout on, SDPA or eager attention alike, since PyTorch's fused CPU attention does not take dropout).
Gradient caching (sentence-transformers' CachedMultipleNegativesRankingLoss) embeds the batch without gradients
first, then back-propagates `mini_batch_size` texts at a time: the activations held at once no longer grow with
the batch.

The estimate, per layer and token, counts `8 x hidden + 4 x intermediate` floats of hidden-state activations plus,
where attention is materialised, `3.25 x heads x L` floats of attention scores, probabilities and dropout masks
(fitted to measured peaks of MiniLM; 4 bytes per float in fp32, 2 under bf16/fp16), times the layers and the
tokens of the texts back-propagated at once, every text counted at `max_length` (an upper bound: batches are
padded to their longest text). Gradients and AdamW states add 12 bytes per trainable parameter. It is compared
with the memory available now (`MemAvailable`, or the cgroup limit when that is lower; free GPU memory on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError

GIB = 1024**3
# Tokenised batches, the cached embeddings, allocator slack: a fixed allowance on top of the estimate.
OVERHEAD_BYTES = 256 * 1024**2
HIDDEN_FLOATS = 8  # per hidden unit, per token and layer
INTERMEDIATE_FLOATS = 4  # per feed-forward unit
ATTENTION_FLOATS = 3.25  # per head and attended position, when the attention matrix is materialised


@dataclass
class StepMemory:
    """An estimate of the memory one training step adds to the process (bytes)."""

    texts: int  # texts back-propagated at once (a mini-batch, or the whole batch without caching)
    tokens_per_text: int
    per_text: int  # activation bytes of one text
    parameters: int  # gradients + optimizer states
    overhead: int = OVERHEAD_BYTES

    @property
    def activations(self) -> int:
        return self.texts * self.per_text

    @property
    def total(self) -> int:
        return self.activations + self.parameters + self.overhead

    def texts_that_fit(self, available: int) -> int:
        """How many texts could be back-propagated at once within `available` bytes."""
        room = available - self.parameters - self.overhead
        return max(0, room // self.per_text) if self.per_text > 0 else self.texts


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GB"


def _shape(model_config: Any) -> tuple[int, int, int, int] | None:
    """(layers, hidden, intermediate, heads) of a transformers config, None when it does not say."""
    layers = getattr(model_config, "num_hidden_layers", None)
    hidden = getattr(model_config, "hidden_size", None)
    heads = getattr(model_config, "num_attention_heads", None)
    intermediate = getattr(model_config, "intermediate_size", None) or (4 * hidden if hidden else None)
    if not all(isinstance(v, int) and v > 0 for v in (layers, hidden, intermediate, heads)):
        return None
    return layers, hidden, intermediate, heads  # type: ignore[return-value]


def attention_materialised(model_config: Any, *, on_gpu: bool) -> bool:
    """Does the backward pass keep each layer's heads x L x L attention matrix?

    Eager attention always does; SDPA does not on a GPU, nor on a CPU when attention dropout is off (PyTorch's
    fused CPU kernel takes no dropout, so training with dropout falls back to the materialising path)."""
    implementation = getattr(model_config, "_attn_implementation", None) or "eager"
    if implementation == "eager":
        return True
    dropout = float(getattr(model_config, "attention_probs_dropout_prob", 0.0) or 0.0)
    return not on_gpu and dropout > 0


def step_memory(
    model_config: Any,
    *,
    texts: int,
    tokens_per_text: int,
    trainable_parameters: int,
    half_precision: bool,
    on_gpu: bool,
) -> StepMemory | None:
    """The estimate for back-propagating `texts` texts of `tokens_per_text` tokens at once (None: unknown model)."""
    shape = _shape(model_config)
    if shape is None:
        return None
    layers, hidden, intermediate, heads = shape
    floats: float = HIDDEN_FLOATS * hidden + INTERMEDIATE_FLOATS * intermediate
    if attention_materialised(model_config, on_gpu=on_gpu):
        floats += ATTENTION_FLOATS * heads * tokens_per_text
    per_float = 2 if half_precision else 4
    per_text = int(layers * tokens_per_text * floats * per_float)
    return StepMemory(texts, tokens_per_text, per_text, 12 * trainable_parameters)


def _cgroup_room() -> int | None:
    """Memory left under this process's cgroup (v2) limit, None without one."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((base / "memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory(*, on_gpu: bool = False) -> int | None:
    """Bytes a training step can still use: free GPU memory, else MemAvailable (or the cgroup's room when lower).

    None when it cannot be told (the check is then skipped)."""
    if on_gpu:
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    found: int | None = None
    try:
        import psutil

        found = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def refuse(estimate: StepMemory, available: int, *, param: str, what: str, fix: str) -> ConfigError:
    """The error for a step that will not fit: what it needs, what is there, and the change that fits."""
    return ConfigError(
        f"{what}: about {gib(estimate.total)} of memory per step (an estimate: {estimate.texts} texts of up to "
        f"{estimate.tokens_per_text} tokens back-propagated at once), but {gib(available)} is available; {fix}",
        param=param,
    )
