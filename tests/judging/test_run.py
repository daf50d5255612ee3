"""`hardneg.judge` and `run_into_store`, the one way a cascade runs into a store (`judge`, `clean`, and the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

import hardneg
import support.lexical_judges  # noqa: F401 (registers the `lexical` backend)
from hardneg.data.source import as_source, select_source
from hardneg.errors import ConfigError
from hardneg.judging.cascade.config import parse_config
from hardneg.judging.cost.budget import Budget
from hardneg.judging.run import judge, run_into_store
from hardneg.judging.store import JudgmentStore

LEXICAL = {"name": "lex", "stages": [{"name": "lex", "backend": "lexical", "t_better": 0.3, "t_worse": 0.2}]}


def test_run_into_store_fills_the_selection_and_this_runs_final_verdicts(sample_train: Path) -> None:
    source, selection = select_source(as_source(sample_train), limit=5)
    with JudgmentStore(":memory:") as store:
        report = run_into_store(source, parse_config(LEXICAL), store, selection=selection)
        assert report.selection == {"limit": 5, "sample": None, "seed": None, "used": 5, "total": 24}
        assert report.pending == {} and report.verdicts == store.final_verdicts(report.stage_hashes)
    assert len(report.verdicts) == report.instances == 5


def test_judge_and_clean_run_the_same_calls_into_one_store(sample_train: Path, tmp_path: Path) -> None:
    """What `judge` stored, `clean` reuses call for call (and the other way round): one path into the store."""
    db = tmp_path / "j.sqlite"
    judged = judge(sample_train, LEXICAL, db, limit=6)
    assert judged.stages[0].judged_now == 6
    report = hardneg.CleanReport()
    hardneg.clean(sample_train, LEXICAL, db, output=tmp_path / "out.jsonl", report=report, skip_subsets=())
    assert report.cascade.stages[0].reused == 6 and report.cascade.stages[0].judged_now == 24 - 6
    again = judge(sample_train, LEXICAL, db)
    assert again.stages[0].judged_now == 0 and again.verdicts == report.cascade.verdicts


def test_a_ray_cluster_that_does_not_answer_is_refused_before_any_store(sample_train: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    db = tmp_path / "j.sqlite"
    for verb in (judge, hardneg.clean):
        with pytest.raises(ConfigError) as err:
            verb(sample_train, LEXICAL, db, engine="ray", ray_address="127.0.0.1:1")  # port 1: nothing listens
        assert err.value.param == "ray_address"
    assert not db.exists()


def test_a_budget_on_ray_is_refused_by_the_runner(sample_train: Path) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ConfigError) as err:
        judge(sample_train, LEXICAL, ":memory:", engine="ray", budget=Budget(1.0))
    assert err.value.param == "engine" and "a budget is kept by one process" in str(err.value)


def test_a_store_must_be_named() -> None:
    with pytest.raises(ConfigError) as err:
        judge([], LEXICAL)
    assert err.value.param == "store"
