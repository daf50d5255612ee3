"""The page skeleton: four placeholders, and the script that counts the images that decoded."""

from __future__ import annotations

import pytest

from hardneg.analysis.report.template import PAGE


def test_the_placeholders_are_filled() -> None:
    page = PAGE.substitute(title="T1", generated="G2", nav="<a>N3</a>", body="<section>B4</section>")
    assert page.startswith("<!DOCTYPE html>") and "$" not in page
    for text in ("<title>T1</title>", "G2", "<a>N3</a>", "<section>B4</section>"):
        assert text in page
    assert 'id="image-check"' in page and "<script src" not in page  # inline only: no server, no network


def test_a_missing_placeholder_is_an_error() -> None:
    with pytest.raises(KeyError):
        PAGE.substitute(title="T", generated="G", nav="N")
