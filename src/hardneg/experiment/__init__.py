"""Experiments: mine -> judge -> variants -> train -> evaluate from one config, cached and resumable.

- `load_config(path)` -> `ExperimentConfig` (errors name the file, line and field);
- `run_experiment(config, dry_run=False, progress=None)` -> `ExperimentResult` (results.json/md/csv, plots);
- `run_prune(config, dry_run=False, progress=None)` -> `PruneResult` (leave-one-subset-out table).
"""

from __future__ import annotations

from hardneg.experiment.config import ExperimentConfig, load_config
from hardneg.experiment.prune import PruneResult, run_prune
from hardneg.experiment.runner import ExperimentResult, plan_experiment, run_experiment

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "PruneResult",
    "load_config",
    "plan_experiment",
    "run_experiment",
    "run_prune",
]
