"""Whole-file text reading: UTF-8 text (text-mode newlines), or an InputError naming the file and the byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardneg.data.textfile import read_text_file
from hardneg.errors import InputError


def test_utf8_text_is_returned_with_universal_newlines(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_bytes("q1\td1\t1\r\nq2\tdé\t0\n".encode())
    assert read_text_file(path, "qrels") == "q1\td1\t1\nq2\tdé\t0\n"


def test_bytes_that_are_not_utf8_name_the_file_the_kind_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_bytes(b"q1\td1\t1\nq2\xff\td2\t0\n")
    with pytest.raises(InputError) as info:
        read_text_file(path, "qrels")
    problem = info.value.problem
    assert problem.path == str(path)
    assert problem.line is None
    assert problem.message == "not a qrels text file (not UTF-8: byte 0xff at offset 10)"


def test_a_missing_file_is_left_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text_file(tmp_path / "absent.yaml", "YAML")
