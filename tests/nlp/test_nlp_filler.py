"""The generic filler builds valid, deterministic instances of arbitrary pydantic models."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from parlant_router.nlp.filler import FILLER_TEXT, UnfillableSchemaError, fill_model


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    name: str
    count: int


class Everything(BaseModel):
    text: str
    flag: bool
    number: int
    ratio: float
    choice: Literal["b", "a"]
    color: Color
    maybe: Inner | None
    either: int | str
    items: list[Inner]
    seq: Sequence[str]
    mapping: Mapping[str, int]
    pair: tuple[int, str]
    many: tuple[int, ...]
    inner: Inner
    defaulted: str = "keep me"
    factory: list[int] = Field(default_factory=lambda: [7])


def test_fills_every_kind_of_field_with_its_neutral_value() -> None:
    value = fill_model(Everything)
    assert value.text == FILLER_TEXT
    assert value.flag is False
    assert value.number == 0
    assert value.ratio == 0.0
    assert value.choice == "b"  # the first choice, not the smallest
    assert value.color is Color.RED
    assert value.maybe is None
    assert value.either == 0
    assert value.items == []
    assert list(value.seq) == []
    assert dict(value.mapping) == {}
    assert value.pair == (0, FILLER_TEXT)
    assert value.many == ()
    assert value.inner == Inner(name=FILLER_TEXT, count=0)
    assert value.defaulted == "keep me"
    assert value.factory == [7]


def test_is_deterministic() -> None:
    assert fill_model(Everything).model_dump() == fill_model(Everything).model_dump()


def test_overrides_are_validated_and_applied() -> None:
    value = fill_model(Everything, {"flag": True, "inner": {"name": "x", "count": 2}})
    assert value.flag is True
    assert value.inner == Inner(name="x", count=2)
    with pytest.raises(ValueError, match="number"):
        fill_model(Everything, {"number": "not a number"})


def test_unknown_override_names_the_field() -> None:
    with pytest.raises(UnfillableSchemaError, match=r"Everything: no such field\(s\): nope"):
        fill_model(Everything, {"nope": 1})


def test_unknown_type_is_reported_with_its_location() -> None:
    class Opaque:
        pass

    class Strange(BaseModel):
        model_config = {"arbitrary_types_allowed": True}
        thing: Opaque

    with pytest.raises(UnfillableSchemaError, match=r"Strange\.thing: cannot build a value"):
        fill_model(Strange)
