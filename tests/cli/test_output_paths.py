"""One output rule for every verb that writes, and no verb ever deletes what hardneg did not write.

For each verb: `.hf` (or a trailing /) writes a datasets folder that `stats` reads; an unknown name or an existing
folder is refused with exit 2 before any work (no store created, nothing judged); a folder holding a user's file
survives, even with --overwrite; --overwrite replaces a folder hardneg wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import support.lexical_judges  # noqa: F401 (registers the lexical backend the configs name)
from hardneg.cli import app
from hardneg.data.atomic import mark_folder
from hardneg.data.io import iter_raw_rows
from hardneg.data.sample import sample_beir_dir, sample_train_path

runner = CliRunner()
LEXICAL = {"name": "lex", "stages": [{"name": "lex", "backend": "lexical", "t_better": 0.3, "t_worse": 0.2}]}


def run(*args: str | Path) -> object:
    return runner.invoke(app, ["--quiet", *map(str, args)])


def ok(*args: str | Path) -> object:
    result = run(*args)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return result


def refused(*args: str | Path, says: str, path: Path | str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert says in result.output and str(path) in result.output, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


def instances_in(path: Path | str) -> int:
    return json.loads(ok("stats", path, "--json").stdout)["instances"]  # type: ignore[attr-defined]


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    return path


def survived(path: Path) -> bool:
    return [p.name for p in path.iterdir()] == ["notes.txt"] and (path / "notes.txt").read_text() == "my notes"


@pytest.fixture
def lexical(tmp_path: Path) -> Path:
    config = tmp_path / "lex.yaml"
    config.write_text(yaml.safe_dump(LEXICAL))
    return config


def test_convert(tmp_path: Path) -> None:
    sample = sample_train_path()
    ok("convert", sample, tmp_path / "out.hf")
    assert instances_in(tmp_path / "out.hf") == 24
    ok("convert", sample, f"{tmp_path}/slash/")
    assert instances_in(tmp_path / "slash") == 24
    refused("convert", sample, tmp_path / "out.txt", says="unknown output format", path=tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()
    # the data-loss case of issue 20: a project folder named as the output
    project = user_folder(tmp_path / "project")
    for extra in ([], ["--overwrite"]):
        refused("convert", sample, f"{project}/", *extra, says="hardneg did not write", path=project)
        assert survived(project)
    refused("convert", sample, tmp_path / "out.hf", says="already exists", path=tmp_path / "out.hf")
    ok("convert", sample, tmp_path / "out.hf", "--to", "st-triplet", "--overwrite")
    assert "negative" in next(iter_raw_rows(tmp_path / "out.hf"))[1]  # replaced by the st-triplet rows
    ok("convert", sample, tmp_path / "again.jsonl")
    ok("convert", sample, tmp_path / "again.jsonl")  # files are replaced, as before
    (tmp_path / "dir.jsonl").mkdir()
    refused("convert", sample, tmp_path / "dir.jsonl", says="is a folder", path=tmp_path / "dir.jsonl")


def test_mine(tiny: Path, tmp_path: Path) -> None:
    ok("mine", tiny, "-o", tmp_path / "mined.hf", "--negatives", "2")
    assert instances_in(tmp_path / "mined.hf") > 0
    refused("mine", tiny, "-o", tmp_path / "mined.txt", says="unknown output format", path=tmp_path / "mined.txt")
    refused("mine", tiny, "-o", tmp_path / "mined.hf", says="already exists", path=tmp_path / "mined.hf")
    ok("mine", tiny, "-o", f"{tmp_path}/mined.hf/", "--negatives", "1", "--overwrite")
    project = user_folder(tmp_path / "project")
    refused("mine", tiny, "-o", f"{project}/", "--overwrite", says="hardneg did not write", path=project)
    assert survived(project)


def test_relabel(tmp_path: Path, lexical: Path) -> None:
    sample, store = sample_train_path(), tmp_path / "j.sqlite"
    ok("judge", sample, "--store", store, "--config", lexical)
    ok("relabel", sample, "--store", store, "-o", tmp_path / "out.hf")
    assert instances_in(tmp_path / "out.hf") == 24
    ok("relabel", sample, "--store", store, "-o", f"{tmp_path}/outhf/")  # a trailing / is a datasets folder
    assert instances_in(tmp_path / "outhf") == 24
    refused("relabel", sample, "--store", store, "-o", tmp_path / "out.txt", says="unknown output format",
            path=tmp_path / "out.txt")  # fmt: skip
    refused("relabel", sample, "--store", store, "-o", tmp_path / "out.hf", says="already exists",
            path=tmp_path / "out.hf")  # fmt: skip
    ok("relabel", sample, "--store", store, "-o", tmp_path / "out.hf", "--overwrite")
    project = user_folder(tmp_path / "project")
    refused("relabel", sample, "--store", store, "-o", f"{project}/", "--overwrite", says="hardneg did not write",
            path=project)  # fmt: skip
    assert survived(project)
    refused("relabel", sample, "--store", store, "-o", tmp_path / "x.jsonl", "--to", "parquet", says="parquet",
            path=tmp_path / "x.jsonl")  # fmt: skip


def test_clean_refuses_before_any_judging(tmp_path: Path, lexical: Path) -> None:
    sample = sample_train_path()
    store = tmp_path / "j.sqlite"
    refused("clean", sample, "-o", tmp_path / "out.txt", "--config", lexical, "--store", store,
            says="unknown output format", path=tmp_path / "out.txt")  # fmt: skip
    project = user_folder(tmp_path / "project")
    refused("clean", sample, "-o", project, "--config", lexical, says="unknown output format", path=project)
    refused("clean", sample, "-o", f"{project}/", "--config", lexical, "--store", store,
            says="hardneg did not write", path=project)  # fmt: skip
    assert survived(project)
    # no judging happened: neither the named store nor a default one beside the output was created
    assert not store.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["lex.yaml", "project"]
    ok("clean", sample, "-o", tmp_path / "out.hf", "--config", lexical)
    assert instances_in(tmp_path / "out.hf") == 24
    assert (tmp_path / "out.hf.judgments.sqlite").is_file()
    refused("clean", sample, "-o", tmp_path / "out.hf", "--config", lexical, says="already exists",
            path=tmp_path / "out.hf")  # fmt: skip
    ok("clean", sample, "-o", tmp_path / "out.hf", "--config", lexical, "--overwrite")


def test_testbed(tmp_path: Path) -> None:
    args = ("testbed", sample_beir_dir(), "--split", "train", "-n", "4")
    ok(*args, "-o", tmp_path / "tb")
    card = json.loads((tmp_path / "tb" / "card.json").read_text())
    refused(*args, "-o", tmp_path / "tb", says="already exists", path=tmp_path / "tb")
    ok(*args, "-o", tmp_path / "tb", "--overwrite", "--seed", "3")
    assert json.loads((tmp_path / "tb" / "card.json").read_text())["seed"] == 3 != card["seed"]
    project = user_folder(tmp_path / "project")
    for extra in ([], ["--overwrite"]):
        refused(*args, "-o", project, *extra, says="hardneg did not write", path=project)
        assert survived(project)


def test_judge_eval_checks_its_plot_and_page_before_judging(tmp_path: Path, lexical: Path) -> None:
    ok("testbed", sample_beir_dir(), "--split", "train", "-n", "4", "-o", tmp_path / "tb")
    store = tmp_path / "j.sqlite"
    args = ("judge-eval", tmp_path / "tb", "--config", lexical, "--store", store)
    (tmp_path / "plots").mkdir()
    refused(*args, "--plot", tmp_path / "plots", says="is a folder", path=tmp_path / "plots")
    (tmp_path / "afile").write_text("x")
    refused(*args, "--html", tmp_path / "afile" / "page.html", says="is not a folder", path=tmp_path / "afile")
    assert not store.exists()  # nothing was judged
    ok(*args, "--plot", tmp_path / "missing" / "folder" / "pr.png")
    assert (tmp_path / "missing" / "folder" / "pr.png").stat().st_size > 0


def test_report_checks_its_page_before_reading(tmp_path: Path, lexical: Path) -> None:
    store = tmp_path / "j.sqlite"
    ok("judge", sample_train_path(), "--store", store, "--config", lexical)
    (tmp_path / "page.html").mkdir()
    refused("report", "--store", store, "-o", tmp_path / "page.html", says="is a folder", path=tmp_path / "page.html")


@pytest.mark.parametrize("kind", ["retriever", "reranker"])
def test_train_refuses_an_existing_model_folder_before_training(tmp_path: Path, kind: str) -> None:
    """Checked before the data is read or torch imported: a user's folder survives, with or without --overwrite,
    and a model folder hardneg wrote is replaced only with --overwrite (the replacing itself runs in the slow
    training tests)."""
    sample = sample_train_path()
    project = user_folder(tmp_path / "project")
    for extra in ([], ["--overwrite"]):
        refused("train", kind, sample, "-o", project, *extra, says="hardneg did not write", path=project)
        assert survived(project)
    made = tmp_path / "made"
    made.mkdir()
    (made / "config.json").write_text("{}")
    mark_folder(made)
    refused("train", kind, sample, "-o", made, says="already exists", path=made)
    assert sorted(p.name for p in made.iterdir()) == [".hardneg", "config.json"]
