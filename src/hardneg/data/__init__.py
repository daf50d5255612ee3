"""Data: typed records, formats and streaming IO, HF datasets, BEIR folders, exports, validation, the sample.

`source` is the adapter every stage uses to accept instances, a `datasets.Dataset`, a path or a
`load_dataset` spec, and to give back the same kind.
"""

from hardneg.data.beir import BeirData, load_beir
from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance, Passage, passage_text
from hardneg.data.source import InstanceSource, as_source, from_dataset, to_dataset

__all__ = [
    "BeirData",
    "Instance",
    "InstanceSource",
    "Passage",
    "as_source",
    "from_dataset",
    "load_beir",
    "passage_text",
    "read_instances",
    "to_dataset",
    "write_instances",
]
