"""`hardneg estimate`: the cost of a cascade before any call, with default and custom prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.shared
def test_estimate_cli(rlhn_stage1: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hardneg.cli import app

    config = tmp_path / "cascade.yaml"
    config.write_text("stages:\n  - {name: cheap, backend: openai, params: {model: gpt-4o-mini, template: compact}}\n")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o-mini": {"input": 10.0, "output": 10.0}}))
    runner = CliRunner()
    default = runner.invoke(app, ["--quiet", "estimate", str(rlhn_stage1), "--config", str(config), "--json"])
    assert default.exit_code == 0, default.output
    custom = runner.invoke(
        app, ["--quiet", "estimate", str(rlhn_stage1), "--config", str(config), "--prices", str(prices), "--json"]
    )
    a, b = json.loads(default.stdout), json.loads(custom.stdout)
    assert a["instances"] == 25 and a["stages"][0]["calls"] == 25
    assert b["cost_usd"] > a["cost_usd"] and b["prices_source"] == str(prices)
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: []\n")
    result = runner.invoke(app, ["--quiet", "estimate", str(rlhn_stage1), "--config", str(bad)])
    assert result.exit_code == 2 and "stages" in result.output
    missing = runner.invoke(app, ["batch", "status", "--store", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "no such judgment store" in missing.output


def test_estimate_cli_on_the_sample(sample_train: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hardneg.cli import app

    config = tmp_path / "cascade.yaml"
    config.write_text("stages:\n  - {name: cheap, backend: openai, params: {model: gpt-4o-mini, template: compact}}\n")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o-mini": {"input": 10.0, "output": 10.0}}))
    runner = CliRunner()
    default = runner.invoke(app, ["--quiet", "estimate", str(sample_train), "--config", str(config), "--json"])
    assert default.exit_code == 0, default.output
    custom = runner.invoke(
        app, ["--quiet", "estimate", str(sample_train), "--config", str(config), "--prices", str(prices), "--json"]
    )
    a, b = json.loads(default.stdout), json.loads(custom.stdout)
    assert a["instances"] == 24 and a["stages"][0]["calls"] == 24
    assert b["cost_usd"] > a["cost_usd"] and b["prices_source"] == str(prices)
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: []\n")
    result = runner.invoke(app, ["--quiet", "estimate", str(sample_train), "--config", str(bad)])
    assert result.exit_code == 2 and "stages" in result.output
    missing = runner.invoke(app, ["batch", "status", "--store", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "no such judgment store" in missing.output
