"""HF `datasets` folders: read a `save_to_disk` folder (or a folder of local data files), write a
`save_to_disk` folder.

Reading streams: `load_from_disk` memory-maps the Arrow files, and rows are taken batch by batch;
a folder of data files (`*.jsonl`, `*.parquet`, ...) is read with `load_dataset(..., streaming=True)`.
A `DatasetDict` folder is read through its only split, or its `train` split when it has several.

Writing goes through hardneg's Parquet encoding (see `hardneg.data.formats`); the names of the JSON-text
columns are kept in a `hardneg.json` file inside the folder (datasets does not keep Arrow metadata),
so hardneg reads its own folders back unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hardneg.data.formats import HF_SIDECAR, decode_row, is_hf_saved_folder
from hardneg.errors import InputError


def _quiet_datasets() -> Any:
    import datasets

    # hardneg shows its own progress; the datasets bars would interleave with it on stderr.
    datasets.disable_progress_bars()
    return datasets


def _empty_saved(path: Path) -> bool:
    """A `save_to_disk` folder of zero rows: datasets writes no data file for it, and cannot load it back."""
    state = path / "state.json"
    try:
        return state.is_file() and json.loads(state.read_text(encoding="utf-8")).get("_data_files") == []
    except (OSError, ValueError):
        return False


def _load_saved(path: Path) -> Any:
    datasets = _quiet_datasets()
    if _empty_saved(path):
        return [], path
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise InputError(path, None, "-", f"not a readable datasets folder: {exc}") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if len(splits) == 1:
            return loaded[splits[0]], path / splits[0]
        if "train" in loaded:
            return loaded["train"], path / "train"
        raise InputError(path, None, "split", f"several splits and none is 'train': {', '.join(splits)}")
    return loaded, path


def datasets_dataset() -> type:
    return _quiet_datasets().Dataset


def _json_columns(folder: Path) -> list[str] | None:
    sidecar = folder / HF_SIDECAR
    if not sidecar.is_file():
        return None
    return list(json.loads(sidecar.read_text(encoding="utf-8")).get("json_columns", []))


def iter_hf_rows(path: str | Path, *, batch_size: int = 256) -> Iterator[tuple[int, Any]]:
    """Yield (row number from 1, row dict) from a datasets folder, without loading it into memory."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, None, "-", "no such folder")
    if is_hf_saved_folder(path):
        dataset, folder = _load_saved(path)
        json_columns = _json_columns(folder)
        if json_columns is None:
            json_columns = _json_columns(path)
        number = 0
        if not isinstance(dataset, datasets_dataset()):
            return  # an empty folder (see `_empty_saved`)
        for batch in dataset.iter(batch_size=batch_size):  # type: ignore[attr-defined]  # a datasets.Dataset
            columns = list(batch)
            size = len(batch[columns[0]]) if columns else 0
            for i in range(size):
                number += 1
                row = {name: batch[name][i] for name in columns}
                yield number, (decode_row(row, json_columns) if json_columns is not None else row)
        return
    datasets = _quiet_datasets()
    try:
        stream = datasets.load_dataset(str(path), split="train", streaming=True)
        for number, row in enumerate(stream, start=1):
            yield number, row
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, None, "-", f"cannot read the data files of this folder with datasets: {exc}") from None


def count_hf_rows(path: str | Path) -> int | None:
    """Rows of a `save_to_disk` folder (None for a folder of data files)."""
    path = Path(path)
    if not is_hf_saved_folder(path):
        return None
    dataset, _folder = _load_saved(path)
    return len(dataset) if isinstance(dataset, list) else int(dataset.num_rows)


def save_parquet_as_hf(parquet: Path, folder: Path, *, json_columns: list[str], cache_dir: Path) -> None:
    """Turn a Parquet file written by hardneg into a `save_to_disk` folder (plus the `hardneg.json` sidecar)."""
    datasets = _quiet_datasets()
    import pyarrow.parquet as pq

    if pq.ParquetFile(parquet).metadata.num_rows == 0:  # from_parquet finds "no data" in an empty file
        dataset = datasets.Dataset(datasets.table.InMemoryTable(pq.read_table(parquet)))
    else:
        dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(cache_dir))
    dataset.save_to_disk(str(folder))
    del dataset
    (folder / HF_SIDECAR).write_text(json.dumps({"json_columns": json_columns}), encoding="utf-8")
