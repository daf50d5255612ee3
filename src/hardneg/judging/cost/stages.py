"""What the estimate needs to know about each stage of a cascade, read from its configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError
from hardneg.judging.cost.files import read_text

API_KINDS = {"openai", "openai-batch", "openai-pointwise", "openai-answer"}
# Paid judges that send one request per (query, negative) rather than one per chunk of negatives.
PER_PAIR_KINDS = {"openai-pointwise": 1, "openai-answer": 40}  # kind -> assumed output tokens per call


@dataclass(slots=True)
class StageSpec:
    """What the estimate needs to know about one cascade stage."""

    name: str
    model: str
    template: str = "stage1"
    max_tokens: int = 2048
    max_negatives_per_call: int = 25
    batch: bool = False
    output_tokens: int | None = None  # assumed output per call; default by template
    routing_rate: float | None = None  # share of the previous stage's instances that reach this one
    api: bool = True  # a local judge (embedding, llama.cpp) costs nothing here
    permutations: int = 1  # listwise calls per chunk (seeded orders voted on: position bias)
    kind: str = ""  # the backend; per-pair judges are estimated per negative


def stage_specs_from_config(config: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[StageSpec]:
    """Stage specs from a cascade configuration: a mapping with a `stages` list (or the list itself), each
    stage a mapping with a judge kind (`judge` / `kind` / `backend`) and its parameters (in `params` or at
    the stage's top level)."""
    stages = config.get("stages") if isinstance(config, Mapping) else config
    if not isinstance(stages, Sequence) or isinstance(stages, str | bytes) or not stages:
        raise ConfigError("cascade config: expected a non-empty 'stages' list")
    specs = []
    for i, stage in enumerate(stages, start=1):
        if not isinstance(stage, Mapping):
            raise ConfigError(f"cascade config: stage {i} is not a mapping")
        params = dict(stage.get("params") or {})
        for key, value in stage.items():
            if key not in ("params",):
                params.setdefault(key, value)
        kind = str(params.get("judge", params.get("kind", params.get("backend", ""))))
        model = str(params.get("model", kind or "?"))
        specs.append(
            StageSpec(
                name=str(params.get("name", f"stage{i}")),
                model=model,
                template=str(params.get("template", "stage1" if i == 1 else "stage2")),
                max_tokens=int(params.get("max_tokens", 2048)),
                max_negatives_per_call=int(params.get("max_negatives_per_call", 25)),
                batch=kind == "openai-batch" or bool(params.get("batch", False)),
                output_tokens=params.get("output_tokens", PER_PAIR_KINDS.get(kind)),
                routing_rate=params.get("routing_rate"),
                api=kind in API_KINDS,
                permutations=int(params.get("permutations", 1)),
                kind=kind,
            )
        )
    return specs


def load_stage_specs(path: str | Path) -> list[StageSpec]:
    """Stage specs from a cascade YAML (or JSON) file."""
    import yaml

    path = Path(path)
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping | list):
        raise ConfigError(f"{path}: expected a mapping with a 'stages' list")
    try:
        return stage_specs_from_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
