"""`relabel_file`: stream a training file through a treatment into another file, atomically."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from hardneg.data.formats import Format, check_output
from hardneg.data.io import open_writer, read_instances
from hardneg.data.records import Instance
from hardneg.errors import ConfigError, EmptyInput
from hardneg.judging.verdicts import FinalVerdict
from hardneg.progress import CountProgress
from hardneg.relabeling.treatments import RelabelOptions, RelabelReport, relabel_instances


def _output_format(out_path: str, to: str | None, *, overwrite: bool) -> Format:
    """The format OUT's name says (`check_output`: the same rule as every writer); `to`, if given, must agree."""
    fmt = check_output(out_path, overwrite=overwrite, param="out_path")
    if to is not None:
        if to not in ("jsonl", "jsonl.gz", "parquet", "hf"):
            raise ConfigError(f"unknown output format {to!r}: choose jsonl, jsonl.gz, parquet or hf", param="to")
        if to != fmt:
            raise ConfigError(f"{out_path}: the name says {fmt} but the format asked for is {to}", param="to")
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
    overwrite: bool = False,
) -> RelabelReport:
    """Stream IN through the treatment into OUT (atomic: nothing is left under OUT if anything fails).

    The output format is the one OUT's name says (`hardneg.data.formats.check_output`: .jsonl, .jsonl.gz,
    .parquet, or .hf / a trailing / for a datasets folder); `to`, if given, must agree with it. An existing datasets
    folder is replaced only with `overwrite` and only if hardneg wrote it; an existing file is replaced.
    `progress(n)` is called after each instance read.
    """
    in_path, out_text = Path(in_path), str(out_path)
    options = options or RelabelOptions()
    fmt = _output_format(out_text, to, overwrite=overwrite)
    report = report if report is not None else RelabelReport(options)

    def counted() -> Iterator[Instance]:
        for number, inst in enumerate(read_instances(in_path), start=1):
            yield inst
            if progress is not None:
                progress(number)

    treated = relabel_instances(counted(), verdicts, options, report=report, source=in_path)
    with open_writer(out_text, fmt=fmt, overwrite=overwrite, param="out_path") as sink:
        for instance in treated:
            sink.write(instance.to_row())
        if report.total.instances_in == 0 and not allow_empty:
            raise EmptyInput(in_path)
    return report
