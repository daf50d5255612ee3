"""Named cascade configs: `hardneg configs` lists them, `configs show` prints one, `--config NAME` runs one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.errors import ConfigError
from hardneg.judging.cascade import default_config_path, load_cascade, resolve_config, shipped_configs

REPO = Path(__file__).resolve().parents[2]
NAMES = ("default", "embedding", "local-bounded", "local-llm", "paper-api")


def test_every_shipped_config_loads_and_the_examples_are_the_same_files() -> None:
    shipped = shipped_configs()
    assert tuple(sorted(shipped)) == NAMES and next(iter(shipped)) == "default"
    assert shipped["default"] == default_config_path()
    for name, path in shipped.items():
        load_cascade(name)  # valid
        if name != "default":  # the repository's examples/ are the shipped files, byte for byte
            assert (REPO / "examples" / f"judge-{name}.yaml").read_bytes() == path.read_bytes(), name


def test_name_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config("paper-api") == resolve_config("judge-paper-api") == shipped_configs()["paper-api"]
    assert load_cascade("paper-api").name == "rlhn-paper-api"
    with pytest.raises(ConfigError) as raised:
        load_cascade("paper-apy")
    assert raised.value.param == "config" and "paper-api" in str(raised.value) and "default" in str(raised.value)
    with pytest.raises(ConfigError, match="no such config file"):
        load_cascade("paper-api.yaml")  # a file name is a file, never a shipped name
    monkeypatch.chdir(tmp_path)  # an existing file wins over a shipped name
    Path("default").write_text("name: mine\nstages:\n  - {name: e, backend: embedding, t_better: 0.9}\n")
    assert load_cascade("default").name == "mine"


def test_cli_lists_and_shows_configs(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["configs"])
    assert listed.exit_code == 0, listed.output
    for name in NAMES:
        assert f"{name}: " in listed.stdout
    rows = json.loads(runner.invoke(app, ["configs", "--json"]).stdout)["configs"]
    assert rows[0]["name"] == "default" and {r["name"] for r in rows} == set(NAMES)
    assert all(r["description"] and r["kind"] == "cascade" for r in rows)
    shown = runner.invoke(app, ["configs", "show", "paper-api"])
    assert shown.exit_code == 0 and shown.stdout == shipped_configs()["paper-api"].read_text(encoding="utf-8")
    saved = tmp_path / "my.yaml"
    saved.write_text(shown.stdout)
    assert yaml.safe_load(saved.read_text())["stages"][0]["backend"] == "openai"
    assert load_cascade(saved).name == "rlhn-paper-api"
    bad = runner.invoke(app, ["configs", "show", "nope"])
    assert bad.exit_code == 2 and "paper-api" in bad.stderr


def test_judge_takes_a_name_and_runs_the_default_without_config(sample_train: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["judge", str(sample_train), "--store", str(tmp_path / "j.db"), "--estimate", "--json"]
    default = json.loads(runner.invoke(app, common).stdout)  # --estimate: nothing is called, no model loaded
    assert default["config"] == load_cascade("default").name
    named = json.loads(runner.invoke(app, [*common, "--config", "paper-api"]).stdout)
    assert named["config"] == "rlhn-paper-api" and named["estimate"]["stages"]
    unknown = runner.invoke(app, [*common, "--config", "nope"])
    assert unknown.exit_code == 2 and "--config" in unknown.stderr and "local-llm" in unknown.stderr
    assert not (tmp_path / "j.db").exists()
