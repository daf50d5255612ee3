"""The `relabel` verb: apply a treatment of flagged negatives to a training file, using a judgment store."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer

from hardneg.cli import options as opt
from hardneg.cli.common import app, console, count_bar, handle_errors, print_json, print_table, progress
from hardneg.data.formats import check_output
from hardneg.errors import ConfigError
from hardneg.judging.store import JudgmentStore
from hardneg.relabeling import RelabelOptions, relabel_file

# An option that sets a `RelabelOptions` field, with the field's default.
_option = functools.partial(opt.library, RelabelOptions)
TREATMENT_HELP = "default | remove | hn_remove | rlhn | rlhn+filter (R+F: relabel better, remove worse)."
MAX_FLAGS_HELP = "Drop instances with more flags as ambiguous (-1: no limit)."


def _flags_shown(max_flags: int | None) -> int:
    """`RelabelOptions.max_flags` as the flag takes it: -1 for no limit."""
    return -1 if max_flags is None else max_flags


def skip_subsets_option(help: str) -> Any:
    """``--skip-subsets a,b``: `RelabelOptions.skip_subsets` written as the flag takes it."""
    return _option("skip_subsets", "--skip-subsets", shown=",".join, help=help)


def subsets(text: str) -> list[str]:
    """``a, b,`` -> ``["a", "b"]``; ``''`` -> no subset."""
    return [s.strip() for s in text.split(",") if s.strip()]


def print_skipped_subsets(skipped: dict[str, int], *, judged: bool) -> None:
    """Say which subsets were passed through unchanged (`skip_subsets`), and how to include them."""
    if not skipped:
        return
    counts = ", ".join(f"{name} {n}" for name, n in skipped.items())
    what = "passed unchanged" if judged else "passed unchanged without judging"
    console.print(
        f"skipped subsets ({what}): {counts} instance(s); --skip-subsets '' includes them",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def parse_stages(text: str | None, store: Any) -> dict[int, str] | None:
    """`1,2` or `1:HASH,2:HASH` -> {stage: config_hash} for `JudgmentStore.final_verdicts`."""
    if not text:
        return None
    by_stage: dict[int, set[str]] = {}
    for row in store.stage_summary():
        by_stage.setdefault(int(row["stage"]), set()).add(row["config_hash"])
    chosen: dict[int, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        stage_text, _, chash = part.partition(":")
        try:
            stage = int(stage_text)
        except ValueError:
            raise ConfigError(f"--stages: {part!r} is not a stage number (expected 1,2 or 1:HASH)") from None
        hashes = by_stage.get(stage, set())
        if chash:
            if chash not in hashes:
                raise ConfigError(f"--stages: stage {stage} has no configuration {chash} in the store")
        elif len(hashes) == 1:
            chash = next(iter(hashes))
        elif not hashes:
            raise ConfigError(f"--stages: no judgments of stage {stage} in the store")
        else:
            raise ConfigError(
                f"--stages: stage {stage} has several configurations ({', '.join(sorted(hashes))}): "
                f"name one as {stage}:HASH"
            )
        chosen[stage] = chash
    return chosen


def counts_table(report: Any, title: str) -> Any:
    """One row per count, one column per subset and the total (narrow terminals stay readable)."""
    from rich.table import Table

    groups = [*sorted(report.subsets.items()), ("total", report.total)]
    table = Table(title=title)
    table.add_column("")
    for name, _ in groups:
        table.add_column(name, justify="right", style="bold" if name == "total" else None)
    rows: list[tuple[str, str]] = [
        ("instances in", "instances_in"),
        ("kept unchanged", "kept"),
        ("changed", "changed"),
        ("flagged instances", "flagged_instances"),
        ("negatives moved", "negatives_moved"),
        ("negatives removed", "negatives_removed"),
        ("positives after", "positives_after"),
        ("negatives after", "negatives_after"),
        ("unjudged (unchanged)", "unjudged"),
        ("  of which not final", "not_final"),
        ("failed judgment", "failed"),
        ("skipped subset", "skipped_subset"),
        ("unknown docids", "unknown_docids"),
    ]
    for label, attr in rows:
        table.add_row(label, *(str(getattr(c, attr)) for _, c in groups))
    for reason in report.total.dropped:
        table.add_row(f"dropped: {reason}", *(str(c.dropped.get(reason, 0)) for _, c in groups))
    return table


@app.command()
@handle_errors
def relabel(
    input_file: Path = typer.Argument(
        ..., metavar="IN", help="Training file (.jsonl, .jsonl.gz, .parquet, datasets folder)."
    ),
    store_path: Path = opt.store("Judgment store (SQLite) with the verdicts."),
    output: str = opt.output(f"Cleaned output, {opt.OUTPUT_RULE}"),
    treatment: str = _option("treatment", "--treatment", help=TREATMENT_HELP),
    tags: str = _option("tags", "--tags", help="Which verdict lists flag a negative: better | both."),
    max_flags: int = _option("max_flags", "--max-flags", shown=_flags_shown, help=MAX_FLAGS_HELP),
    min_negatives: int = _option(
        "min_negatives", "--min-negatives", help="Drop an instance left with fewer negatives."
    ),
    skip_subsets: str = skip_subsets_option(
        "Comma-separated subsets passed unchanged whatever their verdicts (ArguAna: its positives are "
        "counter-arguments); '' relabels every subset."
    ),
    stages: str = typer.Option(None, "--stages", help="Use only these stages' verdicts: 1,2 or 1:HASH,2:HASH."),
    on_failed: str = _option("on_failed", "--on-failed", help="Failed final verdicts: keep (unchanged) | drop."),
    on_unknown: str = _option(
        "on_unknown", "--on-unknown", help="Verdict docids not among the negatives: error | count."
    ),
    to: str = typer.Option(
        None, "--to", help="Check the output format: jsonl | jsonl.gz | parquet | hf (must be what OUT's name says)."
    ),
    allow_empty: bool = opt.allow_empty("Write an empty output for an empty input."),
    allow_partial: bool = opt.allow_partial(
        "Relabel although the run left routed instances unjudged (they pass unchanged, counted unjudged)."
    ),
    overwrite: bool = opt.overwrite(),
    as_json: bool = opt.as_json("Print the report as one JSON object."),
) -> None:
    """Remove or relabel the negatives the judges flagged, and report what changed per subset."""

    check_output(output, overwrite=overwrite, param="output")  # before the store is read
    if not store_path.exists():
        raise ConfigError(f"{store_path}: no such judgment store")
    options = RelabelOptions(
        treatment=treatment, tags=tags, max_flags=None if max_flags < 0 else max_flags,  # type: ignore[arg-type]
        skip_subsets=subsets(skip_subsets), min_negatives=min_negatives, on_failed=on_failed,  # type: ignore[arg-type]
        on_unknown=on_unknown,  # type: ignore[arg-type]
    )  # fmt: skip
    with JudgmentStore(store_path, readonly=True) as store:
        verdicts = store.final_verdicts(parse_stages(stages, store), allow_partial=allow_partial)
    with progress(quiet=True if as_json else None) as bar:
        report = relabel_file(
            input_file, output, verdicts, options, to=to, progress=count_bar(bar, "relabel"), allow_empty=allow_empty,
            overwrite=overwrite,
        )  # fmt: skip
    if as_json:
        print_json({"input": str(input_file), "output": str(output), "verdicts": len(verdicts), **report.to_dict()})
        return
    print_table(counts_table(report, f"{treatment} ({tags}) -> {output}"))
    print_skipped_subsets(report.skipped_subsets(), judged=True)
