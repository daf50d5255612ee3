"""Reading the files the cost tools take (price tables, cascade configs) as UTF-8 text, with errors naming the file."""

from __future__ import annotations

from pathlib import Path

from hardneg.errors import ConfigError


def read_text(path: Path, what: str = "") -> str:
    """The text of `path`; a ConfigError names the file, after `what` ('price table') where given."""
    label = f"{what} {path}" if what else str(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{label}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})") from None
