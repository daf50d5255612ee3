"""The judging cascade: configuration (`config`), what stored judgments mean (`routing`), running it (`runner`)."""

from hardneg.judging.cascade.config import (
    CascadeConfig,
    StageConfig,
    as_config,
    config_description,
    default_config_path,
    load_cascade,
    load_default_config,
    parse_config,
    resolve_config,
    shipped_configs,
)
from hardneg.judging.cascade.routing import call_key, derive_verdict, routed_on, view_key
from hardneg.judging.cascade.runner import CascadeReport, StageReport, run_cascade

__all__ = [
    "CascadeConfig",
    "CascadeReport",
    "StageConfig",
    "StageReport",
    "as_config",
    "call_key",
    "config_description",
    "default_config_path",
    "derive_verdict",
    "load_cascade",
    "load_default_config",
    "parse_config",
    "resolve_config",
    "routed_on",
    "run_cascade",
    "shipped_configs",
    "view_key",
]
