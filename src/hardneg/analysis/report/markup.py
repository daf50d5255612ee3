"""HTML building blocks of the page: escaping, numbers, tables, figures and long texts. Everything shown is escaped
here, so the sections put together markup only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, NamedTuple

PAIR_TEXT_CHARS = 600  # a longer text shows its beginning, the rest one click away


class Section(NamedTuple):
    """One section of the page: its anchor, its heading and its HTML."""

    key: str
    title: str
    body: str


def esc(value: Any) -> str:
    """`value` as escaped text."""
    return html.escape(str(value))


def num(value: Any, digits: int = 3) -> str:
    """A table cell's text: "—" for None, a float to `digits` places, anything else escaped as it is."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def header_row(header: Sequence[str]) -> str:
    return "".join(f"<th>{esc(h)}</th>" for h in header)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str = "") -> str:
    """A table of numbers and plain values (each cell through `num`)."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    body = "".join("<tr>" + "".join(f"<td>{num(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{header_row(header)}</tr></thead><tbody>{body}</tbody></table>"


def confusion_table(block: dict[str, Any]) -> str:
    """A confusion matrix of an agreement (`labels`, `confusion`): rows B, columns A."""
    labels = block["labels"]
    return table(["B \\ A", *labels], [[lab, *row] for lab, row in zip(labels, block["confusion"], strict=True)])


def img(b64: str, alt: str, caption: str) -> str:
    """A base64 PNG with its caption."""
    return (
        f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def plots(*figures: str) -> str:
    """Figures (`img`) side by side."""
    return '<div class="plots">' + "".join(figures) + "</div>"


def long_text(value: str) -> str:
    """A long text as its beginning, the whole of it one click away (escaped)."""
    if len(value) <= PAIR_TEXT_CHARS:
        return f"<div class='text'>{esc(value)}</div>"
    return f"<details class='text'><summary>{esc(value[:PAIR_TEXT_CHARS])} …</summary>{esc(value)}</details>"
