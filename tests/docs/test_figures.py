"""The figures the pages quote come from the commands beside them, and those commands reproduce them.

Each test runs a page's own block through the docs harness (the same run as tests/docs/test_blocks.py: a block
runs once per session) and compares its output with the figure read from the page text, so a test fails when the
page and the command disagree. Figures that take hours (training runs, LLM judges, GPU and API benches) are
stated on their pages as measured, where and how; their commands are checked by test_blocks.py.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from docs import harness


def _page(name: str) -> str:
    return (harness.ROOT / name if name == "README.md" else harness.DOCS / name).read_text(encoding="utf-8")


def _row(text: str, first_cell: str, *more: str, width: int | None = None) -> list[str]:
    """The cells of the one markdown table row whose first cell starts with `first_cell`, whose next cells are
    `more`, and (if given) which has `width` cells; bold marks dropped."""
    rows = [
        [cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    found = [
        cells for cells in rows
        if cells[0].startswith(first_cell) and cells[1 : 1 + len(more)] == list(more)
        and (width is None or len(cells) == width)
    ]  # fmt: skip
    assert len(found) == 1, f"{len(found)} table rows start with {(first_cell, *more)!r}"
    return found[0]


def _number(text: str) -> float:
    return float(text.replace(",", "").strip())


def _same(quoted: str, measured: float | None, where: str) -> None:
    """`quoted` (as the page writes it, e.g. "0.743", "—") is `measured` rounded to the page's decimals."""
    if quoted in ("—", "-"):
        assert measured is None, f"{where}: the page says {quoted}, the command gives {measured}"
        return
    assert measured is not None, f"{where}: the page says {quoted}, the command gives nothing"
    decimals = len(quoted.split(".", 1)[1]) if "." in quoted else 0
    assert math.isclose(round(measured, decimals), _number(quoted), abs_tol=10**-decimals / 2), (
        f"{where}: the page says {quoted}, the command gives {measured:.{decimals + 2}f}"
    )


def _search(pattern: str, text: str, where: str) -> re.Match[str]:
    found = re.search(pattern, text, flags=re.S)
    assert found, f"{where}: the page no longer says {pattern!r}"
    return found


def _run(page: str, contains: str) -> harness.Ran:
    """The page's block (the one containing `contains`) run by the harness; skipped when the page marks it check
    (its figures are then stated as measured, not rerun)."""
    block = harness.find_block(page, contains)
    if block.marker.kind != "run":
        pytest.skip(f"{block.where} is marked `{block.marker_text}`: its figures are not rerun by the suite")
    return harness.runner().run(block)


def _json(ran: harness.Ran, name: str) -> Any:
    return json.loads((ran.workdir / name).read_text(encoding="utf-8"))


# -- the shipped sample: counts ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_sample_counts_on_the_data_page_are_the_samples() -> None:
    ran = _run("data.md", "sample_false_negatives")
    first, second = ran.stdout.strip().splitlines()
    got = re.match(r"(\d+) instances, \['(\w+)', '(\w+)'\] (\d+) negatives, (\d+) false", first)
    beir = re.match(r"(\d+) docs, (\d+) \+ (\d+) queries", second)
    assert got and beir, ran.stdout
    page = _page("data.md")
    quoted = _search(
        r"sample_train_path\(\)` \((\d+)\s+instances, subsets `(\w+)` and `(\w+)`, (\d+) negatives, (\d+) of them",
        page, "data.md",
    )  # fmt: skip
    assert quoted.groups() == got.groups()
    quoted_beir = _search(r"sample_beir_dir\(\)` \((\d+) docs, (\d+) train \+ (\d+) test queries\)", page, "data.md")
    assert quoted_beir.groups() == beir.groups()
    # the Ray bench quotes the same sample (its own command is hours of LLM: bench/scale.py)
    bench = _search(
        r"on the shipped sample \((\d+) instances, (\d+) negatives\)", _page("benchmarks.md"), "benchmarks.md"
    )
    assert bench.groups() == (got[1], got[4])
    per_instance = _search(r"Negatives per instance are the sample's: ([\d.]+)", _page("benchmarks.md"), "benchmarks")
    _same(per_instance[1], int(got[4]) / int(got[1]), "benchmarks.md: negatives per instance")


# -- BM25 on SciFact ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.shared
def test_the_bm25_scifact_figure_is_what_evaluate_gives() -> None:
    ran = _run("evaluate.md", "--bm25 ../shared/data/scifact")
    quoted = _search(r"BM25 on SciFact test ([\d.]+) nDCG@10", _page("evaluate.md"), "evaluate.md")[1]
    _same(quoted, json.loads(ran.stdout)["ndcg@10"], "evaluate.md: BM25 on SciFact test")


# -- the default judge against people (NovelEval) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def noveleval() -> dict[str, Any]:
    """The `--json` of judges.md's judge-eval commands: precision-first, recall-first, precision>=0.6."""
    ran = _run("judges.md", "judge-eval testbeds/noveleval-10 --config default")
    return {name: _json(ran, f"{name}.json") for name in ("precision-first", "recall-first", "precision-0.6")}


def _cut(report: dict[str, Any]) -> dict[str, Any]:
    (stage,) = [s for s in report["stages"] if s["stage"] != "final"]
    return stage["cut"]


@pytest.mark.slow
@pytest.mark.shared
def test_the_testbed_and_split_sizes_on_the_judges_page(noveleval: dict[str, Any]) -> None:
    page = _page("judges.md")
    card = noveleval["precision-first"]["testbed"]
    made = _search(r"That makes (\d+) negatives, (\d+) of them false \(base rate ([\d.]+)", page, "judges.md")
    assert (int(made[1]), int(made[2])) == (card["negatives"], card["false_negatives"])
    _same(made[3], card["base_rate"], "judges.md: base rate")
    cut = _cut(noveleval["precision-first"])
    tune = _search(r"tuning half \((\d+) questions,\s+(\d+) negatives\)", page, "judges.md")
    assert int(tune[1]) == cut["tune"]["queries"] and int(tune[2]) == card["negatives"] - cut["held_out"]["pairs"]
    held = _search(r"held-out half\*\* \((\d+) questions, (\d+) negatives, (\d+) false\s", page, "judges.md")
    assert tuple(map(int, held.groups())) == (
        cut["held_out"]["queries"], cut["held_out"]["pairs"], cut["held_out"]["relevant"],
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("point", ["precision-first", "recall-first"])
def test_the_operating_points_table_is_what_judge_eval_gives(noveleval: dict[str, Any], point: str) -> None:
    cells = _row(_page("judges.md"), point)
    _, _, quoted_cut, tune_p, tune_r, held_p, held_r, kappa, flagged = cells
    cut = _cut(noveleval[point])
    where = f"judges.md, operating point {point}"
    _same(quoted_cut, cut["threshold"], f"{where}: cut")
    _same(tune_p, cut["tune"]["precision"], f"{where}: tuning P")
    _same(tune_r, cut["tune"]["recall"], f"{where}: tuning R")
    _same(held_p, cut["held_out"]["precision"], f"{where}: held-out P")
    _same(held_r, cut["held_out"]["recall"], f"{where}: held-out R")
    _same(kappa, cut["held_out"]["kappa"], f"{where}: held-out kappa")
    assert flagged.replace(" ", "") == f"{cut['held_out']['flagged']}/{cut['held_out']['pairs']}", where


@pytest.mark.slow
@pytest.mark.shared
def test_the_embedding_candidate_row_is_what_judge_eval_gives(noveleval: dict[str, Any]) -> None:
    """The row is bench/calibrate_defaults.py's (it needs the LLM rows' store); judge-eval, at the same objective,
    picks another cut of the same tuning recall (the page says which) with the same held-out figures."""
    page = _page("judges.md")
    cells = _row(page, "embedding, MiniLM cos(reference)")
    quoted_cut, tune_r, tune_p, held_p, held_r, kappa = cells[1:7]
    cut = _cut(noveleval["precision-0.6"])
    where = "judges.md, the embedding candidate"
    _same(tune_r, cut["tune"]["recall"], f"{where}: tuning R")
    _same(held_p, cut["held_out"]["precision"], f"{where}: held-out P")
    _same(held_r, cut["held_out"]["recall"], f"{where}: held-out R")
    _same(kappa, cut["held_out"]["kappa"], f"{where}: held-out kappa")
    note = _search(r"its cut is ([\d.]+) \(tuning precision ([\d.]+)\)", page, "judges.md")
    _same(note[1], cut["threshold"], f"{where}: judge-eval's cut")
    _same(note[2], cut["tune"]["precision"], f"{where}: judge-eval's tuning precision")
    assert cut["threshold"] <= float(quoted_cut) and float(note[2]) <= float(tune_p), "the lowest cut of equal recall"


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("judge", ["embedding (MiniLM", "default (`hardneg clean`"])
def test_the_every_judge_table_rows_of_the_default_judge(noveleval: dict[str, Any], judge: str) -> None:
    cells = _row(_page("judges.md"), judge)
    at_recall, kappa_at_recall, kappa_shipped, shipped = cells[2:6]
    recall_first, precision_first = _cut(noveleval["recall-first"]), _cut(noveleval["precision-first"])
    where = f"judges.md, every judge: {judge}"
    if judge.startswith("default"):  # verdicts, not scores: no cut to tune
        assert at_recall == kappa_at_recall == "—", where
    else:
        p, r = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", at_recall).groups()  # type: ignore[union-attr]
        _same(p, recall_first["held_out"]["precision"], f"{where}: P @ R0.8")
        _same(r, recall_first["held_out"]["recall"], f"{where}: (R)")
        _same(kappa_at_recall, recall_first["held_out"]["kappa"], f"{where}: kappa @ R0.8")
    _same(kappa_shipped, precision_first["held_out"]["kappa"], f"{where}: kappa (shipped cut)")
    shipped_p, shipped_r = (s.strip() for s in shipped.split("/"))
    _same(shipped_p, precision_first["held_out"]["precision"], f"{where}: P (shipped)")
    _same(shipped_r, precision_first["held_out"]["recall"], f"{where}: R (shipped)")


@pytest.mark.slow
@pytest.mark.shared
def test_the_noveleval_testbed_card_on_the_judges_page() -> None:
    ran = _run("judges.md", "-o testbeds/noveleval ")
    card = _json(ran, "testbeds/noveleval/card.json")
    quoted = _search(r"NovelEval gives (\d+) queries, (\d+) negatives, (\d+) false negatives \((\d+)%\)",
                     _page("judges.md"), "judges.md")  # fmt: skip
    assert tuple(map(int, quoted.groups()[:3])) == (card["queries"], card["negatives"], card["false_negatives"])
    assert int(quoted[4]) == round(100 * card["false_negatives"] / card["negatives"])


def test_the_cuts_the_pages_quote_are_the_shipped_default_configs() -> None:
    """Config values, not measurements: judge.md's and judges.md's cuts are those `hardneg configs show default`
    prints (its `operating_points`), and judges.md's yaml excerpt is that config's."""
    import yaml

    from hardneg.judging.cascade import load_default_config

    config = load_default_config()
    cuts = {name: point.t_better for name, point in config.operating_points.items()}
    judge = _page("judge.md")
    precision = _search(r"precision-first \(the highest\s+recall at precision >= 0.7: MiniLM cos\(reference\) >=\s+"
                        r"([\d.]+)\)", judge, "judge.md")  # fmt: skip
    recall = _search(r"recall-first \(the\s+highest precision at recall >= 0.8: >= ([\d.]+)\)", judge, "judge.md")
    assert (float(precision[1]), float(recall[1])) == (cuts["precision-first"], cuts["recall-first"])
    excerpt = next(b for b in harness.page_blocks(harness.DOCS / "judges.md") if "operating_points:" in b.text)
    quoted = yaml.safe_load(excerpt.text)["operating_points"]
    assert {name: point["t_better"] for name, point in quoted.items()} == cuts
    assert {name: point["treatments"] for name, point in quoted.items()} == {
        name: list(point.treatments) for name, point in config.operating_points.items()
    }


# -- agreement with GPT-4o on the rlhn-sample ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fiqa() -> dict[str, Any]:
    """The `--json` of results.md's agreement commands (skipped while the page marks them check: a minute of MiniLM
    on FiQA's long answers; mark the block `run` to have the suite verify the whole table)."""
    ran = _run("results.md", "--json > gpt-4o-mini.json")
    names = ("gpt-4o-mini", "precision-first", "recall-first", "local-bounded")
    return {name: _json(ran, f"{name}.json") for name in names}


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(
    ("first_cell", "name"),
    [("GPT-4o-mini alone", "gpt-4o-mini"), ("`hardneg clean`'s default", "precision-first"),
     ("the same judge, recall-first", "recall-first"), ("this experiment's judge", "local-bounded")],
)  # fmt: skip
def test_the_agreement_table_on_the_results_page(fiqa: dict[str, Any], first_cell: str, name: str) -> None:
    flagged, kappa, precision, recall, three_class = _row(_page("results.md"), first_cell)[1:6]
    got = fiqa[name]
    where = f"results.md, agreement: {first_cell}"
    assert int(flagged) == got["binary"]["relevant_a"], where
    _same(kappa, got["binary"]["kappa"], f"{where}: kappa")
    _same(precision, got["binary"]["precision"] if got["binary"]["relevant_a"] else None, f"{where}: precision")
    _same(recall, got["binary"]["recall"], f"{where}: recall")
    _same(three_class, got["three_class"]["kappa"], f"{where}: kappa (better / worse / none)")


@pytest.mark.slow
@pytest.mark.shared
def test_the_rlhn_sample_figures_in_the_prose(fiqa: dict[str, Any]) -> None:
    results = _page("results.md")
    reading = _search(r"kappa with GPT-4o is ([\d.]+) and ([\d.]+) at its two shipped cuts, against GPT-4o-mini's "
                      r"([\d.]+)", results, "results.md")  # fmt: skip
    _same(reading[1], fiqa["precision-first"]["binary"]["kappa"], "results.md, reading: precision-first kappa")
    _same(reading[2], fiqa["recall-first"]["binary"]["kappa"], "results.md, reading: recall-first kappa")
    _same(reading[3], fiqa["gpt-4o-mini"]["binary"]["kappa"], "results.md, reading: GPT-4o-mini kappa")
    # judges.md's second opinion is the same measurement (bench/calibrate_defaults.py prints it too)
    judges = _page("judges.md")
    second = _search(r"\((\d+) pairs, (\d+) relevant\), the embedding judge agrees far less: at the precision-first "
                     r"cut ([\d.]+)\s+it flags (\d+) pairs, precision ([\d.]+), recall ([\d.]+), kappa ([\d.]+)",
                     judges, "judges.md")  # fmt: skip
    default = fiqa["precision-first"]
    assert (int(second[1]), int(second[2]), int(second[4])) == (
        default["pairs"], default["binary"]["relevant_b"], default["binary"]["relevant_a"],
    )  # fmt: skip
    _same(second[5], default["binary"]["precision"], "judges.md, second opinion: precision")
    _same(second[6], default["binary"]["recall"], "judges.md, second opinion: recall")
    _same(second[7], default["binary"]["kappa"], "judges.md, second opinion: kappa")


@pytest.mark.slow
@pytest.mark.shared
def test_the_gpt_4o_mini_row_and_the_sample_sizes_are_the_report_pages_example() -> None:
    """The table's first row and the sample's size need no model: report.md's example imports the same verdicts
    and runs the same agreement (the rest of the table needs results.md's own block, a minute of MiniLM)."""
    got = _json(_run("report.md", "stage-1-vs-final.json"), "stage-1-vs-final.json")
    results = _page("results.md")
    sizes = _search(r"\((\d+) query–negative pairs, (\d+) of them relevant", results, "results.md")
    assert (int(sizes[1]), int(sizes[2])) == (got["pairs"], got["binary"]["relevant_b"])
    flagged, kappa, precision, recall, three_class = _row(results, "GPT-4o-mini alone")[1:6]
    where = "results.md, agreement: GPT-4o-mini alone"
    assert int(flagged) == got["binary"]["relevant_a"], where
    _same(kappa, got["binary"]["kappa"], f"{where}: kappa")
    _same(precision, got["binary"]["precision"], f"{where}: precision")
    _same(recall, got["binary"]["recall"], f"{where}: recall")
    _same(three_class, got["three_class"]["kappa"], f"{where}: kappa (better / worse / none)")


# -- the README quotes results.md -----------------------------------------------------------------------------------


def test_the_readme_results_are_the_results_pages() -> None:
    """The README's table and counts are the experiment of docs/results.md (hours: checked there, not rerun)."""
    readme, results = _page("README.md"), _page("results.md")
    section = readme.split("## Measured on real data", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| variant")]
    assert len(rows) == 4, rows
    for line in rows:
        variant, moved, scifact, arguana, average = (c.strip() for c in line.strip("|").split("|"))
        full = _row(results, variant, width=7)
        assert [moved, scifact, arguana, average] == [full[2], full[3].split()[0], full[4].split()[0], full[5]], variant
    p_values = [float(_row(results, v, t)[3]) for v in ("rlhn-cascade", "rlhn-stage1", "topk_percpos")
                for t in ("scifact", "arguana")]  # fmt: skip
    quoted = _search(r"p from ([\d.]+) to ([\d.]+)\)", section, "README.md")
    _same(quoted[1], min(p_values), "README.md: smallest p")
    _same(quoted[2], max(p_values), "README.md: largest p")
    counts = _search(
        r"relabelled (\d+)\s+\(cascade\) or (\d+) \(stage 1 alone\) of ([\d,]+) negatives", section, "README"
    )
    assert counts[1] == _row(results, "rlhn-cascade", width=7)[2].split(" / ")[0]
    assert counts[2] == _row(results, "rlhn-stage1", width=7)[2].split(" / ")[0]
    assert counts[3] in results


@pytest.mark.shared
def test_scifact_train_sizes_the_pages_derive(scifact_dir: Path) -> None:
    """809 SciFact train queries with a positive (results.md, README, train.md), 10 negatives each (8,090), and 26
    steps of 32 for an epoch (train.md)."""
    queries = {line.split("\t")[0] for line in (scifact_dir / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    results = _page("results.md")
    assert f"SciFact train from `../shared/data/scifact` ({len(queries)} queries with a positive)" in results
    assert f"{len(queries) * 10:,} negatives of {len(queries)} instances" in results
    steps = _search(r"one epoch, (\d+) steps of (\d+) groups", _page("train.md"), "train.md")
    assert int(steps[1]) == math.ceil(len(queries) / int(steps[2]))


# -- the backends judge.md lists ----------------------------------------------------------------------------------


def test_the_backends_judge_md_lists_are_the_shipped_ones() -> None:
    from hardneg.judging.registry import BACKENDS

    shipped = {name for name, target in BACKENDS.items() if str(target).startswith("hardneg.")}
    quoted = _search(r"one of the (\d+) shipped: (.*?); or one you", _page("judge.md"), "judge.md")
    assert int(quoted[1]) == len(shipped)
    assert set(re.findall(r"`([\w-]+)`", quoted[2])) == shipped


def test_the_gpu_cascade_cuts_are_the_gpt4o_calibration() -> None:
    """scaling.md's gpu-cascade.yaml takes the cuts calibrated against GPT-4o on the rlhn-sample
    (`defaults.FIQA_GPT4O`, from judge.md's `hardneg calibrate` on those files, a check-long block)."""
    import yaml

    from hardneg.judging import defaults

    stages = yaml.safe_load(harness.named_files()["gpu-cascade.yaml"])["stages"]
    embedding, judge = stages
    cut = defaults.FIQA_GPT4O["embedding"]
    assert (embedding["t_better"], embedding["t_worse"]) == (cut["t_better"], cut["t_worse"])
    assert embedding["route"] == f"score>={defaults.FIQA_GPT4O_ROUTE_MIN_SCORE}"
    fused = defaults.FIQA_GPT4O["llm-pointwise+fused"]
    assert judge["fuse"] == "rank-average" and (judge["t_better"], judge["t_worse"]) == (
        fused["t_better"], fused["t_worse"],
    )  # fmt: skip
