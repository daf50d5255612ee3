"""The judging cascade: configuration (`config`), what stored judgments mean (`routing`), running it (`runner`)."""

from hardneg.judge.cascade.config import (
    CascadeConfig,
    StageConfig,
    as_config,
    default_config_path,
    load_config,
    load_default_config,
    parse_config,
)
from hardneg.judge.cascade.routing import call_key, derive_verdict, routed_on, view_key
from hardneg.judge.cascade.runner import CascadeReport, StageReport, run_cascade

__all__ = [
    "CascadeConfig",
    "CascadeReport",
    "StageConfig",
    "StageReport",
    "as_config",
    "call_key",
    "default_config_path",
    "derive_verdict",
    "load_config",
    "load_default_config",
    "parse_config",
    "routed_on",
    "run_cascade",
    "view_key",
]
