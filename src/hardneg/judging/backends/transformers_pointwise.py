"""The in-process GPU judge: P(yes) or the expected grade from any Hugging Face causal LM (`backend: transformers`).

The same prompts and scores as the llama.cpp pointwise judges (`hardneg.judging.backends.llama_pointwise`): the
chat template splits into a shared prefix (instructions, query, reference) and one suffix per candidate
(candidate text, assistant header); the score is a softmax restricted to the answer tokens at the first answer
position. What differs is where it runs: torch, bf16 on CUDA (fp16 where the GPU has no bf16), fp32 on a CPU.
This is what a Ray GPU actor runs when there is no inference server (`num_gpus` on the stage).

Batching: the prefix is evaluated once per instance and its KV cache (`past_key_values`) is copied for a batch
of up to `max_batch` candidates, which are evaluated in one forward pass (right-padded: a candidate never
attends to the padding after it, so no mask is needed). Only the logits of each candidate's last position are
computed (`logits_to_keep`). With ``prefix_reuse=False`` every pair is a whole prompt (the bench's baseline).

`model`: a shipped GGUF judge by name (``qwen2.5-coder-0.5b``, `hardneg.models.gguf_path`) or a ``.gguf`` path,
which transformers loads dequantized (the ``gguf`` package, in the ``train`` extra); or a Hugging Face model id
or folder (``Qwen/Qwen2.5-7B-Instruct``), read from the local cache. The judgments' key holds the model's name,
the scale, `n_ctx`, `max_passage_chars` and the prompts, and the requested `dtype` (``auto`` unless set):
`device`, `max_batch`, `prefix_reuse` and `n_threads` do not change the answers beyond float rounding.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.backends.pointwise_scoring import (
    PromptParts,
    answer_token_ids,
    chat_split,
    checked_scale,
    judge_candidates,
    pointwise_config,
    score_from_logits,
    tokenized_parts,
)
from hardneg.judging.base import Judge
from hardneg.judging.prompts.pointwise import Scale
from hardneg.judging.verdicts import JudgeOutput
from hardneg.models import GGUF_MODELS, gguf_name, gguf_path
from hardneg.progress import announce

DTYPES = ("auto", "bfloat16", "float16", "float32")


def _is_gguf(model: str) -> bool:
    return model in GGUF_MODELS or model.endswith(".gguf")


class TransformersPointwiseJudge(Judge):
    """Scores each negative by a Hugging Face causal LM's P(yes) (`scale="yes_no"`) or expected 0-3 grade
    (`scale="graded"`, see `TransformersGradedJudge`), batched across candidates (see the module docstring)."""

    kind: ClassVar[str] = "transformers"
    default_scale: ClassVar[str] = "yes_no"

    def __init__(
        self,
        model: str = "qwen2.5-coder-1.5b",
        n_ctx: int = 2048,
        max_passage_chars: int = 1500,
        scale: Scale | None = None,
        dtype: str = "auto",
        device: str | None = None,
        max_batch: int = 16,
        prefix_reuse: bool = True,
        n_threads: int | None = None,
    ) -> None:
        scale = checked_scale(self.kind, scale or self.default_scale, n_ctx, max_passage_chars)
        if dtype not in DTYPES:
            raise ConfigError(f"{self.kind} judge: dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if max_batch < 1:
            raise ConfigError(f"{self.kind} judge: max_batch must be >= 1, not {max_batch}")
        self.model = model
        self.n_ctx = int(n_ctx)
        self.max_passage_chars = int(max_passage_chars)
        self.scale: Scale = scale
        self.dtype = dtype
        self.device = device
        self.max_batch = int(max_batch)
        self.prefix_reuse = bool(prefix_reuse)
        self.n_threads = n_threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._answer_ids: dict[int, list[int]] = {}  # answer class -> its single-token spellings
        self._split: tuple[str, str] | None = None  # (before the user content, after the candidate)
        self._lead: list[int] = []  # the tokens the tokenizer puts before a text (a BOS), if any
        self._keep_logits = False  # the model's forward takes `logits_to_keep` (a tensor of positions)
        self._cache_arg = "past_key_values"  # what the forward calls its KV cache (`cache` in transformers >= 5.2x)

    # ----- identity ----------------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        if _is_gguf(self.model):
            return gguf_name(self.model)
        return os.path.basename(self.model.rstrip("/")) if os.path.isdir(self.model) else self.model

    def config(self) -> dict[str, Any]:
        config = pointwise_config(self.kind, self.model_name, self.scale, self.n_ctx, self.max_passage_chars)
        config["scale"] = self.scale
        if self.dtype != "auto":
            config["dtype"] = self.dtype
        return config

    # ----- model -------------------------------------------------------------------------------------------

    def _resolved_device(self) -> str:
        import torch

        if self.device:
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def _torch_dtype(self, device: str) -> Any:
        import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32

    def _load(self) -> None:
        announce(f"loading the {self.kind} judge's model ({self.model})")
        import torch
        import transformers

        device = self._resolved_device()
        dtype = self._torch_dtype(device)
        if device == "cpu" and self.n_threads:
            torch.set_num_threads(int(self.n_threads))  # the CPUs Ray reserved for this actor
        if _is_gguf(self.model):
            path = Path(gguf_path(self.model))
            source, extra = str(path.parent), {"gguf_file": path.name}
        else:
            source, extra = self.model, {}
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_arg = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, **extra)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, **{dtype_arg: dtype}, **extra)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.kind} judge: cannot load model {self.model!r}: {exc}", param="model") from exc
        model.to(device)  # type: ignore[arg-type]  # transformers types .to() with a model, accepts a device name
        model.eval()
        self._model, self._tokenizer = model, tokenizer
        forward = inspect.signature(model.forward).parameters
        self._keep_logits = "logits_to_keep" in forward
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        self._lead = list(with_special[: with_special.index(plain[0])]) if plain and plain[0] in with_special else []
        self._answer_ids = answer_token_ids(
            self.kind, self.model, self.scale, lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
        )

    @property
    def llm(self) -> Any:
        """The loaded causal LM (loaded on first use)."""
        if self._model is None:
            self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._load()
        return self._tokenizer

    def _chat_split(self) -> tuple[str, str]:
        """(text before the user content's candidate, text after it) for this model's chat template."""
        if self._split is None:
            tokenizer = self.tokenizer

            def render(messages: list[dict[str, str]]) -> str | None:
                if not getattr(tokenizer, "chat_template", None):
                    return None  # the plain instruction layout the llama.cpp judge uses too
                return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

            self._split = chat_split(self.scale, render)
        return self._split

    def _tokenize(self, text: str, *, first: bool) -> list[int]:
        tokens = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if first and self._lead and tokens[: len(self._lead)] != self._lead:
            tokens = [*self._lead, *tokens]
        return tokens

    def prompt_parts(self, instance: Instance, docids: Sequence[str]) -> tuple[list[int], dict[str, list[int]]]:
        """Token ids of the shared prefix and of each candidate (candidate text + assistant header)."""
        parts = tokenized_parts(
            instance, docids, scale=self.scale, max_passage_chars=self.max_passage_chars, split=self._chat_split(),
            tokenize=self._tokenize,
        )  # fmt: skip
        return parts.prefix, parts.candidates

    # ----- scoring -----------------------------------------------------------------------------------------

    def _scores(self, logits: Any) -> list[float]:
        """Scores from the last-position logits of each row ([rows, vocab])."""
        rows = logits.double().cpu().numpy()
        return [score_from_logits(self.scale, row, self._answer_ids) for row in rows]

    def _forward_last(self, rows: list[list[int]], past: Any = None) -> Any:
        """Logits at each row's last token ([rows, vocab]): the rows right-padded into one batch, after `past`."""
        import torch

        model = self._model
        device = next(model.parameters()).device
        width = max(len(r) for r in rows)
        pad = self._tokenizer.pad_token_id
        pad = int(pad if pad is not None else rows[0][-1])  # never attended: padding only follows a row's tokens
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long, device=device)
        last = torch.tensor([len(r) - 1 for r in rows], dtype=torch.long, device=device)
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": past is not None}
        if past is not None:
            kwargs[self._cache_arg] = past
        positions = None
        if self._keep_logits:
            positions = torch.unique(last)  # sorted: only these positions' logits are computed
            kwargs["logits_to_keep"] = positions
        logits = model(**kwargs).logits
        if positions is not None:
            index = torch.searchsorted(positions, last)
            return logits[torch.arange(len(rows), device=device), index]
        return logits[torch.arange(len(rows), device=device), last]

    def score_pairs(
        self, prefix: list[int], candidates: dict[str, list[int]], *, prefix_reuse: bool | None = None
    ) -> tuple[dict[str, float], int]:
        """The score of each candidate and the number of tokens evaluated."""
        import torch

        reuse = self.prefix_reuse if prefix_reuse is None else prefix_reuse
        model = self.llm
        docids = list(candidates)
        scores: dict[str, float] = {}
        evaluated = 0
        with torch.inference_mode():
            base = None
            if reuse and docids:
                device = next(model.parameters()).device
                out = model(torch.tensor([prefix], dtype=torch.long, device=device), use_cache=True)
                base = out.cache if self._cache_arg == "cache" else out.past_key_values
                evaluated += len(prefix)
            for start in range(0, len(docids), self.max_batch):
                chunk = docids[start : start + self.max_batch]
                if base is not None:
                    past = copy.deepcopy(base)
                    if len(chunk) > 1:
                        past.batch_repeat_interleave(len(chunk))
                    logits = self._forward_last([candidates[d] for d in chunk], past)
                    evaluated += sum(len(candidates[d]) for d in chunk)
                else:
                    logits = self._forward_last([prefix + candidates[d] for d in chunk])
                    evaluated += sum(len(prefix) + len(candidates[d]) for d in chunk)
                for docid, score in zip(chunk, self._scores(logits), strict=True):
                    scores[docid] = score
        return scores, evaluated

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        return judge_candidates(
            instance, docids, n_ctx=self.n_ctx, prefix_reuse=self.prefix_reuse,
            prompt_parts=lambda i, d: PromptParts(*self.prompt_parts(i, d)),
            score_pairs=lambda parts: self.score_pairs(parts.prefix, parts.candidates),
        )  # fmt: skip

    def close(self) -> None:
        on_gpu = self._model is not None and self._resolved_device().startswith("cuda")
        self._model = self._tokenizer = None
        self._split = None
        if on_gpu:
            import torch

            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()


class TransformersGradedJudge(TransformersPointwiseJudge):
    """The expected grade (0-3, reference shown) from a Hugging Face causal LM's grade-token probabilities."""

    kind: ClassVar[str] = "transformers-graded"
    default_scale: ClassVar[str] = "graded"
