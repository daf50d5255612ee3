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
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from hardneg.data.formats import OUTPUT_RULE, check_output
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

    def check_output(self, output: str | Path | None, *, overwrite: bool = False, param: str = "output") -> None:
        """Before any work: a path source needs an `output`, and `output` must follow the output rule
        (`hardneg.data.formats.check_output`). Errors name `param`."""
        if output is not None:
            check_output(output, overwrite=overwrite, param=param)
        elif self.kind == "path":
            raise ConfigError(
                f"the input {self.name} is a path, so the result is written to a path: name it ({OUTPUT_RULE})",
                param=param,
            )

    def emit(self, instances: Iterable[Instance], *, output: str | Path | None = None, overwrite: bool = False) -> Any:
        """The stage's result in the kind of this source: a list, a `Dataset`, or the written output's path."""
        self.check_output(output, overwrite=overwrite)
        if output is not None:
            write_instances(output, instances, overwrite=overwrite)
            return Path(output)
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


# ----------------------------------------------------------------- a few queries: limit=N, or sample=N with seed=S

T = TypeVar("T")


@dataclass(frozen=True)
class Selection:
    """Which queries a run used: the first `limit` (input order), or a seeded random `sample` (kept in input
    order); `used` of `total`."""

    limit: int | None
    sample: int | None
    seed: int
    used: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "sample": self.sample,
            "seed": self.seed if self.sample is not None else None,
            "used": self.used,
            "total": self.total,
        }

    def describe(self, noun: str = "queries") -> str:
        """`the first 5 of 24 queries` / `a random sample of 5 of 24 queries (seed 0)`."""
        if self.limit is not None:
            return f"the first {self.used} of {self.total} {noun} (limit {self.limit})"
        return f"a random sample of {self.used} of {self.total} {noun} (sample {self.sample}, seed {self.seed})"


def check_selection(limit: int | None, sample: int | None) -> None:
    """`limit` and `sample` are counts >= 1, and not both given."""
    if limit is not None and sample is not None:
        raise ConfigError("give limit (the first N) or sample (N at random), not both", param="sample")
    for name, value in (("limit", limit), ("sample", sample)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"must be a whole number >= 1; got {value!r}", param=name)


def chosen_positions(total: int, *, limit: int | None = None, sample: int | None = None, seed: int = 0) -> list[int]:
    """The 0-based positions `limit` / `sample` choose among `total` items, in input order (all without either).

    A sample is `random.Random(seed).sample(range(total), sample)`, sorted: the same seed and total give the
    same queries. Asking for more than there are takes them all.
    """
    check_selection(limit, sample)
    if limit is not None:
        return list(range(min(limit, total)))
    if sample is not None and sample < total:
        return sorted(random.Random(seed).sample(range(total), sample))
    return list(range(total))


def select_items(
    items: Sequence[T], *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> tuple[list[T], Selection | None]:
    """The items `limit` / `sample` choose (see `chosen_positions`), and the `Selection` (None without either)."""
    positions = chosen_positions(len(items), limit=limit, sample=sample, seed=seed)
    if limit is None and sample is None:
        return list(items), None
    return [items[i] for i in positions], Selection(limit, sample, seed, len(positions), len(items))


class _Picked:
    """A re-iterable, streamed view of a source: the items at `positions` (sorted), or those `keep` accepts."""

    def __init__(
        self, source: InstanceSource, positions: list[int] | None, keep: Callable[[Instance], bool] | None = None
    ) -> None:
        self.source, self.positions, self.keep = source, positions, keep

    def __iter__(self) -> Iterator[Instance]:
        if self.positions is None:
            yield from (instance for instance in self.source if self.keep is None or self.keep(instance))
            return
        wanted = iter(self.positions)
        target = next(wanted, None)
        for index, instance in enumerate(self.source):
            if target is None:
                return  # past the last chosen one: the rest of the file is not read
            if index == target:
                yield instance
                target = next(wanted, None)

    def __len__(self) -> int:
        return len(self.positions) if self.positions is not None else sum(1 for _ in self)


def select_source(
    data: Any, *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> tuple[InstanceSource, Selection | None]:
    """The first `limit` instances of `data`, or a seeded random `sample` of them (kept in input order), and the
    `Selection` saying how many of how many; with neither, `as_source(data)` and None.

    A `datasets.Dataset` stays a Dataset (`Dataset.select`); a file is streamed, never held whole (its rows are
    counted first, to know the total); instances in memory come back as a list.
    """
    source = as_source(data)
    check_selection(limit, sample)
    if limit is None and sample is None:
        return source, None
    if source.kind == "path":
        total = len(source)
        positions = chosen_positions(total, limit=limit, sample=sample, seed=seed)
        picked = InstanceSource("instances", source.name, _Picked(source, positions))
    elif source.kind == "dataset" and hasattr(source.data, "select") and hasattr(source.data, "__len__"):
        total = len(source.data)
        positions = chosen_positions(total, limit=limit, sample=sample, seed=seed)
        picked = InstanceSource("dataset", source.name, source.data.select(positions))
    else:
        items = list(source)
        total = len(items)
        positions = chosen_positions(total, limit=limit, sample=sample, seed=seed)
        picked = InstanceSource("instances", source.name, [items[i] for i in positions])
    return picked, Selection(limit, sample, seed, len(positions), total)


def filter_source(source: InstanceSource, keep: Callable[[Instance], bool]) -> InstanceSource:
    """The instances of `source` that `keep` accepts, streamed (re-iterable; a file is never held whole)."""
    return InstanceSource("instances", source.name, _Picked(source, None, keep))
