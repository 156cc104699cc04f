"""Parlant's `Where` filters and sorts evaluated in memory, with the adapters' semantics.

The read cache answers queries from documents it holds, so its answers must be the ones
the database would give. The semantics are those `parlant_router.snowflake.sql` documents
and translates to SQL (Parlant's reference `matches_filters`, with MongoDB's rules where
the reference raises):

- `$eq`/`$ne`/`$in`/`$nin`: a string equals only a string; numbers and booleans compare
  numerically with each other (`True == 1`); `None` equals only null.
- `$gt`/`$gte`/`$lt`/`$lte`: strings with strings, numbers/booleans with numbers/booleans;
  any other pairing, a missing field or a `None` operand does not match.
- A missing field matches `$ne` and `$nin` only.
- `find` returns documents by (`creation_utc`, missing first; `id`); `find_one(sort=...)`
  orders each field as missing/null < numbers < strings, then by (`creation_utc`, `id`).

A filter this module cannot evaluate exactly (an unknown operator, a list or mapping as
operand, `$and`/`$or` mixed with fields at one level) compiles to None: the cache then
sends the query to the database, which reports the problem as it always has.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from parlant.core.persistence.common import SortDirection, Where
from parlant.core.persistence.document_database import CollectionSort

Document = Mapping[str, Any]
Predicate = Callable[[Document], bool]

_MISSING = object()
_COLUMNS = ("id", "version", "creation_utc")
"""Fields the adapters mirror in their own string columns (ordered as strings, or null)."""


def compile_filter(where: Where) -> Predicate | None:
    """A predicate equal to the database's evaluation of `where`, or None if unsupported."""
    if not where:
        return lambda document: True
    if not isinstance(where, Mapping):
        return None
    if next(iter(where)) in ("$and", "$or"):
        return _compile_logical(where)
    return _compile_fields(where)


def _compile_logical(where: Mapping[str, Any]) -> Predicate | None:
    parts: list[Predicate] = []
    for key, operands in where.items():
        if key not in ("$and", "$or") or not isinstance(operands, list):
            return None
        compiled = [compile_filter(operand) for operand in operands]
        if any(predicate is None for predicate in compiled):
            return None
        predicates = [p for p in compiled if p is not None]
        parts.append(_all_of(predicates) if key == "$and" else _any_of(predicates))
    return _all_of(parts)


def _all_of(predicates: Sequence[Predicate]) -> Predicate:
    return lambda document: all(p(document) for p in predicates)


def _any_of(predicates: Sequence[Predicate]) -> Predicate:
    return lambda document: any(p(document) for p in predicates)


def _compile_fields(where: Mapping[str, Any]) -> Predicate | None:
    parts: list[Predicate] = []
    for field, condition in where.items():
        if not isinstance(field, str) or field.startswith("$"):
            return None
        operators = condition if isinstance(condition, Mapping) else {"$eq": condition}
        for operator, operand in operators.items():
            leaf = _compile_leaf(field, operator, operand)
            if leaf is None:
                return None
            parts.append(leaf)
    return _all_of(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float))


def _valid_operand(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    return _is_number(value) and not (isinstance(value, float) and not math.isfinite(value))


def _equals(value: Any, operand: Any) -> bool:
    if value is _MISSING:
        return False
    if operand is None:
        return value is None
    if isinstance(operand, str):
        return isinstance(value, str) and value == operand
    return _is_number(value) and float(value) == float(operand)


def _compile_leaf(field: str, operator: str, operand: Any) -> Predicate | None:
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list) or not all(_valid_operand(v) for v in operand):
            return None
        values = list(operand)

        def member(document: Document) -> bool:
            value = document.get(field, _MISSING)
            return any(_equals(value, v) for v in values)

        return member if operator == "$in" else (lambda document: not member(document))
    if not _valid_operand(operand):
        return None
    if operator == "$eq":
        return lambda document: _equals(document.get(field, _MISSING), operand)
    if operator == "$ne":
        return lambda document: not _equals(document.get(field, _MISSING), operand)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }
    compare = comparisons.get(operator)
    if compare is None:
        return None

    def ordered(document: Document) -> bool:
        value = document.get(field, _MISSING)
        if operand is None or value is _MISSING or value is None:
            return False
        if isinstance(operand, str):
            return isinstance(value, str) and compare(value, operand)
        return _is_number(value) and not isinstance(value, str) and compare(value, operand)

    return ordered


def _creation_key(document: Document) -> tuple[bool, str]:
    value = document.get("creation_utc")
    return (value is not None, "" if value is None else str(value))


def _id_key(document: Document) -> str:
    return str(document.get("id", ""))


def in_find_order(documents: Sequence[Document]) -> list[Document]:
    """`find`'s order: `creation_utc` (missing first), then `id`."""
    return sorted(documents, key=lambda d: (_creation_key(d), _id_key(d)))


def _number(value: Any) -> float | None:
    if _is_number(value) and not isinstance(value, str):
        return float(value)
    return None


def first_by(documents: Sequence[Document], sort: CollectionSort | None) -> Document | None:
    """`find_one`'s answer among matching `documents`: the first in `sort`'s order."""
    if not documents:
        return None
    ordered = in_find_order(documents)
    # Stable sorts from the least significant key to the most significant one.
    for field, direction in reversed(list(sort or ())):
        descending = direction == SortDirection.DESC
        for key in _sort_keys(field):
            ordered.sort(key=key, reverse=descending)
    return ordered[0]


def _sort_keys(field: str) -> list[Callable[[Document], Any]]:
    """One field's sort keys, least significant first."""
    if field in _COLUMNS:
        # A mirrored column: null (missing) first, then the string.
        return [lambda d: (d.get(field) is not None, str(d.get(field) or ""))]
    # Missing/null/other < numbers (booleans as 0/1) < strings, then within each group.
    return [
        lambda d: _string_key(d.get(field)),
        lambda d: _number_key(d.get(field)),
        lambda d: isinstance(d.get(field), str),
    ]


def _number_key(value: Any) -> tuple[bool, float]:
    number = _number(value)
    return (number is not None, 0.0 if number is None else number)


def _string_key(value: Any) -> str:
    return value if isinstance(value, str) else ""
