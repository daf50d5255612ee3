"""`relabel_file`: stream a training file through a treatment into another file, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from hardneg.data.atomic import atomic_path
from hardneg.data.formats import detect_format, file_format
from hardneg.data.io import read_instances, write_rows
from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judge.verdicts import FinalVerdict
from hardneg.progress import CountProgress
from hardneg.relabel.treatments import RelabelOptions, RelabelReport, relabel_instances


def _output_format(in_path: Path, out_path: Path, to: str | None) -> str:
    named = file_format(out_path.name.lower())
    if to is not None:
        if to not in ("jsonl", "jsonl.gz", "parquet"):
            raise ConfigError(f"unknown output format {to!r}: choose jsonl, jsonl.gz or parquet")
        if named is not None and named != to:
            raise ConfigError(f"{out_path}: the name says {named} but the format asked for is {to}")
        return to
    if named is not None:
        return named
    fmt = detect_format(in_path)
    if fmt == "hf":
        raise ConfigError(f"{out_path}: name the output .jsonl, .jsonl.gz or .parquet (or pass `to`)")
    return fmt


def relabel_file(
    in_path: str | Path,
    out_path: str | Path,
    verdicts: Mapping[str, FinalVerdict],
    options: RelabelOptions | None = None,
    *,
    to: str | None = None,
    progress: CountProgress | None = None,
    report: RelabelReport | None = None,
) -> RelabelReport:
    """Stream IN through the treatment into OUT (atomic: nothing is left under OUT if anything fails).

    The output format is `to` if given, else the one OUT's extension names, else IN's format.
    `progress(n)` is called after each instance read.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    options = options or RelabelOptions()
    fmt = _output_format(in_path, out_path, to)
    report = report if report is not None else RelabelReport(options)

    def counted() -> Iterator[Instance]:
        for number, inst in enumerate(read_instances(in_path), start=1):
            yield inst
            if progress is not None:
                progress(number)

    rows = (inst.to_row() for inst in relabel_instances(counted(), verdicts, options, report=report, source=in_path))
    suffix = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}[fmt]
    with atomic_path(out_path) as tmp:
        # write_rows picks the format by extension: write beside the temp file under a name that says it.
        inner = tmp.with_name(tmp.name + suffix)
        write_rows(inner, rows)
        os.replace(inner, tmp)
    return report
