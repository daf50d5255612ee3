"""The 0.1 import paths still work for one release, warn with the new name, and never shadow the verbs."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types

import pytest

import hardneg
from hardneg.deprecated import RENAMED_PACKAGES, new_path


def test_the_verbs_are_plain_functions_not_packages() -> None:
    for name in ("mine", "judge", "relabel", "evaluate", "clean", "train_retriever", "train_reranker"):
        verb = getattr(hardneg, name)
        assert inspect.isfunction(verb), name
        assert not isinstance(verb, types.ModuleType), name
    for package in RENAMED_PACKAGES.values():
        assert not callable(importlib.import_module(package)), package


def test_old_paths_import_the_new_objects_with_a_warning() -> None:
    from hardneg.judging.base import Judge
    from hardneg.judging.cascade.config import load_cascade
    from hardneg.judging.store import JudgmentStore
    from hardneg.mining.config import MineConfig

    with pytest.warns(DeprecationWarning, match=r"hardneg\.judge\.store\.JudgmentStore.*hardneg\.judging\.store"):
        from hardneg.judge.store import JudgmentStore as old_store
    with pytest.warns(DeprecationWarning, match=r"hardneg\.judging\.Judge"):
        from hardneg.judge import Judge as old_judge
    with pytest.warns(DeprecationWarning, match="load_cascade"):
        from hardneg.judge.cascade import load_config
    with pytest.warns(DeprecationWarning, match=r"hardneg\.mining\.config\.MineConfig"):
        from hardneg.mine.config import MineConfig as old_config
    with pytest.warns(DeprecationWarning, match=r"hardneg\.load_cascade"):
        old_loader = hardneg.load_config
    assert old_store is JudgmentStore and old_judge is Judge and old_config is MineConfig
    assert load_config is load_cascade and old_loader is load_cascade
    assert inspect.isfunction(hardneg.judge) and inspect.isfunction(hardneg.mine)  # still the verbs


def test_an_old_path_that_0_2_lacks_fails_like_any_missing_module() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("hardneg.judge.no_such_module")
    with pytest.raises(AttributeError):
        hardneg.no_such_name  # noqa: B018


def test_new_path_maps_only_the_renamed_packages() -> None:
    assert new_path("hardneg.judge.cascade.config") == "hardneg.judging.cascade.config"
    assert new_path("hardneg.train") == "hardneg.training"
    assert new_path("hardneg.judging.store") is None
    assert new_path("hardneg.trainer") is None


def test_a_script_sees_the_warning_by_default(tmp_path) -> None:
    # DeprecationWarning shows by default only when attributed to __main__: the warning must name the user's line
    script = tmp_path / "old.py"
    script.write_text("from hardneg.judge.store import JudgmentStore\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert f"{script}:1: DeprecationWarning" in run.stderr
    assert "hardneg.judging.store.JudgmentStore" in run.stderr
