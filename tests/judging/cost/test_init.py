"""`hardneg.judging.cost` keeps every public name of its modules, the same objects."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import hardneg.judging.cost as cost
from hardneg.judging.cost import budget, estimation, prices, stages, tokens


def defined_names(module: ModuleType) -> set[str]:
    """The public names a module defines at its top level (not those it imports)."""
    names = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def test_every_public_name_of_the_modules_is_importable_from_the_package() -> None:
    for module in (tokens, prices, budget, stages, estimation):
        names = defined_names(module)
        assert names, module.__name__
        for name in names:
            assert getattr(cost, name) is getattr(module, name), f"{module.__name__}.{name}"
            assert name in cost.__all__, name
    assert set(cost.__all__) <= set(dir(cost))


def test_estimate_is_the_function_not_a_module() -> None:
    assert callable(cost.estimate) and cost.estimate is estimation.estimate
