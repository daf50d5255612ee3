"""`collect`: the page's numbers from a store: cost per stage, the funnel, flags per instance, subsets, agreement."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.analysis.report.collect import ReportData, collect
from hardneg.data.io import write_instances
from hardneg.data.records import Instance, Passage
from hardneg.judging.base import JudgeOutput
from hardneg.judging.cost import PriceTable
from hardneg.judging.store import JudgmentStore

DOCIDS = [f"d{i}" for i in range(10)]


def _instances(path: Path, subsets: dict[str, str]) -> Path:
    rows = [
        Instance(q, f"query {q}", [Passage(f"p{q}", "positive")], [Passage(d, f"text {d}") for d in DOCIDS], subset=s)
        for q, s in subsets.items()
    ]
    write_instances(path, rows)
    return path


def test_funnel_histogram_and_cost_of_a_store(store_path: Path) -> None:
    with JudgmentStore(store_path, readonly=True) as store:
        data = collect(store)
    assert data.store == str(store_path)
    assert [(s["step"], s["judged"], s["ok"], s["failed"], s["flagged"]) for s in data.funnel] == [
        ("stage 1", 12, 12, 0, 7),
        ("stage 2", 7, 6, 1, 3),
        ("final", 12, 11, 1, 3),
    ]
    assert data.flags_histogram == {"1": 3}
    prices = PriceTable.default()
    assert data.stages[0]["cost_usd"] == pytest.approx(prices.get("gpt-4o-mini").cost(12 * 3800, 12 * 950))
    assert data.price_note.startswith(f"prices: hardneg.judging.cost built-in table ({prices.date})")
    assert [(s["subset"], s["judged"], s["flagged"], s["failed"], s["flags"]) for s in data.subsets] == [
        ("(all)", 12, 3, 1, 3)
    ]
    assert data.subsets[0]["flagged_rate"] == pytest.approx(3 / 12) == data.subsets[0]["better_rate"]
    assert data.experiment is None and data.pairs == []


def test_subsets_come_from_the_instances_file(tmp_path: Path, store_path: Path) -> None:
    # q0-q5 in subset "a" (q0-q2 flagged), q6-q9 without a subset (q6 failed), q10 and q11 not in the file
    instances = _instances(tmp_path / "train.jsonl", {f"q{q}": ("a" if q < 6 else "") for q in range(10)})
    with JudgmentStore(store_path, readonly=True) as store:
        data = collect(store, instances=instances)
    rows = {s["subset"]: (s["judged"], s["flagged"], s["failed"], s["flagged_rate"]) for s in data.subsets}
    assert list(rows) == ["(none)", "(not in file)", "a"]
    assert rows == {"(none)": (4, 0, 1, 0.0), "(not in file)": (2, 0, 0, 0.0), "a": (6, 3, 0, 0.5)}
    assert {(p["kind"], p["query_id"], p["docid"]) for p in data.pairs if p["kind"] == "flagged"} == {
        ("flagged", f"q{q}", "d0") for q in range(3)
    }


@pytest.fixture
def flags_store(tmp_path: Path) -> Path:
    """One stage without tokens: q0 flags 1 negative, q1 one better and one worse, q2 ten, q3 none, q4 failed."""
    path = tmp_path / "flags.db"
    outputs = {
        "q0": JudgeOutput(DOCIDS, better=["d0"]),
        "q1": JudgeOutput(DOCIDS, better=["d0"], worse=["d1"]),
        "q2": JudgeOutput(DOCIDS, better=DOCIDS[:5], worse=DOCIDS[5:]),
        "q3": JudgeOutput(DOCIDS, better=[], worse=[]),
        "q4": JudgeOutput(DOCIDS, status="failed", reason="timeout"),
    }
    with JudgmentStore(path) as store:
        for qid, out in outputs.items():
            store.put(qid, 1, "local", {"model": "no-such-model"}, out)
    return path


def test_tags_decide_what_counts_as_a_flag(flags_store: Path) -> None:
    with JudgmentStore(flags_store, readonly=True) as store:
        both = collect(store, tags="both")
        better = collect(store, tags="better")
    assert both.flags_histogram == {"1": 1, "2": 1, ">8": 1}
    assert better.flags_histogram == {"1": 2, "5": 1}
    assert both.funnel[-1] == {"step": "final", "stage": None, "judged": 5, "ok": 4, "failed": 1, "flagged": 3}
    assert both.subsets[0]["flags"] == 1 + 2 + 10 and better.subsets[0]["flags"] == 1 + 1 + 5
    assert both.subsets[0]["better_rate"] == pytest.approx(3 / 5)
    assert both.stages[0]["cost_usd"] is None  # no tokens recorded
    assert both.agreements == []  # one stage: nothing to compare


def test_agreements_between_stages_and_the_extra_sources(store_path: Path) -> None:
    with JudgmentStore(store_path, readonly=True) as store:
        data = collect(store, extra_agreements=[("stage:2", "stage:1"), ("stage:1", "stage:7")])
    first, extra, broken = data.agreements
    assert (first["a"], first["b"], first["pairs"]) == ("stage:1", "stage:2", 6 * 10)
    assert (extra["a"], extra["b"]) == ("stage:2", "stage:1")
    assert broken["a"] == "stage:1" and broken["b"] == "stage:7" and broken["error"]


def test_experiment_results_join_the_numbers(tmp_path: Path, store_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"run": {"scifact": {"ndcg@10": 0.5}}}')
    with JudgmentStore(store_path, readonly=True) as store:
        data = collect(store, experiment=tmp_path)
    assert data.experiment == {"run": {"scifact/ndcg@10": 0.5}}


def test_to_dict_is_every_number_but_not_the_plot() -> None:
    data = ReportData(store="s", judge_eval={"stages": []}, judge_eval_plot="iVBOR")
    as_dict = data.to_dict()
    assert list(as_dict) == [
        "store", "stages", "funnel", "subsets", "flags_histogram", "agreements", "experiment", "price_note", "pairs",
        "judge_eval",
    ]  # fmt: skip
    assert as_dict["judge_eval"] == {"stages": []} and "judge_eval_plot" not in as_dict
