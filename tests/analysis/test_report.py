"""`hardneg report`: render the page in headless Chromium and check its numbers and that every image decodes."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hardneg.analysis.report import build_report
from hardneg.judging.base import JudgeOutput
from hardneg.judging.cost import PriceTable
from hardneg.judging.store import JudgmentStore

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


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "j.db"
    store = JudgmentStore(path)
    docids = [f"d{i}" for i in range(10)]
    for q in range(12):  # stage 1 flags 7 of 12 queries; stage 2 keeps 3 of those 7 and fails one
        better = docids[: q % 3] if q < 7 else []
        worse = [docids[9]] if q < 7 else []
        store.put(
            f"q{q}",
            1,
            "mini",
            {"model": "gpt-4o-mini"},
            JudgeOutput(docids, better=better, worse=worse, tokens_in=3800, tokens_out=950),
        )
    for q in range(7):
        out = JudgeOutput(docids, better=[docids[0]] if q < 3 else [], worse=[], tokens_in=4000, tokens_out=1100)
        if q == 6:
            out = JudgeOutput(docids, status="parse_error", reason="no <verdict> section")
        store.put(f"q{q}", 2, "big", {"model": "gpt-4o"}, out)
    store.close()
    return path


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
