"""The import paths of hardneg 0.1, kept working for one release (0.2) with a `DeprecationWarning`.

0.1 named each stage package after its verb and made the package callable, so `hardneg.judge` was at once a
package and the function that runs the cascade (and type checkers saw only the package). 0.2 names the
packages as nouns and keeps the verbs as plain functions at the top level, the way scikit-learn keeps
`train_test_split` apart from `model_selection`:

======================  ======================  ==========================================
0.1 path                0.2 path                the verb (unchanged)
======================  ======================  ==========================================
``hardneg.mine.*``      ``hardneg.mining.*``    ``hardneg.mine(...)``
``hardneg.judge.*``     ``hardneg.judging.*``   ``hardneg.judge(...)``
``hardneg.relabel.*``   ``hardneg.relabeling.*`` ``hardneg.relabel(...)``
``hardneg.evaluate.*``  ``hardneg.evaluation.*`` ``hardneg.evaluate(...)``
``hardneg.train.*``     ``hardneg.training.*``  ``hardneg.train_retriever / train_reranker``
======================  ======================  ==========================================

and `load_config` (which loads a cascade) is `load_cascade`. ``from hardneg.judge.store import JudgmentStore``
and ``from hardneg.judge import Judge`` still work and warn; attribute chains through a verb
(``hardneg.judge.store``) do not, since ``hardneg.judge`` is the function. These paths go in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

RENAMED_PACKAGES = {
    "hardneg.mine": "hardneg.mining",
    "hardneg.judge": "hardneg.judging",
    "hardneg.relabel": "hardneg.relabeling",
    "hardneg.evaluate": "hardneg.evaluation",
    "hardneg.train": "hardneg.training",
}
RENAMED_NAMES = {"load_config": "load_cascade"}  # in hardneg.judge[.cascade[.config]] and at the top level


def new_path(old: str) -> str | None:
    """The 0.2 module path of a 0.1 one (`hardneg.judge.store` -> `hardneg.judging.store`), None if not renamed."""
    for before, after in RENAMED_PACKAGES.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before) :]
    return None


def warn(old: str, new: str) -> None:
    """A DeprecationWarning attributed to the user's line (not to importlib's frames), so it shows in scripts."""
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen importlib")
        or frame.f_globals.get("__name__") in (__name__, "hardneg")
    ):
        frame = frame.f_back  # type: ignore[assignment]
    message = f"`{old}` is deprecated and goes in hardneg 0.3: use `{new}`"
    if frame is None:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return
    warnings.warn_explicit(
        message, DeprecationWarning, frame.f_code.co_filename, frame.f_lineno,
        module=frame.f_globals.get("__name__", ""), registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )  # fmt: skip


class OldModule(types.ModuleType):
    """Stands at a 0.1 path; every attribute read warns once per place and comes from the 0.2 module."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old)
        self.__path__: list[str] = []  # a package, so `from hardneg.judge.store import ...` is looked up
        self._hardneg_new = new

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        target = importlib.import_module(self._hardneg_new)
        renamed = RENAMED_NAMES.get(name, name)
        warn(f"{self.__name__}.{name}", f"{self._hardneg_new}.{renamed}")
        return getattr(target, renamed)


class OldPathLoader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        importlib.import_module(self.new)  # a path that 0.2 lacks fails here, as a plain import would
        return OldModule(spec.name, self.new)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class OldPathFinder(importlib.abc.MetaPathFinder):
    """Finds `hardneg.judge.store` and the like (the old packages themselves are put in `sys.modules`)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in RENAMED_PACKAGES:
            return None
        new = new_path(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        return importlib.util.spec_from_loader(fullname, OldPathLoader(new), is_package=True)


def install() -> None:
    """Make the 0.1 paths importable; the verbs stay the attributes of `hardneg` (called from `hardneg/__init__`)."""
    for old, new in RENAMED_PACKAGES.items():
        sys.modules.setdefault(old, OldModule(old, new))
    if not any(isinstance(finder, OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldPathFinder())
