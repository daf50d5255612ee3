"""`build_report`: the page of a store, rendered in headless Chromium (its numbers, every image decodes); the inputs
checked before anything is read; a judge-eval page with no store."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hardneg.analysis.report import build as build_module
from hardneg.analysis.report.build import build_report
from hardneg.errors import ConfigError
from hardneg.judging.cost import PriceTable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, page: Path, *args: str) -> str:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.mark.slow
def test_report_renders_numbers_and_images(tmp_path: Path, store_path: Path) -> None:
    results = tmp_path / "exp" / "results.json"
    results.parent.mkdir()
    results.write_text(
        json.dumps({"default": {"scifact": {"ndcg@10": 0.612}}, "rlhn": {"scifact": {"ndcg@10": 0.634}}})
    )
    page = tmp_path / "report.html"
    data = build_report(store_path, page, experiment=results.parent)
    assert [(s["step"], s["judged"], s["flagged"]) for s in data.funnel] == [
        ("stage 1", 12, 7),
        ("stage 2", 7, 3),
        ("final", 12, 3),
    ]
    assert data.funnel[-1]["failed"] == 1
    assert data.flags_histogram == {"1": 3}
    prices = PriceTable.default()
    assert data.stages[0]["cost_usd"] == pytest.approx(prices.get("gpt-4o-mini").cost(12 * 3800, 12 * 950))
    assert data.stages[1]["cost_usd"] == pytest.approx(prices.get("gpt-4o").cost(6 * 4000, 6 * 1100))
    assert data.stages[1]["cost_usd"] > data.stages[0]["cost_usd"] > 0

    html_text = page.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html_text)
    assert len(images) == 4  # funnel, subsets, histogram, results
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script src" not in html_text and "http" not in html_text.split("<body>")[1]  # self-contained

    dom = chromium(tmp_path, page, "--dump-dom")
    check = re.search(r'id="image-check" data-loaded="(\d+)" data-total="(\d+)"', dom)
    assert check is not None and check.group(1) == check.group(2) == "4", dom[-500:]
    funnel = re.search(r'<table id="funnel-table">(.*?)</table>', dom, re.S)
    assert funnel is not None
    cells = re.findall(r"<td>([^<]*)</td>", funnel.group(1))
    assert cells[:5] == ["stage 1", "12", "12", "0", "7"]
    assert cells[6:11] == ["stage 2", "7", "6", "1", "3"]
    assert "0.634" in dom and "stage:1 vs stage:2" in dom

    shot = tmp_path / "shot.png"
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1200,1800", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_without_experiment_or_prices_file(tmp_path: Path, store_path: Path) -> None:
    page = tmp_path / "r.html"
    data = build_report(store_path, page, tags="better")
    assert data.experiment is None and "Experiment results" not in page.read_text()
    assert data.funnel[-1]["flagged"] == 3
    assert data.agreements and data.agreements[0]["pairs"] == 6 * 10


def test_inputs_are_checked_before_the_store_is_read(tmp_path: Path, store_path: Path) -> None:
    page = tmp_path / "r.html"
    with pytest.raises(ConfigError) as raised:
        build_report(None, page)
    assert raised.value.param == "store_path"
    with pytest.raises(ConfigError, match="no such judgment store"):
        build_report(tmp_path / "missing.db", page)
    with pytest.raises(ConfigError, match="tags must be better or both, got 'worse'"):
        build_report(store_path, page, tags="worse")
    assert not page.exists()  # nothing written by a call that failed


class _JudgeEval:
    """Stands in for a `JudgeEvalReport`: its dict, and a figure for the plot."""

    def to_dict(self) -> dict:
        stage = {"stage": 1, "name": "emb", "config": "cos", "metrics": None, "roc_auc": 0.75, "pr_auc": 0.5}
        return {"testbed": {"dataset": "toy", "queries": 2}, "stages": [stage], "shared": None, "target": None}


def test_a_judge_eval_page_needs_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    monkeypatch.setattr(build_module, "precision_recall_figure", lambda report: Figure(figsize=(1, 1)))
    page = tmp_path / "eval.html"
    data = build_report(None, page, judge_eval=_JudgeEval(), title="eval <toy>")
    assert data.store == "" and data.judge_eval == _JudgeEval().to_dict() and data.judge_eval_plot
    assert data.funnel == [] and data.pairs == []
    html_text = page.read_text()
    assert "<h2>Judges against people</h2>" in html_text and "Cascade funnel" not in html_text
    assert "no judgment store" in html_text and "<title>eval &lt;toy&gt;</title>" in html_text
    assert re.findall(r'src="data:image/png;base64,([^"]+)"', html_text) == [data.judge_eval_plot]


def test_a_judge_eval_joins_a_store_page_first(
    tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    monkeypatch.setattr(build_module, "precision_recall_figure", lambda report: Figure(figsize=(1, 1)))
    page = tmp_path / "both.html"
    data = build_report(store_path, page, judge_eval=_JudgeEval())
    html_text = page.read_text()
    assert data.funnel[-1]["judged"] == 12 and data.judge_eval is not None
    assert html_text.index("Judges against people</h2>") < html_text.index("Cascade funnel</h2>")
    assert f"store {store_path}" in html_text
