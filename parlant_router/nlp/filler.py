"""Build a valid instance of any pydantic model without a language model.

The offline NLP service answers every schema Parlant asks for with the smallest
valid value: defaults where the model has them, ``None`` where a field allows it,
the first choice of a ``Literal`` or ``Enum``, empty collections, ``False``, ``0``
and a fixed string. The result is deterministic: the same model always yields
the same instance. Callers override the few fields whose value steers the engine.
"""

from __future__ import annotations

import collections.abc as abc
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)

#: The string put in every required text field that no override names.
FILLER_TEXT = "[offline]"

_NONE_TYPE = type(None)
_SEQUENCE_ORIGINS = (
    list,
    set,
    frozenset,
    abc.Sequence,
    abc.MutableSequence,
    abc.Set,
    abc.Iterable,
    abc.Collection,
)
_MAPPING_ORIGINS = (dict, abc.Mapping, abc.MutableMapping)


class UnfillableSchemaError(TypeError):
    """A schema field has a type the filler does not know how to build."""


def fill_model(model: type[M], overrides: Mapping[str, Any] | None = None) -> M:
    """Return a valid instance of ``model``, with ``overrides`` applied on top.

    ``overrides`` maps top-level field names to raw values; they go through
    pydantic validation like everything else, so a wrong override fails loudly.
    """
    data = _fill_fields(model)
    if overrides:
        unknown = set(overrides) - set(model.model_fields)
        if unknown:
            raise UnfillableSchemaError(
                f"{model.__name__}: no such field(s): {', '.join(sorted(unknown))}"
            )
        data.update(overrides)
    return model.model_validate(data)


def _fill_fields(model: type[BaseModel]) -> dict[str, Any]:
    # Only required fields are produced: optional ones keep the model's own
    # default, which is the most neutral answer the schema author chose.
    return {
        name: _fill_required(field, f"{model.__name__}.{name}")
        for name, field in model.model_fields.items()
        if field.is_required()
    }


def _fill_required(field: FieldInfo, where: str) -> Any:
    return _fill(field.annotation, where)


def _fill(annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if annotation is Any or annotation is _NONE_TYPE or annotation is None:
        return None
    if origin is typing.Annotated:
        return _fill(args[0], where)
    if origin is typing.Union or origin is types.UnionType:
        if _NONE_TYPE in args:
            return None
        return _fill(args[0], where)
    if origin is typing.Literal:
        return args[0]
    if origin in _SEQUENCE_ORIGINS:
        return []
    if origin in _MAPPING_ORIGINS:
        return {}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return []
        return [_fill(arg, where) for arg in args]
    if isinstance(annotation, type):
        return _fill_class(annotation, where)
    raise UnfillableSchemaError(f"{where}: cannot build a value of type {annotation!r}")


def _fill_class(cls: type, where: str) -> Any:
    # bool before int: bool is a subclass of int.
    if issubclass(cls, bool):
        return False
    if issubclass(cls, enum.Enum):
        return next(iter(cls)).value
    if issubclass(cls, str):
        return FILLER_TEXT
    if issubclass(cls, int):
        return 0
    if issubclass(cls, float):
        return 0.0
    if issubclass(cls, BaseModel):
        return _fill_fields(cls)
    if cls in (list, set, frozenset, tuple):
        return []
    if cls is dict:
        return {}
    raise UnfillableSchemaError(f"{where}: cannot build a value of type {cls.__name__}")
