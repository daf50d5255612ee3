"""Relabelling: treatments of flagged negatives (`treatments`), the file adapter (`files`), the front door (`run`).

The stage's verb is `hardneg.relabel(data, verdicts, treatment="rlhn")` (`hardneg.relabeling.run.relabel`).
"""

from hardneg.relabeling.files import relabel_file
from hardneg.relabeling.run import as_verdicts, relabel, relabel_options
from hardneg.relabeling.treatments import (
    DROP_REASONS,
    TREATMENTS,
    RelabelOptions,
    RelabelReport,
    SubsetCounts,
    Tags,
    Treatment,
    relabel_instances,
    verdicts_from_dicts,
)

__all__ = [
    "DROP_REASONS",
    "TREATMENTS",
    "RelabelOptions",
    "RelabelReport",
    "SubsetCounts",
    "Tags",
    "Treatment",
    "as_verdicts",
    "relabel",
    "relabel_file",
    "relabel_instances",
    "relabel_options",
    "verdicts_from_dicts",
]
