"""The page's plots: matplotlib figures (the `report` extra) drawn to base64 PNGs for inlining."""

from __future__ import annotations

import base64
import io
from typing import Any


def png(fig: Any) -> str:
    """A matplotlib figure as a base64 PNG (100 dpi, trimmed to its content)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 6.0, height: float = 3.2) -> tuple[Any, Any]:
    # the object API, not pyplot: no global state and no GUI backend needed
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def plot_funnel(funnel: list[dict[str, Any]]) -> str:
    """Instances judged and flagged per step of the cascade, as horizontal bars."""
    fig, ax = _figure()
    labels = [step["step"] for step in funnel]
    judged = [step["judged"] for step in funnel]
    flagged = [step["flagged"] for step in funnel]
    y = list(range(len(labels)))[::-1]
    ax.barh(y, judged, color="#9fbfe3", label="judged")
    ax.barh(y, flagged, color="#2f6db5", label="flagged (>= 1 negative)")
    for yy, j, f in zip(y, judged, flagged, strict=True):
        ax.text(j, yy, f" {f} / {j}", va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xlabel("instances")
    ax.set_xlim(0, max(judged or [1]) * 1.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8, frameon=False)
    ax.set_title("Cascade funnel")
    return png(fig)


def plot_subsets(subsets: list[dict[str, Any]]) -> str:
    """Flagged and <better> rates per subset, side by side."""
    fig, ax = _figure()
    names = [s["subset"] for s in subsets]
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [s["flagged_rate"] for s in subsets], width=0.4, color="#2f6db5", label="flagged")
    ax.bar([i + 0.2 for i in x], [s["better_rate"] for s in subsets], width=0.4, color="#e08a2c", label="<better>")
    ax.set_xticks(list(x), names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of judged instances")
    ax.legend(fontsize=8)
    ax.set_title("Flagged rate per subset")
    return png(fig)


def plot_histogram(histogram: dict[str, int]) -> str:
    """Flagged instances by how many negatives they flag."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure()
    keys = list(histogram)
    ax.bar(keys, [histogram[k] for k in keys], color="#2f6db5")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("flagged negatives per instance")
    ax.set_ylabel("instances")
    ax.set_title("Flags per flagged instance")
    return png(fig)


def plot_results(runs: dict[str, dict[str, float]], columns: list[str]) -> str:
    """The experiment's `columns` per run, as grouped bars (a missing value drawn as 0)."""
    fig, ax = _figure(max(6.0, 0.6 * len(columns) * max(1, len(runs)) / 2), 3.4)
    width = 0.8 / max(1, len(runs))
    for i, (run, values) in enumerate(runs.items()):
        xs = [c + i * width - 0.4 + width / 2 for c in range(len(columns))]
        ax.bar(xs, [values.get(col, 0.0) for col in columns], width=width, label=run)
    rotate = len(columns) > 3
    ax.set_xticks(list(range(len(columns))), columns, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.legend(fontsize=8)
    ax.set_title("Experiment results")
    return png(fig)
