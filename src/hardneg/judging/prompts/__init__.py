"""Prompts of the listwise judges: templates (`templates`, the shipped `*.txt`) and reading answers (`parse`)."""

from hardneg.judging.prompts.parse import VerdictTags, parse_verdict, verdict_output
from hardneg.judging.prompts.templates import SHIPPED_TEMPLATES, Template, chunk_docids, load_template

__all__ = [
    "SHIPPED_TEMPLATES",
    "Template",
    "VerdictTags",
    "chunk_docids",
    "load_template",
    "parse_verdict",
    "verdict_output",
]
