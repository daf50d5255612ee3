"""The plots: each is a base64 PNG that decodes, drawn the same way every time."""

from __future__ import annotations

import base64

import pytest

from hardneg.analysis.report.plots import plot_funnel, plot_histogram, plot_results, plot_subsets, png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _size(b64: str) -> tuple[int, int]:
    raw = base64.b64decode(b64)
    assert raw[:8] == PNG_MAGIC
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")  # the IHDR width and height


FUNNEL = [
    {"step": "stage 1", "judged": 12, "flagged": 7},
    {"step": "stage 2", "judged": 7, "flagged": 3},
    {"step": "final", "judged": 12, "flagged": 3},
]
SUBSETS = [{"subset": s, "flagged_rate": 0.5, "better_rate": 0.25} for s in ("a", "b")]


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plot_funnel(FUNNEL),
        lambda: plot_funnel([]),
        lambda: plot_subsets(SUBSETS),
        lambda: plot_histogram({"1": 3, ">8": 1}),
        lambda: plot_results({"a": {"x": 0.5, "y": 0.2}, "b": {"x": 0.6}}, ["x", "y"]),
    ],
)
def test_every_plot_is_a_png(draw) -> None:
    first = draw()
    width, height = _size(first)
    assert width > 100 and height > 100
    assert draw() == first  # the same page for the same numbers


def test_results_plot_grows_with_its_columns() -> None:
    runs = {f"run{i}": {f"c{j}": 0.1 * j for j in range(12)} for i in range(3)}
    narrow = _size(plot_results(runs, ["c1", "c2"]))[0]
    wide = _size(plot_results(runs, [f"c{j}" for j in range(12)]))[0]
    assert wide > narrow


def test_png_of_a_figure() -> None:
    from matplotlib.figure import Figure

    assert _size(png(Figure(figsize=(2, 1)))) == (220, 120)  # 100 dpi; "tight" adds a 0.1 inch pad each side
