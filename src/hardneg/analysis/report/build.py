"""`build_report`: check the inputs, gather the numbers, render the page and write it atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hardneg.analysis.judge_eval import precision_recall_figure
from hardneg.analysis.report.collect import ReportData, collect
from hardneg.analysis.report.flags import TAGS
from hardneg.analysis.report.page import render
from hardneg.analysis.report.plots import png
from hardneg.data.atomic import atomic_path, check_target
from hardneg.data.source import as_source
from hardneg.errors import ConfigError
from hardneg.judging.store import JudgmentStore


def build_report(
    store_path: str | Path | None,
    out_path: str | Path,
    *,
    instances: str | Path | None = None,
    experiment: str | Path | None = None,
    extra_agreements: Sequence[tuple[str, str]] = (),
    title: str = "hardneg report",
    tags: str = "both",
    allow_partial: bool = False,
    grades: dict[tuple[str, str], float] | None = None,
    judge_eval: Any = None,
) -> ReportData:
    """Write the HTML page for a store (atomic) and return the numbers it shows; `judge_eval` (a
    `JudgeEvalReport`) adds its table, cuts and precision/recall plot, first. Without a store (`None`: a
    judge-eval of external judgments only) the page shows the judge-eval alone."""

    if store_path is None:
        if judge_eval is None:
            raise ConfigError("a page without a judgment store needs a judge_eval", param="store_path")
        check_target(out_path, folder=False, param="out_path")
        data = ReportData(store="")
    else:
        store_path = Path(store_path)
        if not store_path.exists():
            raise ConfigError(f"{store_path}: no such judgment store")
        check_target(out_path, folder=False, param="out_path")  # a page that cannot be written is known now
        if tags not in TAGS:
            raise ConfigError(f"tags must be better or both, got {tags!r}")
        if instances is not None:
            as_source(instances).validate()  # a bad or empty instances file stops here, before the page is built
        with JudgmentStore(store_path, readonly=True) as store:
            data = collect(
                store, instances=instances, experiment=experiment, extra_agreements=extra_agreements, tags=tags,
                allow_partial=allow_partial, grades=grades,
            )  # fmt: skip
    if judge_eval is not None:
        data.judge_eval = judge_eval.to_dict()
        data.judge_eval_plot = png(precision_recall_figure(judge_eval))
    page = render(data, title=title)
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return data
