"""The `hardneg` command: one verb per pipeline stage.

The CLI only parses arguments and calls the library. Each verb group lives in its own module,
which registers its commands on `app`; heavy libraries are imported inside the commands so that
`hardneg --help` stays fast.
"""

from __future__ import annotations

import importlib

from hardneg.cli.common import app

# Modules that register working verbs. A verb is listed here only once it works.
COMMAND_MODULES = [
    "hardneg.cli.data_cmds",
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main() -> None:
    app()


__all__ = ["app", "main"]
