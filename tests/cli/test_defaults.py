"""Every CLI default is the library's: an option that sets a library verb's keyword or a library config's field
shows the default the library takes without it (the CLI reads them from the library: `hardneg.cli.options`).

The library side is read here on its own terms: a config made with no argument, a function's signature.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import typer

from hardneg.analysis.annotate import export_tasks
from hardneg.analysis.judge_eval import evaluate_judges
from hardneg.analysis.testbed import build_testbed
from hardneg.cli import app
from hardneg.data.export import export
from hardneg.evaluation.compare import compare_runs
from hardneg.evaluation.run import evaluate, evaluate_model
from hardneg.judging.run import judge
from hardneg.mining import MineConfig
from hardneg.mining.miner import mine
from hardneg.pipeline import clean
from hardneg.relabeling import RelabelOptions, relabel
from hardneg.relabeling.files import relabel_file
from hardneg.training.reranker import RerankerConfig, train_reranker
from hardneg.training.retriever import RetrieverConfig, train_retriever

Owner = type | Callable[..., Any]


def library_defaults(owner: Owner) -> dict[str, Any]:
    """{name: default} of a config (made with no argument) or of a function's keywords."""
    if dataclasses.is_dataclass(owner):
        made = owner()  # type: ignore[operator]
        return {f.name: getattr(made, f.name) for f in dataclasses.fields(made)}
    return {
        name: p.default
        for name, p in inspect.signature(owner).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def cli_defaults(path: str) -> dict[str, Any]:
    """{parameter: default} of the options and arguments of `hardneg PATH` (e.g. ``"train retriever"``) that have
    one (not the required ones)."""
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return {p.name: p.default for p in command.params if not p.required}


def skip_subsets(text: str) -> tuple[str, ...]:
    return tuple(s for s in text.split(",") if s)


# verb -> the library owners whose defaults its options show (an option named as a field or keyword sets it), and
# options named otherwise: {option: (owner, the field or keyword, the option's value as the library takes it)}
VERBS: dict[str, tuple[list[Owner], dict[str, tuple[Owner, str, Callable[[Any], Any]]]]] = {
    "mine": (
        [MineConfig, mine],
        {
            "rank_range": (MineConfig, "range_start", lambda text: int(text.split("-")[0])),
            "no_cache": (MineConfig, "use_cache", lambda no: not no),
        },
    ),
    "train retriever": ([RetrieverConfig, train_retriever], {}),
    "train reranker": ([RerankerConfig, train_reranker], {}),
    "relabel": (
        [RelabelOptions, relabel_file, relabel],
        {
            "max_flags": (RelabelOptions, "max_flags", lambda n: None if n < 0 else n),
            "skip_subsets": (RelabelOptions, "skip_subsets", skip_subsets),
        },
    ),
    "judge": ([judge], {}),
    "clean": ([clean], {"skip_subsets": (RelabelOptions, "skip_subsets", skip_subsets)}),
    "evaluate": ([evaluate, evaluate_model], {}),
    "compare": ([compare_runs], {"metric": (compare_runs, "metrics", tuple)}),
    "convert": ([export], {}),
    "testbed": ([build_testbed], {}),
    "judge-eval": ([evaluate_judges], {}),
    "annotate export": ([export_tasks], {}),
}
# Where the CLI's default is the library's in another form: a repeatable option (none given is the library's None).
SAME_AS_NONE = {("judge-eval", "configs"), ("judge-eval", "external")}
# Fields no option sets, and why.
NO_OPTION = {
    MineConfig: {"block_size", "rrf_k", "range_end"},  # tuning knobs; range_end is the B of --range A-B
    RetrieverConfig: {"lora_dropout", "quiet"},  # quiet: the root --quiet
    RerankerConfig: {"quiet"},
    RelabelOptions: set(),
}
CONFIG_VERBS = {MineConfig: "mine", RetrieverConfig: "train retriever", RerankerConfig: "train reranker"}
CONFIG_VERBS[RelabelOptions] = "relabel"


def mismatches(cli: dict[str, Any], owners: list[Owner], renamed: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{option: (its default, the library's)} for every option whose default is not the library's."""
    found: dict[str, tuple[Any, Any]] = {}
    for option, default in cli.items():
        if option in renamed:
            owner, name, as_library = renamed[option]
            expected, given = library_defaults(owner)[name], as_library(default)
        else:
            owner_defaults = [library_defaults(o) for o in owners if option in library_defaults(o)]
            if not owner_defaults:
                continue
            expected, given = owner_defaults[0][option], default
        if isinstance(expected, tuple) and isinstance(given, list):
            given = tuple(given)
        if given != expected:
            found[option] = (default, expected)
    return found


@pytest.mark.parametrize("verb", VERBS)
def test_every_option_shows_the_librarys_default(verb: str) -> None:
    owners, renamed = VERBS[verb]
    cli = {k: v for k, v in cli_defaults(verb).items() if (verb, k) not in SAME_AS_NONE}
    assert mismatches(cli, owners, renamed) == {}


def test_the_range_shows_both_ends_of_the_configs_range() -> None:
    config = MineConfig()
    assert cli_defaults("mine")["rank_range"] == f"{config.range_start}-{config.range_end}"


@pytest.mark.parametrize("config", list(NO_OPTION), ids=lambda c: c.__name__)
def test_every_config_field_has_its_option(config: type) -> None:
    """A field added to a config gets an option (with the field's default), or a line in NO_OPTION saying why not."""
    verb = CONFIG_VERBS[config]
    options = set(cli_defaults(verb)) | {name for owner, name, _ in VERBS[verb][1].values() if owner is config}
    fields = {f.name for f in dataclasses.fields(config)}
    assert fields - options - NO_OPTION[config] == set()
    assert NO_OPTION[config] <= fields  # no stale excuse


def test_a_default_restated_wrongly_is_found() -> None:
    """The check itself: an option that says 7 where the config says 30 is reported, a rename too."""
    cli = {"negatives": 7, "seed": 42, "rank_range": "10-100", "unrelated": 1}
    renamed = {"rank_range": (MineConfig, "range_start", lambda text: int(text.split("-")[0]))}
    assert mismatches(cli, [MineConfig], renamed) == {"negatives": (7, 30), "rank_range": ("10-100", 0)}
