"""The `hardneg` command: one verb per pipeline stage.

The CLI only parses arguments, calls one library function per verb and renders its result. Each stage's verbs live
in their own module, which registers its commands on `app`; options several verbs share, and those that take a
library default, are declared once in `options`. Heavy libraries are imported inside the commands so that
`hardneg --help` stays fast.
"""

from __future__ import annotations

import importlib
import signal

from hardneg.cli.common import app

# Modules that register working verbs, in the order of the stages (`hardneg --help` lists them so).
COMMAND_MODULES = [
    "hardneg.cli.data_cmds",
    "hardneg.cli.mine_cmds",
    "hardneg.cli.cost_cmds",
    "hardneg.cli.judge_cmds",
    "hardneg.cli.relabel_cmds",
    "hardneg.cli.clean_cmds",
    "hardneg.cli.train_cmds",
    "hardneg.cli.evaluate_cmds",
    "hardneg.cli.experiment_cmds",
    "hardneg.cli.calibrate_cmds",
    "hardneg.cli.judge_eval_cmds",
    "hardneg.cli.analysis_cmds",
    "hardneg.cli.batch_cmds",
    "hardneg.cli.configs_cmds",
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds the stack, so atomic writers remove their temp files on `kill` too.
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app()


__all__ = ["app", "main"]
