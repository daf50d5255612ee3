"""An experiment's `results.json`, read loosely into one row of numbers per run.

`{run: {metric: value}}` or `{run: {dataset: {metric: value}}}` (optionally under a top-level `results` key); every
numeric leaf becomes a column named by its path (`dataset/metric`). Booleans are not numbers here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.errors import InputError


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}/{key}" if prefix else str(key), inner, out)


def read_results(path: str | Path) -> dict[str, dict[str, float]]:
    """`results.json` (or a folder holding it) -> {run: {column: value}} with every numeric leaf."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise InputError(path, None, "-", "no such file (expected an experiment folder with results.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, "-", f"broken JSON: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        data = data["results"]
    if not isinstance(data, dict):
        raise InputError(path, None, "-", "expected an object {run: {metric: value}}")
    runs: dict[str, dict[str, float]] = {}
    for run, value in data.items():
        flat: dict[str, float] = {}
        _flatten("", value, flat)
        if flat:
            runs[str(run)] = flat
    if not runs:
        raise InputError(path, None, "-", "no numeric results found")
    return runs
