"""Config validation failures as hardneg errors: one wording for every config, the parameter always named."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError, model_validator

from hardneg.errors import (
    ConfigError,
    FieldError,
    PathText,
    config_dataclass,
    config_error,
    revalidate,
    validation_problems,
)


@config_dataclass
class Options:
    size: Annotated[int, Field(ge=1)] = 4
    mode: Literal["fast", "exact"] = "fast"
    low: float = 0.0
    high: float = 1.0
    folder: PathText | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Options:
        if self.low > self.high:
            raise FieldError("low", f"must not be above high ({self.high})")
        return self


class Item(BaseModel):
    name: str
    kind: Literal["a", "b"] = "a"

    @model_validator(mode="after")
    def _named(self) -> Item:
        if self.name == self.kind:
            raise FieldError("name", "must differ from kind")
        return self


class Group(BaseModel):
    items: list[Item]


def test_problems_name_the_field_a_rule_across_fields_blames() -> None:
    with pytest.raises(ValidationError) as info:
        Group.model_validate({"items": [{"name": "x"}, {"name": "b", "kind": "b"}, {"name": "y", "kind": "c"}]})
    assert validation_problems(info.value) == [
        (("items", 1, "name"), "must differ from kind"),
        (("items", 2, "kind"), "unknown kind 'c'; expected one of a, b"),
    ]
    error = config_error(info.value)
    assert error.param == "items.1.name"
    assert error.detail == "must differ from kind; items.2.kind: unknown kind 'c'; expected one of a, b"


def test_a_config_dataclass_raises_config_error_when_made_and_stays_a_dataclass() -> None:
    for options, param in (({"size": 0}, "size"), ({"mode": "slow"}, "mode"), ({"low": 2.0}, "low"),
                           ({"sise": 3}, "sise")):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            Options(**options)  # type: ignore[arg-type]
        assert info.value.param == param, options
    with pytest.raises(ConfigError) as info:
        Options(size=0)
    assert str(info.value) == "size: Input should be greater than or equal to 1"
    assert [f.default for f in dataclasses.fields(Options)] == [4, "fast", 0.0, 1.0, None]
    assert dataclasses.asdict(dataclasses.replace(Options(), size=2))["size"] == 2
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(Options(), high=-1.0)
    assert info.value.param == "low"
    assert Options(folder=Path("data")).folder == "data"


def test_revalidate_checks_values_set_after_the_object_was_made() -> None:
    options = Options()
    options.size = 0
    with pytest.raises(ConfigError) as info:
        revalidate(options)
    assert info.value.param == "size"
    options.size = 3
    revalidate(options)
