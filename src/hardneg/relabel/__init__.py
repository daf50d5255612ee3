"""Relabelling: treatments of flagged negatives (`treatments`), the file adapter (`files`), the front door (`run`).

Calling the package runs `relabel` (`hardneg.relabel(data, verdicts, treatment="rlhn")`).
"""

from hardneg.relabel.files import relabel_file
from hardneg.relabel.run import as_verdicts, relabel, relabel_options
from hardneg.relabel.treatments import (
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
from hardneg.stagemodule import make_callable

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

make_callable(__name__, relabel)
