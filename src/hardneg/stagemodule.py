"""Stage packages that can be called: `hardneg.judge(data, config, store)` runs the cascade, while
`from hardneg.judge import Judge` still reads the package (the judge contract).

Python lets a module's class be replaced by a `ModuleType` subclass; the subclass adds `__call__`, which runs
the stage's function. The package stays an ordinary module for imports, `help()` and pickling.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any


def make_callable(module_name: str, function: Callable[..., Any]) -> None:
    """Calling the module `module_name` calls `function` (with its signature, for `inspect` and IDEs)."""
    module = sys.modules[module_name]

    class StageModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    StageModule.__name__ = f"{module_name}.__class__"
    module.__class__ = StageModule
    module.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
