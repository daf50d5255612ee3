"""The `relabel` verb: apply a treatment of flagged negatives to a training file, using a judgment store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import app, handle_errors, print_json, print_table, progress
from hardneg.cli.judge_cmds import print_skipped_subsets
from hardneg.data.formats import check_output
from hardneg.errors import ConfigError
from hardneg.judging.store import JudgmentStore
from hardneg.relabeling import RelabelOptions, relabel_file


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
    store_path: Path = typer.Option(..., "--store", help="Judgment store (SQLite) with the verdicts."),
    output: str = typer.Option(
        ...,
        "-o",
        "--output",
        help="Cleaned output, in the format its name says: .jsonl, .jsonl.gz, .parquet (an existing file is "
        "replaced), or a datasets folder (a name ending in .hf or /; an existing one only with --overwrite).",
    ),
    treatment: str = typer.Option(
        "rlhn",
        "--treatment",
        help="default | remove | hn_remove | rlhn | rlhn+filter (R+F: relabel better, remove worse).",
    ),
    tags: str = typer.Option("both", "--tags", help="Which verdict lists flag a negative: better | both."),
    max_flags: int = typer.Option(8, "--max-flags", help="Drop instances with more flags as ambiguous (-1: no limit)."),
    min_negatives: int = typer.Option(1, "--min-negatives", help="Drop an instance left with fewer negatives."),
    skip_subsets: str = typer.Option(
        "arguana",
        "--skip-subsets",
        help="Comma-separated subsets passed unchanged whatever their verdicts (ArguAna: its positives are "
        "counter-arguments); '' relabels every subset.",
    ),
    stages: str = typer.Option(None, "--stages", help="Use only these stages' verdicts: 1,2 or 1:HASH,2:HASH."),
    on_failed: str = typer.Option("keep", "--on-failed", help="Failed final verdicts: keep (unchanged) | drop."),
    on_unknown: str = typer.Option(
        "error", "--on-unknown", help="Verdict docids not among the negatives: error | count."
    ),
    to: str = typer.Option(
        None, "--to", help="Check the output format: jsonl | jsonl.gz | parquet | hf (must be what OUT's name says)."
    ),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Write an empty output for an empty input."),
    allow_partial: bool = typer.Option(
        False,
        "--allow-partial",
        help="Relabel although the run left routed instances unjudged (they pass unchanged, counted unjudged).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing output folder hardneg wrote (never a folder of other files)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Remove or relabel the negatives the judges flagged, and report what changed per subset."""

    check_output(output, overwrite=overwrite, param="output")
    if not store_path.exists():
        raise ConfigError(f"{store_path}: no such judgment store")
    options = RelabelOptions(
        treatment=treatment,  # type: ignore[arg-type]
        tags=tags,  # type: ignore[arg-type]
        max_flags=None if max_flags < 0 else max_flags,
        skip_subsets=[s.strip() for s in skip_subsets.split(",") if s.strip()],
        min_negatives=min_negatives,
        on_failed=on_failed,  # type: ignore[arg-type]
        on_unknown=on_unknown,  # type: ignore[arg-type]
    )
    with JudgmentStore(store_path, readonly=True) as store:
        verdicts = store.final_verdicts(parse_stages(stages, store), allow_partial=allow_partial)
    with progress(quiet=True if as_json else None) as bar:
        task = bar.add_task("relabel", total=None)
        report = relabel_file(
            input_file, output, verdicts, options, to=to, progress=lambda n: bar.update(task, completed=n),
            allow_empty=allow_empty, overwrite=overwrite,
        )  # fmt: skip
    if as_json:
        print_json({"input": str(input_file), "output": str(output), "verdicts": len(verdicts), **report.to_dict()})
        return
    print_table(counts_table(report, f"{treatment} ({tags}) -> {output}"))
    print_skipped_subsets(report.skipped_subsets(), judged=True)
