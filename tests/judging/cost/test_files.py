"""Cost inputs are read as UTF-8 text; a file that cannot be read is a ConfigError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.errors import ConfigError
from hardneg.judging.cost.files import read_text


def test_read_text_returns_the_text(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("gpt-4o: {input: 1, output: 2}\n", encoding="utf-8")
    assert read_text(path, "price table") == "gpt-4o: {input: 1, output: 2}\n"


def test_read_errors_name_the_file_after_what_it_is(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as error:
        read_text(missing, "price table")
    assert str(error.value) == f"price table {missing}: No such file or directory"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(ConfigError) as error:
        read_text(latin)
    assert str(error.value) == f"{latin}: not UTF-8 text (byte 0xe9)"
