"""Where training instances come from, and the same kind going back: the adapter every stage uses.

A stage accepts any of these as its `data` and returns the kind it was given:

- instances in memory (a list, or any iterable of `Instance`): a list of `Instance` comes back;
- a `datasets.Dataset` with Tevatron columns (`query_id`, `query`, `positive_passages`, `negative_passages`,
  `subset`, any others kept): a `Dataset` comes back, with the input's features where the rows still fit them;
- a path to a training file or folder (`.jsonl`, `.jsonl.gz`, `.parquet`, a datasets folder): the result is
  written (atomically) to the `output` path the caller names, and that path comes back;
- any other string is a `datasets.load_dataset` spec (a Hub id such as ``Tevatron/msmarco-passage`` when online,
  or ``json:data/*.jsonl``-style local specs): it is loaded (split ``train`` unless named) and treated as a
  `Dataset`.

Every row is validated like a file row: a bad one raises `InputError` naming the source, the row and the field.
A source is re-iterable (stages read it once per pass), and a file is streamed, never held in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hardneg.data.io import count_rows, read_instances, write_instances
from hardneg.data.records import Instance
from hardneg.data.validate import check_row
from hardneg.errors import ConfigError, EmptyInput, InputError, Problem

SourceKind = Literal["instances", "dataset", "path"]
# Names that look like files are never sent to the Hub: a typo in a file name is "no such file".
_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".hf")


def is_dataset(value: Any) -> bool:
    """A `datasets.Dataset` or `IterableDataset`, checked without importing datasets."""
    return type(value).__module__.startswith("datasets.") and hasattr(value, "features")


# `load_dataset` builders for local files, written `builder:FILES` (`json:data/*.jsonl`).
_FILE_BUILDERS = ("json", "parquet", "csv", "arrow", "text")


def _looks_like_path(text: str) -> bool:
    if text.partition(":")[0] in _FILE_BUILDERS and ":" in text:
        return False
    lowered = text.lower().rstrip("/")
    return (
        os.path.exists(text)
        or lowered.endswith(_FILE_SUFFIXES)
        or text.startswith((".", "/", "~"))
        or text.endswith(("/", os.sep))
    )


def load_dataset_spec(spec: str, *, split: str | None = None) -> Any:
    """`datasets.load_dataset(spec, split=split or "train")`, with errors that name the spec."""
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"loading {spec!r} needs the datasets package: pip install 'hardneg[hf]'", param="data"
        ) from None
    datasets.disable_progress_bars()
    builder, _, files = spec.partition(":")
    try:
        if builder in _FILE_BUILDERS and files:
            return datasets.load_dataset(builder, data_files=files, split=split or "train")
        return datasets.load_dataset(spec, split=split or "train")
    except Exception as exc:  # the hub, the network or the files: all end here
        raise InputError(spec, None, "-", f"cannot load this dataset: {exc}") from None


@dataclass
class InstanceSource:
    """A re-iterable stream of validated instances, and what kind of data it came from."""

    kind: SourceKind
    name: str  # the path, the dataset's description or "<instances>", for messages
    data: Any  # the path, the Dataset, or the list of instances
    validated: int | None = None  # the instance count, once `validate` has read everything

    def __iter__(self) -> Iterator[Instance]:
        if self.kind == "path":
            yield from read_instances(self.data)
        elif self.kind == "instances":
            yield from self.data
        else:
            for number, row in enumerate(self.data, start=1):
                problems = check_row(row, self.name, number)
                if problems:
                    raise InputError.from_problems(problems)
                yield Instance.from_row(dict(row))

    def validate(self, *, allow_empty: bool = False) -> int:
        """Check every row (fields, duplicate query_ids) before any work; returns the number of instances.

        An input without any instance is an error unless `allow_empty` (an empty file is usually a mistake).
        The count is remembered, so a stage that validates again does not read the input twice.
        """
        if self.validated is None:
            self.validated = self._count_checked()
        if self.validated == 0 and not allow_empty:
            raise EmptyInput(self.name)
        return self.validated

    def _count_checked(self) -> int:
        if self.kind == "path":
            return sum(1 for _ in read_instances(self.data))
        seen: dict[str, int] = {}
        count = 0
        rows = (i.to_row() for i in self.data) if self.kind == "instances" else self.data
        for count, row in enumerate(rows, start=1):
            problems = check_row(row, self.name, count)
            qid = str(row.get("query_id")) if isinstance(row, dict) else None
            if qid is not None and not problems:
                first = seen.setdefault(qid, count)
                if first != count:
                    problems.append(
                        Problem(self.name, count, "query_id", f"duplicate query_id {qid!r} (first at row {first})")
                    )
            if problems:
                raise InputError.from_problems(problems)
        return count

    def __len__(self) -> int:
        if self.kind == "path":
            known = count_rows(self.data)
            return known if known is not None else sum(1 for _ in read_instances(self.data))
        return len(self.data)

    def emit(self, instances: Iterable[Instance], *, output: str | Path | None = None) -> Any:
        """The stage's result in the kind of this source: a list, a `Dataset`, or the written file's path."""
        if output is not None:
            write_instances(output, instances)
            return Path(output)
        if self.kind == "path":
            raise ConfigError(f"{self.name} is a file: name the file to write the result to", param="output")
        if self.kind == "instances":
            return list(instances)
        return to_dataset(instances, features=getattr(self.data, "features", None))


def as_source(data: Any, *, split: str | None = None) -> InstanceSource:
    """The `InstanceSource` of any accepted `data` (see the module docstring)."""
    if isinstance(data, InstanceSource):
        return data
    if isinstance(data, Path):
        return InstanceSource("path", str(data), data)
    if isinstance(data, str):
        if _looks_like_path(data):
            return InstanceSource("path", data, Path(data).expanduser())
        dataset = load_dataset_spec(data, split=split)
        return InstanceSource("dataset", data, dataset)
    if is_dataset(data):
        return InstanceSource("dataset", "<dataset>", data)
    if isinstance(data, Instance):
        raise ConfigError("expected several instances (a list), got one Instance", param="data")
    if isinstance(data, Iterable) and not isinstance(data, dict | bytes):
        items = list(data)
        wrong = next((item for item in items if not isinstance(item, Instance)), None)
        if wrong is not None:
            raise ConfigError(
                f"expected Instance items, got {type(wrong).__name__}; rows (dicts) go through a datasets.Dataset "
                "or Instance.from_row",
                param="data",
            )
        return InstanceSource("instances", "<instances>", items)
    raise ConfigError(
        f"expected instances, a datasets.Dataset, a path or a load_dataset spec; got {type(data).__name__}",
        param="data",
    )


def to_dataset(instances: Iterable[Instance], *, features: Any = None) -> Any:
    """A `datasets.Dataset` of Tevatron rows; with `features`, the input's schema is kept where the rows fit it."""
    try:
        import datasets
    except ImportError:
        raise ConfigError("a datasets.Dataset result needs the datasets package: pip install 'hardneg[hf]'") from None
    rows = [instance.to_row() for instance in instances]
    if features is not None:
        try:
            return datasets.Dataset.from_list(rows, features=features)
        except (TypeError, ValueError, KeyError):
            pass  # a treatment added fields the input schema lacks: let datasets infer it
    return datasets.Dataset.from_list(rows)


def from_dataset(dataset: Any) -> list[Instance]:
    """Validated instances of a `datasets.Dataset` with Tevatron columns."""
    source = as_source(dataset)
    source.validate()
    return list(source)
