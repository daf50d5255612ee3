"""`clean`: the whole job in one call, judge with the default local cascade, then relabel.

The default cascade ships as `hardneg/judge/configs/default.yaml` (MiniLM embedding on every negative, the
likeliest half passed to a Qwen2.5-Coder-1.5B pointwise judge fused with the embedding score). Verdicts go
to a judgment store (SQLite) as they arrive, so an interrupted `clean` resumes where it stopped, and a `clean`
with edited thresholds or routing on the same store makes no call it already made; the cleaned file is written
atomically at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hardneg.judge.cascade import CascadeConfig, CascadeReport, Progress, load_config, run_cascade
from hardneg.judge.store import JudgmentStore
from hardneg.relabel import RelabelOptions, RelabelReport, relabel_file


def default_config_path() -> Path:
    """The shipped default cascade YAML."""
    return Path(str(resources.files("hardneg.judge") / "configs" / "default.yaml"))


def load_default_config() -> CascadeConfig:
    return load_config(default_config_path())


def default_store_path(out_path: str | Path) -> Path:
    """Where `clean` keeps its judgments when no store is named: beside the output."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".judgments.sqlite")


@dataclass(slots=True)
class CleanReport:
    in_path: str
    out_path: str
    store: str
    config: str
    cascade: CascadeReport
    relabel: RelabelReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "in": self.in_path,
            "out": self.out_path,
            "store": self.store,
            "config": self.config,
            "judging": self.cascade.to_dict(),
            "relabel": self.relabel.to_dict(),
        }


def clean(
    in_path: str | Path,
    out_path: str | Path,
    *,
    store_path: str | Path | None = None,
    config: CascadeConfig | None = None,
    options: RelabelOptions | None = None,
    progress: Progress | None = None,
    relabel_progress: Callable[[int], None] | None = None,
) -> CleanReport:
    """Judge `in_path` with the cascade (default: the shipped local one), then relabel into `out_path`.

    The relabel treatment defaults to `rlhn` (flagged negatives become positives). Instances whose last
    stage failed are never treated as clean (see `RelabelOptions.on_failed`).
    """
    config = config or load_default_config()
    options = options or RelabelOptions(treatment="rlhn")
    store_path = Path(store_path) if store_path is not None else default_store_path(out_path)
    with JudgmentStore(store_path) as store:
        cascade = run_cascade(in_path, config, store, progress=progress)
        verdicts = store.final_verdicts(cascade.stage_hashes)
    relabel = relabel_file(in_path, out_path, verdicts, options, progress=relabel_progress)
    return CleanReport(str(in_path), str(out_path), str(store_path), config.name, cascade, relabel)
