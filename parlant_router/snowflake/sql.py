"""Parlant's ``Where`` filters and sorts, translated to Snowflake SQL.

The semantics are those of Parlant's reference implementation,
``parlant.core.persistence.common.matches_filters`` (used by the transient and JSON
databases), evaluated per leaf:

- ``$eq``/``$ne``/``$in``/``$nin`` use Python equality: a string equals only a string; numbers
  and booleans compare numerically with each other (``True == 1 == 1.0``); ``None`` equals only
  JSON null.
- ``$gt``/``$gte``/``$lt``/``$lte`` compare strings with strings and numbers/booleans with
  numbers/booleans. Where Python would raise ``TypeError`` (``"a" > 1``), the leaf is false,
  as in MongoDB's type brackets.
- A missing field behaves as in MongoDB, where the reference raises ``KeyError``: ``$ne`` and
  ``$nin`` match it, every other operator does not.
- ``{}`` and ``{"$and": []}`` match everything, ``{"$or": []}`` matches nothing.

Every leaf renders as a two-valued SQL boolean (never NULL), so ``NOT`` and ``OR`` behave.

Document fields live in the VARIANT column ``DATA``. Comparing VARIANTs directly does not
order numbers numerically everywhere (the emulator compares their JSON text), and casting a
VARIANT that holds another type fails, so each field is extracted through its JSON text,
which both Snowflake and the emulator produce identically: a string's text starts with ``"``,
a boolean's is ``true``/``false``, a number's parses with ``TRY_TO_DOUBLE``. Numbers compare
as DOUBLE: integers are exact up to 2**53.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import CollectionSort

from parlant_router.snowflake.errors import SnowflakeOperationError

#: Document fields mirrored in their own columns by both upstream and this adapter.
COLUMNS: Mapping[str, str] = {"id": "ID", "version": "VERSION", "creation_utc": "CREATION_UTC"}

_COMPARISONS: Mapping[str, str] = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_IDENTIFIER_RE = re.compile(r"[^0-9A-Za-z_]")


def sanitize_identifier(raw: str) -> str:
    """Upstream's table naming rule: non-word characters to ``_``, upper case, no leading digit."""
    sanitized = _IDENTIFIER_RE.sub("_", raw).upper()
    if not sanitized:
        raise SnowflakeOperationError("a Snowflake identifier cannot be empty")
    return f"_{sanitized}" if sanitized[0].isdigit() else sanitized


def quote_identifier(name: str) -> str:
    """A double-quoted identifier (names here are already sanitized to ``[A-Z0-9_]``)."""
    return '"' + name.replace('"', '""') + '"'


class Params:
    """Named parameters for the connector's ``pyformat`` style (``%(name)s``)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


class _Field:
    """SQL expressions reading one document field."""

    def __init__(self, name: str, params: Params) -> None:
        self.name = name
        self.path = f"DATA[{params.add(name)}]"

    @property
    def json(self) -> str:
        return f"TO_JSON({self.path})"

    @property
    def number(self) -> str:
        """The field as DOUBLE if it holds a number or boolean (True=1), else NULL."""
        return (
            f"(CASE {self.json} WHEN 'true' THEN 1 WHEN 'false' THEN 0 "
            f"ELSE TRY_TO_DOUBLE({self.json}) END)"
        )

    @property
    def string(self) -> str:
        """The field as VARCHAR if it holds a string, else NULL."""
        return f"(CASE WHEN LEFT({self.json}, 1) = '\"' THEN {self.path}::STRING END)"

    @property
    def is_null(self) -> str:
        return f"({self.json} = 'null')"


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float))


def _check_operand(field: str, operator: str, value: Any) -> None:
    if value is None or isinstance(value, str):
        return
    if _is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise SnowflakeOperationError(
                f"filter on '{field}': {operator} needs a finite number, got {value!r}"
            )
        return
    raise SnowflakeOperationError(
        f"filter on '{field}': {operator} takes a string, number or boolean, "
        f"got {type(value).__name__}"
    )


def _bind_number(value: bool | int | float, params: Params) -> str:
    # Booleans are numbers in the reference semantics (True == 1).
    return params.add(int(value) if isinstance(value, bool) else value)


class WhereTranslator:
    """Renders a ``Where`` into a SQL boolean expression, binding operands in ``params``."""

    def __init__(self, params: Params) -> None:
        self._params = params

    def render(self, where: Where) -> str:
        if not where:
            return "TRUE"
        if not isinstance(where, Mapping):
            raise SnowflakeOperationError(f"a filter must be a mapping, got {type(where).__name__}")
        first = next(iter(where))
        if first in ("$and", "$or"):
            return self._logical(cast(Mapping[str, Any], where))
        return self._fields(cast(Mapping[str, Any], where))

    def _logical(self, where: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for key, operands in where.items():
            if key not in ("$and", "$or"):
                # The reference silently ignores such keys; a dropped condition could make
                # update_one/delete_one hit the wrong document, so refuse instead.
                raise SnowflakeOperationError(
                    f"filter mixes '{key}' with $and/$or at one level; nest it inside $and"
                )
            if not isinstance(operands, Sequence) or isinstance(operands, str):
                raise SnowflakeOperationError(f"filter: {key} takes a list of filters")
            rendered = [self.render(cast(Where, operand)) for operand in operands]
            if key == "$and":
                parts.append("(" + " AND ".join(rendered) + ")" if rendered else "TRUE")
            else:
                parts.append("(" + " OR ".join(rendered) + ")" if rendered else "FALSE")
        return _conjunction(parts)

    def _fields(self, where: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for field, condition in where.items():
            if field.startswith("$"):
                raise SnowflakeOperationError(
                    f"filter: '{field}' is not an operator here; use $and/$or at the top of a filter"
                )
            # A bare value is shorthand for $eq, as in MongoDB and upstream.
            operators = condition if isinstance(condition, Mapping) else {"$eq": condition}
            for operator, operand in operators.items():
                parts.append(self._leaf(field, operator, operand))
        return _conjunction(parts)

    def _leaf(self, field: str, operator: str, operand: Any) -> str:
        if operator in ("$in", "$nin"):
            if not isinstance(operand, Sequence) or isinstance(operand, str):
                raise SnowflakeOperationError(f"filter on '{field}': {operator} takes a list")
            for value in operand:
                _check_operand(field, operator, value)
            membership = self._membership(field, list(operand))
            return membership if operator == "$in" else f"(NOT {membership})"
        _check_operand(field, operator, operand)
        if operator == "$eq":
            return self._equals(field, operand)
        if operator == "$ne":
            return f"(NOT {self._equals(field, operand)})"
        if operator in _COMPARISONS:
            return self._compare(field, _COMPARISONS[operator], operand)
        raise SnowflakeOperationError(f"filter on '{field}': unsupported operator '{operator}'")

    def _equals(self, field: str, operand: Any) -> str:
        return self._membership(field, [operand])

    def _membership(self, field: str, values: list[Any]) -> str:
        if not values:
            return "FALSE"
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if _is_number(v)]
        has_null = any(v is None for v in values)
        column = COLUMNS.get(field)
        if column is not None and not numbers and not has_null:
            # Mirrored string fields compare on their own column (prunable, indexable).
            bound = ", ".join(self._params.add(v) for v in strings)
            return f"COALESCE({column} IN ({bound}), FALSE)"
        target = _Field(field, self._params)
        tests: list[str] = []
        if strings:
            bound = ", ".join(self._params.add(v) for v in strings)
            tests.append(f"{target.string} IN ({bound})")
        if numbers:
            bound = ", ".join(_bind_number(v, self._params) for v in numbers)
            tests.append(f"{target.number} IN ({bound})")
        if has_null:
            tests.append(target.is_null)
        return "COALESCE(" + " OR ".join(tests) + ", FALSE)"

    def _compare(self, field: str, sql_operator: str, operand: Any) -> str:
        if operand is None:
            return "FALSE"  # None is not ordered against anything in the reference.
        column = COLUMNS.get(field)
        if isinstance(operand, str):
            bound = self._params.add(operand)
            expression = column if column is not None else _Field(field, self._params).string
        else:
            bound = _bind_number(operand, self._params)
            expression = _Field(field, self._params).number
        return f"COALESCE({expression} {sql_operator} {bound}, FALSE)"


def _conjunction(parts: Sequence[str]) -> str:
    if not parts:
        return "TRUE"
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def where_sql(where: Where, params: Params) -> str:
    """The SQL boolean expression for ``where``."""
    return WhereTranslator(params).render(where)


def cursor_sql(cursor: Cursor, direction: SortDirection, params: Params) -> str:
    """Rows strictly after ``cursor`` in (CREATION_UTC, ID) order, as the reference pages."""
    op = "<" if direction == SortDirection.DESC else ">"
    creation = params.add(str(cursor.creation_utc))
    identifier = params.add(str(cursor.id))
    return f"(CREATION_UTC {op} {creation} OR (CREATION_UTC = {creation} AND ID {op} {identifier}))"


def page_order_sql(direction: SortDirection) -> str:
    """find()'s order: creation_utc then id, a missing creation_utc first (as "" in Python)."""
    if direction == SortDirection.DESC:
        return "CREATION_UTC DESC NULLS LAST, ID DESC"
    return "CREATION_UTC ASC NULLS FIRST, ID ASC"


#: "The first matching document": insertion order in the reference; creation order here,
#: which is the same whenever documents are inserted as they are created (Parlant does).
FIRST_ORDER_SQL = "CREATION_UTC ASC NULLS FIRST, ID ASC"


def field_order_sql(sort: CollectionSort, params: Params) -> str:
    """ORDER BY terms for find_one(sort=...), stable like Python's sort (ties: creation order).

    Within a field: missing/null first, then numbers (booleans as 0/1), then strings; DESC
    reverses it. Python raises on such mixes; this is MongoDB's order for them.
    """
    terms: list[str] = []
    for field, direction in sort:
        way = "DESC" if direction == SortDirection.DESC else "ASC"
        column = COLUMNS.get(field)
        if column is not None:
            nulls = "NULLS LAST" if way == "DESC" else "NULLS FIRST"
            terms.append(f"{column} {way} {nulls}")
            continue
        target = _Field(field, params)
        rank = (
            f"(CASE WHEN {target.number} IS NOT NULL THEN 1 "
            f"WHEN {target.string} IS NOT NULL THEN 2 ELSE 0 END)"
        )
        terms.extend((f"{rank} {way}", f"{target.number} {way}", f"{target.string} {way}"))
    terms.append(FIRST_ORDER_SQL)
    return ", ".join(terms)


__all__ = [
    "COLUMNS",
    "FIRST_ORDER_SQL",
    "Params",
    "WhereTranslator",
    "cursor_sql",
    "field_order_sql",
    "page_order_sql",
    "quote_identifier",
    "sanitize_identifier",
    "where_sql",
]
