"""Typed records passed between stages.

Everything is keyed by `query_id` and `docid`, never by position: relabelling, shuffling
and merging verdicts stay correct whatever order passages come in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Keys of a Tevatron "legacy" row that map to Instance attributes; every other key is kept in `extra`.
INSTANCE_KEYS = ("query_id", "query", "positive_passages", "negative_passages", "subset")
PASSAGE_KEYS = ("docid", "title", "text")


@dataclass(slots=True)
class Passage:
    """A passage as it appears in a training instance."""

    docid: str
    text: str
    title: str = ""
    # Unknown per-passage fields (for example a mining `score` and `rank`), written back unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"docid": self.docid, "title": self.title, "text": self.text}
        row.update(self.extra)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Passage:
        extra = {k: v for k, v in row.items() if k not in PASSAGE_KEYS}
        title = row.get("title")
        return cls(
            docid=str(row["docid"]),
            text=row["text"],
            title=title if title is not None else "",
            extra=extra,
        )


@dataclass(slots=True)
class Instance:
    """One training instance: a query, its labelled positives and its mined hard negatives."""

    query_id: str
    query: str
    positives: list[Passage]
    negatives: list[Passage]
    subset: str = ""
    # Unknown row fields (for example the reference implementation's `response`), written back unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "query_id": self.query_id,
            "query": self.query,
            "positive_passages": [p.to_dict() for p in self.positives],
            "negative_passages": [p.to_dict() for p in self.negatives],
            "subset": self.subset,
        }
        row.update(self.extra)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Instance:
        """Build from an already validated row (see `hardneg.data.validate.check_row`)."""
        extra = {k: v for k, v in row.items() if k not in INSTANCE_KEYS}
        subset = row.get("subset")
        return cls(
            query_id=str(row["query_id"]),
            query=row["query"],
            positives=[Passage.from_dict(p) for p in row["positive_passages"]],
            negatives=[Passage.from_dict(p) for p in row.get("negative_passages") or []],
            subset=subset if subset is not None else "",
            extra=extra,
        )

    @property
    def positive_ids(self) -> list[str]:
        return [p.docid for p in self.positives]

    @property
    def negative_ids(self) -> list[str]:
        return [p.docid for p in self.negatives]

    def negative(self, docid: str) -> Passage:
        for passage in self.negatives:
            if passage.docid == docid:
                return passage
        raise KeyError(f"{self.query_id}: no negative with docid {docid!r}")


def passage_text(passage: Passage, *, with_title: bool) -> str:
    """The text a model (or a person) sees for a passage: the one rule every stage uses.

    ``title + " " + text`` when `with_title` and the passage has a non-blank title (BEIR's convention, what
    retrievers are trained and evaluated on), else the text alone (what the RLHN prompts send). Callers say
    which they want: there is no default, because retrieval and judging differ on purpose.
    """
    if with_title and passage.title and passage.title.strip():
        return f"{passage.title} {passage.text}"
    return passage.text
