"""The HTML building blocks: every value escaped, numbers to three places, long texts folded."""

from __future__ import annotations

from hardneg.analysis.report.markup import (
    PAIR_TEXT_CHARS,
    Section,
    confusion_table,
    esc,
    header_row,
    img,
    long_text,
    num,
    plots,
    table,
)


def test_values_are_escaped_and_numbers_rounded() -> None:
    assert esc("<b> & 'q'") == "&lt;b&gt; &amp; &#x27;q&#x27;"
    assert num(None) == "—" and num(0.12345) == "0.123" and num(0.12345, 2) == "0.12" and num(7) == "7"
    assert num("<x>") == "&lt;x&gt;"


def test_tables() -> None:
    assert header_row(["a", "<b>"]) == "<th>a</th><th>&lt;b&gt;</th>"
    assert table(["h"], [[1.0], [None]], "t") == (
        '<table id="t"><thead><tr><th>h</th></tr></thead><tbody><tr><td>1.000</td></tr><tr><td>—</td></tr></tbody>'
        "</table>"
    )
    assert table(["h"], []).startswith("<table><thead>")  # no id
    block = {"labels": ["yes", "no"], "confusion": [[3, 1], [0, 5]]}
    assert confusion_table(block) == table(["B \\ A", "yes", "no"], [["yes", 3, 1], ["no", 0, 5]])


def test_figures() -> None:
    figure = img("QUJD", "alt <text>", "a & b")
    assert figure == (
        '<figure><img alt="alt &lt;text&gt;" src="data:image/png;base64,QUJD"><figcaption>a &amp; b</figcaption>'
        "</figure>"
    )
    assert plots(figure, figure) == f'<div class="plots">{figure}{figure}</div>'


def test_long_texts_fold_after_their_beginning() -> None:
    short = "x" * PAIR_TEXT_CHARS
    assert long_text(short) == f"<div class='text'>{short}</div>"
    long = "<" + "y" * PAIR_TEXT_CHARS
    folded = long_text(long)
    assert folded.startswith("<details class='text'><summary>&lt;" + "y" * (PAIR_TEXT_CHARS - 1) + " …</summary>")
    assert folded.endswith(esc(long) + "</details>")


def test_a_section_is_its_anchor_heading_and_body() -> None:
    key, title, body = Section("k", "Title", "<p>")
    assert (key, title, body) == ("k", "Title", "<p>")
