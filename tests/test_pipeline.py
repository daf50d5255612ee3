"""`hardneg.clean` on data in memory gives what `hardneg clean` writes for the same data and config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import hardneg
import support.lexical_judges  # noqa: F401 (registers the `lexical` backend)
from hardneg.cli import app
from hardneg.data.io import read_instances
from hardneg.data.sample import sample_train_path
from hardneg.errors import ConfigError
from hardneg.pipeline import CleanReport

# One embedding stage: seconds on the sample, and it flags some of the sample's negatives.
CASCADE = {"name": "cosine-only", "stages": [{"name": "cosine", "backend": "embedding", "t_better": 0.6}]}


def _cli_rows(tmp_path: Path) -> list[dict]:
    config = tmp_path / "cascade.yaml"
    config.write_text(yaml.safe_dump(CASCADE))
    out = tmp_path / "cleaned.jsonl"
    args = ["--quiet", "clean", str(sample_train_path()), "-o", str(out), "--store", str(tmp_path / "cli.sqlite")]
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.slow
def test_clean_on_a_dataset_returns_the_rows_the_cli_writes(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in sample_train_path().read_text().splitlines()]
    dataset = datasets.Dataset.from_list(rows)
    report = CleanReport()
    cleaned = hardneg.clean(dataset, store=tmp_path / "lib.sqlite", config=CASCADE, report=report)
    assert isinstance(cleaned, datasets.Dataset)
    expected = _cli_rows(tmp_path)
    assert cleaned.to_list() == expected
    moved = report.relabel.total.negatives_moved
    assert moved > 0  # the cut flags something, so the equality is not that of two unchanged copies
    assert sum(len(r["positive_passages"]) for r in expected) == sum(len(r["positive_passages"]) for r in rows) + moved


@pytest.mark.slow
def test_clean_gives_back_the_kind_it_was_given(tmp_path: Path) -> None:
    instances = list(read_instances(sample_train_path()))
    cleaned = hardneg.clean(instances, store=tmp_path / "j.sqlite", config=CASCADE)
    assert isinstance(cleaned, list) and all(isinstance(i, hardneg.Instance) for i in cleaned)
    out = tmp_path / "out.jsonl.gz"
    assert hardneg.clean(sample_train_path(), store=tmp_path / "j.sqlite", config=CASCADE, output=out) == out
    assert [i.to_row() for i in read_instances(out)] == [i.to_row() for i in cleaned]
    with pytest.raises(ConfigError, match="output") as raised:
        hardneg.clean(sample_train_path(), store=tmp_path / "j.sqlite", config=CASCADE)
    assert raised.value.param == "output"


def test_clean_takes_the_cut_of_its_treatment_and_another_treatment_makes_no_new_call(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    config = {
        "stages": [{"name": "lex", "backend": "lexical", "params": {"log": str(log)}, "t_better": 0.9}],
        "operating_points": {
            "strict": {"treatments": ["rlhn", "rlhn+filter"], "t_better": 0.3},
            "lenient": {"treatments": ["remove", "hn_remove"], "t_better": 0.2},
        },
    }
    data, store = list(read_instances(sample_train_path())), tmp_path / "j.sqlite"
    flagged, cuts = {}, {}
    for treatment in ("rlhn", "remove", "default"):
        report = CleanReport()
        hardneg.clean(data, store=store, config=config, treatment=treatment, report=report)
        (stage,) = report.cascade.stages
        flagged[treatment], cuts[treatment] = stage.flagged, report.cut
        assert stage.judged_now == (24 if treatment == "rlhn" else 0)  # the stored scores serve every cut
    assert len(log.read_text().splitlines()) == 24  # the judge was called for the first run only
    assert (cuts["rlhn"]["t_better"], cuts["rlhn"]["operating_point"]) == (0.3, "strict")
    assert (cuts["remove"]["t_better"], cuts["remove"]["operating_point"]) == (0.2, "lenient")
    assert (cuts["default"]["t_better"], cuts["default"]["operating_point"]) == (0.9, None)  # the stage's own
    assert not any(cut["calibrated"] for cut in cuts.values())  # a lexical judge has no figures on people
    assert flagged["remove"] > flagged["rlhn"] > flagged["default"]
