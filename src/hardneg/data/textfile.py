"""Reading a whole input file as text: text that is not UTF-8 is an `InputError` naming the file and the byte."""

from __future__ import annotations

from pathlib import Path

from hardneg.errors import InputError


def read_text_file(path: Path, kind: str) -> str:
    """The UTF-8 text of `path`, newlines as text mode reads them.

    `kind` says what the file should be (``"qrels"``, ``"YAML"``) in the error for a file that is not UTF-8 text.
    A missing file raises what `Path.read_text` raises: callers check first, with their own message.
    """
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        detail = f"not a {kind} text file (not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise InputError(path, None, "-", detail) from None
