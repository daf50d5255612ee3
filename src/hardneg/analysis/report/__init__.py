"""`hardneg report`: one self-contained HTML page about a judgment store (and optionally an experiment).

The page needs no server: CSS is inline and plots are base64 PNGs drawn with matplotlib (the `report` extra).
Sections: the cascade funnel per stage, flagged rate per subset (subsets come from an instances file, when
given), flags per instance, tokens and cost per stage (cost where `hardneg.judging.cost` has a price for the
model), agreement between stages (and with any extra label sources), pairs to read, and experiment results
(`results.json`, read loosely: see `results`). A judge-eval page leads with "Judges against people".

Modules: `collect` (the numbers, `ReportData`), `pairs` (the pairs to read), `results` (`results.json`), `flags`
(what a verdict flags), `plots` (figures), `markup`, `sections`, `judges` and `page` (the HTML), `template` (the
page skeleton), `build` (`build_report`: check, collect, render, write).
"""

from __future__ import annotations

from hardneg.analysis.report.build import build_report
from hardneg.analysis.report.collect import ReportData, collect
from hardneg.analysis.report.page import render
from hardneg.analysis.report.pairs import collect_pairs
from hardneg.analysis.report.results import read_results

__all__ = ["ReportData", "build_report", "collect", "collect_pairs", "read_results", "render"]
