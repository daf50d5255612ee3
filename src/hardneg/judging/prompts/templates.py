"""Listwise prompt templates, identified by the sha256 of their text.

A template is plain text with three placeholders: `{query}`, `{positives}` (the reference: the labelled
positives' text, titles not sent) and `{documents}` (the negatives being judged, numbered `Doc (1)`, `Doc (2)`,
... in prompt order). Only these exact placeholders are replaced, so a template may contain other braces
(JSON examples, `[]`). Shipped variants live in `prompts/*.txt`; any other file can be loaded by path, for
example the paper's Figure 6 prompt. The answer format is the `<verdict>` with `<better>` / `<worse>` lists read
by `hardneg.judging.prompts.parse`.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hardneg.data.records import Instance
from hardneg.errors import ConfigError

# name -> what it is for
SHIPPED_TEMPLATES: dict[str, str] = {
    "stage1": "recall-oriented first pass: list every negative that helps answer the query",
    "stage2": "precision-oriented second pass: relevant in comparison with the reference",
    "scidocs": "citation data: relatedness of candidate papers to a paper title",
    "compact": "verdict only, no reasoning (cheapest output)",
}

PLACEHOLDERS = ("{query}", "{positives}", "{documents}")
REQUIRED_PLACEHOLDERS = ("{query}", "{documents}")
_PLACEHOLDER_RE = re.compile(r"\{(?:query|positives|documents)\}")

DEFAULT_MAX_NEGATIVES_PER_CALL = 25


def permuted(docids: Sequence[str], permutations: int, *, key: str, seed: int = 0) -> list[list[str]]:
    """`permutations` orders of `docids` for one listwise call each: the given order first, then seeded shuffles
    (seeded by `seed` and `key`, e.g. the query id and chunk, so an order never depends on the input's order)."""
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    orders = [list(docids)]
    for k in range(1, permutations):
        order = list(docids)
        random.Random(f"{seed}:{key}:{k}").shuffle(order)
        orders.append(order)
    return orders


def chunk_docids(docids: Sequence[str], n: int = DEFAULT_MAX_NEGATIVES_PER_CALL) -> list[list[str]]:
    """Split negatives into prompt-sized chunks of at most n (order kept)."""
    if n < 1:
        raise ValueError(f"chunk size must be >= 1, got {n}")
    return [list(docids[i : i + n]) for i in range(0, len(docids), n)]


def _clean(text: str) -> str:
    return text.strip()


def format_positives(instance: Instance) -> str:
    """The reference block: one positive as is, several numbered `Reference (k):`."""
    texts = [_clean(p.text) for p in instance.positives]
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"Reference ({k}): {t}" for k, t in enumerate(texts, start=1))


def format_documents(instance: Instance, docids: Sequence[str]) -> str:
    """The numbered negatives: `Doc (i): text`, i from 1 in the order of `docids`."""
    by_id = {p.docid: p for p in instance.negatives}
    lines = []
    for i, docid in enumerate(docids, start=1):
        passage = by_id.get(docid)
        if passage is None:
            raise KeyError(f"{instance.query_id}: no negative with docid {docid!r}")
        lines.append(f"Doc ({i}): {_clean(passage.text)}")
    return "\n\n".join(lines)


@dataclass(frozen=True, slots=True)
class Template:
    """A listwise prompt template."""

    name: str
    text: str
    sha256: str

    @classmethod
    def from_text(cls, name: str, text: str) -> Template:
        missing = [p for p in REQUIRED_PLACEHOLDERS if p not in text]
        if missing:
            raise ConfigError(f"template {name!r} lacks the placeholder(s) {', '.join(missing)}")
        return cls(name=name, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())

    def render(self, instance: Instance, docids: Sequence[str]) -> str:
        """The prompt for these negatives of `instance` (docids in prompt order, numbered from 1)."""
        values = {
            "{query}": _clean(instance.query),
            "{positives}": format_positives(instance),
            "{documents}": format_documents(instance, docids),
        }
        # One regex pass over the template: passage text that contains "{query}" is never re-expanded.
        return _PLACEHOLDER_RE.sub(lambda m: values[m.group(0)], self.text)


def template_dir() -> Path:
    return Path(str(resources.files("hardneg.judging") / "prompts"))


def load_template(name_or_path: str) -> Template:
    """A shipped template by name (`stage1`, `stage2`, `scidocs`, `compact`) or any template file by path."""
    if name_or_path in SHIPPED_TEMPLATES:
        path = template_dir() / f"{name_or_path}.txt"
        return Template.from_text(name_or_path, path.read_text(encoding="utf-8"))
    path = Path(name_or_path)
    if path.is_file():
        return Template.from_text(str(path), path.read_text(encoding="utf-8"))
    known = ", ".join(SHIPPED_TEMPLATES)
    raise ConfigError(f"unknown template {name_or_path!r}: not a shipped template ({known}) nor an existing file")


__all__ = [
    "DEFAULT_MAX_NEGATIVES_PER_CALL",
    "SHIPPED_TEMPLATES",
    "Template",
    "chunk_docids",
    "format_documents",
    "format_positives",
    "load_template",
]
