"""`relabel_file`: stream a training file through a treatment into another file, atomically."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from hardneg.data.formats import detect_format, file_format
from hardneg.data.io import open_writer, read_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError, EmptyInput
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
    allow_empty: bool = False,
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

    treated = relabel_instances(counted(), verdicts, options, report=report, source=in_path)
    with open_writer(out_path, fmt=fmt) as sink:  # type: ignore[arg-type]
        for instance in treated:
            sink.write(instance.to_row())
        if report.total.instances_in == 0 and not allow_empty:
            raise EmptyInput(in_path)
    return report
