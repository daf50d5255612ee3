"""The two-stage cascade written as command-line flags: `--stage1 BACKEND[:MODEL] [--stage2 ...] [--template T]`.

Flag names live in the CLI only; the library takes a `CascadeConfig` (or its mapping).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.errors import ConfigError
from hardneg.judging import defaults
from hardneg.judging.cascade.config import CascadeConfig, load_cascade, parse_config
from hardneg.judging.registry import BACKENDS, LISTWISE_BACKENDS, known_backends


def stage_from_flag(name: str, spec: str, template: str | None, default_template: str) -> dict[str, Any]:
    """A stage dict from a `BACKEND[:MODEL]` command-line flag (`--{name}`)."""
    backend, _, model = spec.partition(":")
    if backend not in BACKENDS:
        raise ConfigError(f"--{name} {spec}: unknown judge backend {backend!r}; known: {', '.join(known_backends())}")
    stage: dict[str, Any] = {"name": name, "backend": backend, "params": {}}
    if model:
        stage["params"]["model"] = model
    if backend in LISTWISE_BACKENDS:
        stage["params"]["template"] = template or default_template
        return stage
    found = defaults.thresholds(backend)
    if found is None:
        raise ConfigError(
            f"--{name} {spec}: a score backend needs thresholds (t_better, t_worse): write them in a --config file"
        )
    stage["t_better"], stage["t_worse"] = found
    return stage


def config_from_flags(stage1: str, stage2: str | None = None, template: str | None = None) -> CascadeConfig:
    """The common two-stage cascade from `--stage1 BACKEND:MODEL [--stage2 BACKEND:MODEL] [--template T]`.

    Listwise stages use the shipped `stage1` / `stage2` templates unless `template` is given; stage 2 re-judges
    every negative of the instances stage 1 flagged (the paper's rule).
    """
    stages = [stage_from_flag("stage1", stage1, template, "stage1")]
    if stage2:
        stages.append(stage_from_flag("stage2", stage2, template, "stage2"))
    return parse_config({"name": "flags", "stages": stages}, "command line")


def cascade_from_flags(
    config: Path | None, stage1: str | None, stage2: str | None, template: str | None, max_attempts: int | None
) -> CascadeConfig:
    """The cascade `hardneg judge` runs: `--config` (default: the shipped `default`), or `--stage1 [--stage2]`;
    `--max-attempts` over either."""
    if config is not None and (stage1 or stage2):
        raise ConfigError("give either --config or --stage1/--stage2, not both")
    if stage2 and not stage1:
        raise ConfigError("--stage2 needs --stage1")
    if stage1:
        cascade = config_from_flags(stage1, stage2, template)
    else:
        cascade = load_cascade(config if config is not None else "default")
    if max_attempts is not None:
        cascade = parse_config({**cascade.model_dump(), "max_attempts": max_attempts}, "--max-attempts")
    return cascade
