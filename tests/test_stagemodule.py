"""Stage packages are callable (`hardneg.judge(...)`) and stay ordinary packages (`from hardneg.judge import Judge`)."""

from __future__ import annotations

import importlib
import inspect
import pickle

import hardneg
import hardneg.evaluate
import hardneg.judge
import hardneg.mine
import hardneg.relabel


def test_stage_packages_are_the_packages_and_run_their_stage() -> None:
    for name, function in (
        ("mine", hardneg.mine.mine),
        ("judge", hardneg.judge.run.judge),
        ("relabel", hardneg.relabel.run.relabel),
        ("evaluate", hardneg.evaluate.run.evaluate),
    ):
        package = importlib.import_module(f"hardneg.{name}")
        assert getattr(hardneg, name) is package
        assert callable(package)
        assert inspect.signature(package) == inspect.signature(function)
    assert hardneg.judge.Judge.__module__ == "hardneg.judge.base"
    from hardneg.judge import Judge, JudgeOutput, register_backend  # the contract, from the package

    assert Judge and JudgeOutput and register_backend


def test_calling_a_stage_package_calls_its_function() -> None:
    verdict = hardneg.FinalVerdict("q1", 1, better=["n1"], worse=[])
    negatives = [hardneg.Passage("n1", "a"), hardneg.Passage("n2", "b")]
    inst = hardneg.Instance("q1", "query", [hardneg.Passage("p", "pos")], negatives)
    out = hardneg.relabel([inst], {"q1": verdict}, treatment="hn_remove")
    assert [p.docid for p in out[0].negatives] == ["n2"]
    assert pickle.loads(pickle.dumps(hardneg.relabel.run.relabel)) is hardneg.relabel.run.relabel
