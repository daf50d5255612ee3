"""Formats of training files: which format a path names, and the row codec of hardneg's Parquet / HF layout.

Input formats are chosen by extension: `.jsonl`, `.jsonl.gz`, `.parquet`, or a folder (HF `datasets`: a
`save_to_disk` folder, or a folder of local data files). Output formats (`output_kind`, one rule for every
writer): `.jsonl`, `.jsonl.gz`, `.parquet`, and an HF `save_to_disk` folder when the path ends in `.hf` or `/`;
`check_output` also refuses, before any work, an existing folder that may not be replaced.

Parquet layout written by hardneg (so rows whose extra fields differ in type or presence never break the
schema): the typed columns (for Tevatron rows `query_id`, `query`, `positive_passages`, `negative_passages`,
`subset`; passages are `struct<docid, title, text, _extra_json>`) keep their Arrow types; every other field
of a row is stored as JSON text in its own string column (listed in the file metadata `hardneg.json_columns`;
a null cell means the field was absent); fields first seen after the first batch go to the JSON object column
`_extra_json`. `decode_row` undoes this, so rows round-trip unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from hardneg.data.atomic import check_target
from hardneg.errors import ConfigError, InputError

Format = Literal["jsonl", "jsonl.gz", "parquet", "hf"]

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")

# Parquet metadata key listing the columns that hold JSON text, and the catch-all column / passage field.
JSON_COLUMNS_KEY = b"hardneg.json_columns"
EXTRA_JSON = "_extra_json"
# Marker in a `types` mapping: a list of passages (docid, title, text, extra fields as JSON).
PASSAGES = "passages"
# Sidecar file in an HF folder written by hardneg (datasets drops Arrow schema metadata).
HF_SIDECAR = "hardneg.json"


def file_format(name: str) -> Format | None:
    """The format a file name's suffix says (`name` lower-cased), or None."""
    if name.endswith((".jsonl.gz", ".json.gz")):
        return "jsonl.gz"
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def detect_format(path: str | Path) -> Format:
    """`jsonl`, `jsonl.gz`, `parquet` or `hf` (a `save_to_disk` folder or a folder of data files)."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "hf"
    found = file_format(name)
    if found is not None:
        return found
    raise InputError(path, None, "-", "unknown format: expected .jsonl, .jsonl.gz, .parquet or a datasets folder")


def is_hf_saved_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


OUTPUT_RULE = ".jsonl, .jsonl.gz, .parquet, or a datasets folder (a name ending in .hf or /)"


def output_kind(path: str | Path, *, param: str = "output") -> Format:
    """The format an output path names, from its name alone: the one rule of every writer of instances.

    `.jsonl` (or `.json`), `.jsonl.gz` (or `.json.gz`), `.parquet`, and `hf` (a datasets `save_to_disk` folder) for
    a name ending in `.hf` or `/`. Any other name raises `ConfigError` naming `param`. Whether the path may be
    written (an existing folder) is `check_output`'s question.
    """
    text = str(path)
    name = Path(text).name.lower()
    if text.endswith(("/", os.sep)) or name.endswith(".hf"):
        return "hf"
    found = file_format(name)
    if found is not None:
        return found
    raise ConfigError(f"{text}: unknown output format; name it {OUTPUT_RULE}", param=param)


def output_format(path: str | Path) -> Format:
    """`output_kind` (the older name)."""
    return output_kind(path)


def check_output(path: str | Path, *, overwrite: bool = False, param: str = "output") -> Format:
    """Check an output path before any work, and return its format (`output_kind`).

    An unknown name, or a path that may not be written, raises `ConfigError` naming `param`: a datasets folder
    output never replaces an existing folder unless `overwrite`, and then only one hardneg wrote (see
    `hardneg.data.atomic`); a file output replaces an existing file, never a folder.
    """
    fmt = output_kind(path, param=param)
    check_target(Path(path), folder=fmt == "hf", overwrite=overwrite, param=param)
    return fmt


def _decode_passages(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    for passage in value:
        if isinstance(passage, dict) and EXTRA_JSON in passage:
            passage = dict(passage)
            extra = passage.pop(EXTRA_JSON)
            if extra is not None:
                passage.update(json.loads(extra))
        out.append(passage)
    return out


def decode_row(row: dict[str, Any], json_columns: Iterable[str]) -> dict[str, Any]:
    """Undo the Parquet/HF encoding of hardneg's writer (JSON columns, `_extra_json`, passage extras)."""
    for column in json_columns:
        value = row.pop(column, None)
        if value is not None:
            row[column] = json.loads(value)
    extra = row.pop(EXTRA_JSON, None)
    for key in ("positive_passages", "negative_passages"):
        if key in row:
            row[key] = _decode_passages(row[key])
    if extra is not None:
        row.update(json.loads(extra))
    return row


def parquet_json_columns(schema: Any) -> list[str] | None:
    """The JSON columns of a hardneg-written Parquet schema, or None for a foreign file."""
    metadata = schema.metadata or {}
    if JSON_COLUMNS_KEY not in metadata:
        return None
    return list(json.loads(metadata[JSON_COLUMNS_KEY]))


def tevatron_types() -> dict[str, Any]:
    """Typed Parquet columns of a Tevatron row; other fields are stored as JSON text."""
    import pyarrow as pa

    return {
        "query_id": pa.string(),
        "query": pa.string(),
        "positive_passages": PASSAGES,
        "negative_passages": PASSAGES,
        "subset": pa.string(),
    }


def passage_type() -> Any:
    import pyarrow as pa

    return pa.list_(
        pa.struct([("docid", pa.string()), ("title", pa.string()), ("text", pa.string()), (EXTRA_JSON, pa.string())])
    )


def encode_passages(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    for passage in value:
        if not isinstance(passage, dict):
            out.append(passage)
            continue
        extra = {k: v for k, v in passage.items() if k not in ("docid", "title", "text")}
        out.append(
            {
                "docid": passage.get("docid"),
                "title": passage.get("title"),
                "text": passage.get("text"),
                EXTRA_JSON: json.dumps(extra, ensure_ascii=False) if extra else None,
            }
        )
    return out
