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

The result is a ``WHERE`` condition: TRUE exactly for the matching rows. A leaf outside
``NOT`` may be NULL where it does not match: built from AND/OR alone, a condition that is TRUE
with some leaves NULL is TRUE with them FALSE (Kleene logic), and ``WHERE`` drops NULL like
FALSE. Only the negated leaves (``$ne``, ``$nin``) are made two-valued with ``COALESCE``, so
``NOT`` behaves. Leaving the others bare keeps the SQL short: the emulator parses and
rewrites every statement in Python, at a cost that grows with its syntax tree.

Document fields live in the VARIANT column ``DATA``. Comparing VARIANTs directly does not
order numbers numerically everywhere (the emulator compares their JSON text), and casting a
VARIANT that holds another type fails, so each field is extracted through its JSON text,
which both Snowflake and the emulator produce identically: a string's text starts with ``"``,
a boolean's is ``true``/``false``, a number's parses with ``TRY_TO_DOUBLE``. Numbers compare
as DOUBLE: integers are exact up to 2**53. String equality compares JSON texts
(``TO_JSON(DATA[f]) = TO_JSON(TO_VARIANT(s))``): both sides are rendered by one engine's
``TO_JSON``, a function of the value that quotes strings and never numbers, so equal texts mean
equal strings and a number or boolean never equals a string. A string of letters, digits and
``_.:@ -`` (ids, names) has no escapes in any JSON writer, so its text ``"s"`` is bound directly.

Values never enter the statement text: they are server-side bindings in the connector's
``numeric`` paramstyle (``:1``, ``:2``, ...), which the database sets on every connection it
opens (``paramstyle="numeric"``). The connector's default, ``pyformat``, interpolates values
into the text on the client; a customer's ``$HOME`` then reached the emulator as SQL text,
where fakesnow substitutes ``$word`` session variables across the whole text, string literals
included, and failed. Bound, any text is data on both engines, and it stays out of the SQL
that Snowflake parses, logs and shows in its query history.

``numeric`` rather than ``qmark`` (``?``; both are server-side in Snowflake's connector):
``:n`` names its value, so one value can be used in several places (an id in the INSERT and
in its NOT EXISTS; a cursor's creation time), and a placeholder stays tied to its value
whatever the emulator's rewriting does to the statement before DuckDB numbers each ``?`` by
its position (it repeats expressions: ``LEFT(s, n)`` becomes a CASE holding ``n`` twice);
the emulator hands ``:n`` on as DuckDB's ``$n``. The connector binds ``str`` as TEXT, ``int``
as FIXED, ``float`` as REAL, ``bool`` as BOOLEAN and ``None`` as NULL; numbers (booleans as
0/1) compare with DOUBLE expressions, JSON text goes through ``PARSE_JSON``. Snowflake counts
bound values towards its 1 MB statement size (see ``database.py``'s batching).

Field names are part of the statement, not values: a name of letters, digits and ``_`` (every
field Parlant uses) is written as a string literal, ``DATA['session_id']``, the literal path
both engines read alike (the emulator unquotes ``DATA['f']::STRING`` only for a literal path).
Any other name is bound like a value; on the emulator, ordering such a field's strings
(``$gt``/``$lt`` on strings, sorting) then compares their JSON texts.

What cannot be sent is refused with an ``InvalidFilterError`` before any statement: a string
(value, field name, cursor) that is not valid Unicode (a lone surrogate such as ``"\\ud800"``,
which JSON's escapes allow but UTF-8 and Snowflake cannot hold), ``$and``/``$or`` nested
deeper than ``MAX_FILTER_DEPTH``, an ``$in``/``$nin`` list longer than ``MAX_LIST_VALUES``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import CollectionSort

from parlant_router.snowflake.errors import InvalidFilterError, SnowflakeOperationError

#: Document fields mirrored in their own columns by both upstream and this adapter.
COLUMNS: Mapping[str, str] = {"id": "ID", "version": "VERSION", "creation_utc": "CREATION_UTC"}

_COMPARISONS: Mapping[str, str] = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
#: Strings whose JSON text is ``"<the string>"`` in every JSON writer (no escapes possible).
_PLAIN_STRING_RE = re.compile(r"[0-9A-Za-z_.:@ -]*")
#: Field names written into the statement as string literals (see the module docstring).
_LITERAL_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The connector paramstyle every statement of this package is written in.
PARAMSTYLE = "numeric"

#: Levels of $and/$or a filter may nest. Parlant's own stores nest 2 or 3; Snowflake documents
#: no limit; the emulator's parser (sqlglot, recursive descent) fails between 32 and 40 levels
#: of what this module writes. 16 leaves Parlant five times its need and keeps every accepted
#: filter parseable by the emulator, so what passes there can pass on Snowflake.
MAX_FILTER_DEPTH = 16
#: Values in one $in/$nin list: Snowflake compiles at most 16,384 expressions in a list
#: (SQL compilation error 001795).
MAX_LIST_VALUES = 16_384
#: Upper bound on one statement: its text plus its bound values, in UTF-8 bytes. Snowflake's
#: 1 MB limit on a statement "also applies when binding values"
#: (docs.snowflake.com/en/user-guide/query-size-limits).
MAX_STATEMENT_BYTES = 1_000_000


class Params:
    """Values bound server-side in the ``numeric`` paramstyle, in ``values`` order.

    ``add`` returns the value's placeholder (``:1``, ``:2``, ...), which may appear in the
    statement any number of times.
    """

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f":{len(self.values)}"


_NUMERIC_PLACEHOLDER_RE = re.compile(r":(\d+)")


def positional(sql: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``sql`` with each ``:n`` written as ``?``, and the values in the order they appear.

    For MERGE: Snowflake takes either form, but the emulator splits a MERGE into several
    statements by re-parsing its parts in a dialect that knows only ``?``. Placeholders are
    the only ``:n`` in this package's statements (values are always bound, never inlined).
    """
    ordered = [values[int(n) - 1] for n in _NUMERIC_PLACEHOLDER_RE.findall(sql)]
    return _NUMERIC_PLACEHOLDER_RE.sub("?", sql), ordered


def printable(text: str, limit: int = 80) -> str:
    """``text`` for a one-line message: lone surrogates escaped (``\\ud800``), shortened."""
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def is_valid_text(text: str) -> bool:
    """Whether ``text`` is valid Unicode: encodable as UTF-8, i.e. free of lone surrogates."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def invalid_text_path(value: Any) -> str | None:
    """Where the first string of ``value`` (a key or a value) that is not valid Unicode is, as
    ``field.sub[2]``; "" for ``value`` itself, None when every string is valid.

    A loop, not recursion: any nesting ``json.dumps`` accepted is walked.
    """
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if not is_valid_text(item):
                return path
        elif isinstance(item, Mapping):
            children: list[tuple[str, Any]] = []
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not is_valid_text(key):
                    return child_path
                children.append((child_path, child))
            pending.extend(reversed(children))  # document order
        elif isinstance(item, (list, tuple)):
            pending.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def statement_bytes(sql: str, values: Sequence[Any]) -> int:
    """What a statement counts towards ``MAX_STATEMENT_BYTES``: its text and bound values."""
    bound = (str(value).encode("utf-8", "surrogatepass") for value in values if value is not None)
    return len(sql.encode("utf-8")) + sum(len(text) for text in bound)


def _check_text(subject: str, text: str) -> None:
    if not is_valid_text(text):
        raise InvalidFilterError(
            f"{subject} is not valid Unicode (it holds a lone surrogate); Snowflake cannot "
            "compare it"
        )


def field_path(name: str, params: Params) -> str:
    """``DATA[...]``: the document field ``name`` as a VARIANT (NULL where it is missing)."""
    if _LITERAL_FIELD_RE.fullmatch(name):
        return f"DATA['{name}']"
    return f"DATA[{params.add(name)}]"


class _Field:
    """SQL expressions reading one document field."""

    def __init__(self, name: str, params: Params) -> None:
        self.name = name
        self.path = field_path(name, params)

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
    def plain_number(self) -> str:
        """The field as DOUBLE if it holds a number; NULL for booleans and everything else."""
        return f"TRY_TO_DOUBLE({self.json})"

    @property
    def is_string(self) -> str:
        """TRUE if the field holds a string, FALSE if something else, NULL if missing."""
        # STARTSWITH rather than LEFT(..., 1) = '"': the emulator rewrites LEFT into a CASE.
        return f"STARTSWITH({self.json}, '\"')"

    @property
    def string(self) -> str:
        """The field as VARCHAR if it holds a string, else NULL."""
        return f"(CASE WHEN {self.is_string} THEN {self.path}::STRING END)"

    @property
    def is_null(self) -> str:
        return f"({self.json} = 'null')"


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float))


def _check_operand(field: str, operator: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str):
        _check_text(f"filter on '{printable(field)}': the {operator} value", value)
        return
    if _is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise SnowflakeOperationError(
                f"filter on '{printable(field)}': {operator} needs a finite number, got {value!r}"
            )
        return
    raise SnowflakeOperationError(
        f"filter on '{printable(field)}': {operator} takes a string, number or boolean, "
        f"got {type(value).__name__}"
    )


def _bind_number(value: bool | int | float, params: Params) -> str:
    # Booleans are numbers in the reference semantics (True == 1).
    return params.add(int(value) if isinstance(value, bool) else value)


class WhereTranslator:
    """Renders a ``Where`` into a SQL boolean expression, binding operands in ``params``."""

    def __init__(self, params: Params) -> None:
        self._params = params

    def render(self, where: Where, depth: int = 0) -> str:
        """``where`` as SQL; ``depth`` is the number of $and/$or it is nested in."""
        if not where:
            return "TRUE"
        if not isinstance(where, Mapping):
            raise SnowflakeOperationError(f"a filter must be a mapping, got {type(where).__name__}")
        first = next(iter(where))
        if first in ("$and", "$or"):
            if depth >= MAX_FILTER_DEPTH:
                raise InvalidFilterError(
                    f"filter nests $and/$or more than {MAX_FILTER_DEPTH} levels deep"
                )
            return self._logical(cast(Mapping[str, Any], where), depth + 1)
        return self._fields(cast(Mapping[str, Any], where))

    def _logical(self, where: Mapping[str, Any], depth: int) -> str:
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
            rendered = [self.render(cast(Where, operand), depth) for operand in operands]
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
                    f"filter: '{printable(field)}' is not an operator here; "
                    "use $and/$or at the top of a filter"
                )
            _check_text(f"filter: the field name '{printable(field)}'", field)
            # A bare value is shorthand for $eq, as in MongoDB and upstream.
            operators = condition if isinstance(condition, Mapping) else {"$eq": condition}
            for operator, operand in operators.items():
                parts.append(self._leaf(field, operator, operand))
        return _conjunction(parts)

    def _leaf(self, field: str, operator: str, operand: Any) -> str:
        if operator in ("$in", "$nin"):
            if not isinstance(operand, Sequence) or isinstance(operand, str):
                raise SnowflakeOperationError(
                    f"filter on '{printable(field)}': {operator} takes a list"
                )
            if len(operand) > MAX_LIST_VALUES:
                raise InvalidFilterError(
                    f"filter on '{printable(field)}': {operator} lists {len(operand):,} values; "
                    f"Snowflake takes at most {MAX_LIST_VALUES:,}"
                )
            for value in operand:
                _check_operand(field, operator, value)
            membership = self._membership(field, list(operand))
            return membership if operator == "$in" else _negation(membership)
        _check_operand(field, operator, operand)
        if operator == "$eq":
            return self._membership(field, [operand])
        if operator == "$ne":
            return _negation(self._membership(field, [operand]))
        if operator in _COMPARISONS:
            return self._compare(field, _COMPARISONS[operator], operand)
        raise SnowflakeOperationError(
            f"filter on '{printable(field)}': unsupported operator '{printable(operator)}'"
        )

    def _membership(self, field: str, values: list[Any]) -> str:
        """TRUE when the field equals one of ``values``; FALSE or NULL otherwise."""
        if not values:
            return "FALSE"
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if _is_number(v)]
        has_null = any(v is None for v in values)
        column = COLUMNS.get(field)
        if column is not None and not numbers and not has_null:
            # Mirrored string fields compare on their own column (prunable, indexable).
            return _in(column, [self._params.add(v) for v in strings])
        target = _Field(field, self._params)
        tests: list[str] = []
        if strings:
            # JSON text against JSON text: exact for strings, never true for other types.
            tests.append(_in(target.json, [self._json_text(v) for v in strings]))
        if numbers:
            # A number equals the field's number; booleans also match JSON true/false (True ==
            # 1). Spelled as the booleans' texts plus ``plain_number`` rather than through
            # ``number``'s CASE: the same rows, a smaller statement.
            doubles = [_bind_number(v, self._params) for v in numbers]
            tests.append(_in(target.plain_number, doubles))
            texts = [text for value, text in ((1, "'true'"), (0, "'false'")) if value in numbers]
            if texts:
                tests.append(_in(target.json, texts))
        if has_null:
            tests.append(target.is_null)
        return tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"

    def _json_text(self, value: str) -> str:
        """``value``'s JSON text as SQL: bound as text when every engine writes it alike."""
        if _PLAIN_STRING_RE.fullmatch(value):
            return self._params.add(f'"{value}"')
        # Anything JSON may escape is rendered by the engine's own TO_JSON.
        return f"TO_JSON(TO_VARIANT({self._params.add(value)}))"

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
        return f"({expression} {sql_operator} {bound})"


def _in(expression: str, bound: Sequence[str]) -> str:
    if len(bound) == 1:
        return f"({expression} = {bound[0]})"
    return f"({expression} IN ({', '.join(bound)}))"


def _negation(condition: str) -> str:
    # The one place a leaf must be two-valued: NOT NULL would drop a row that should match.
    return f"(NOT COALESCE({condition}, FALSE))"


def _conjunction(parts: Sequence[str]) -> str:
    if not parts:
        return "TRUE"
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def where_sql(where: Where, params: Params) -> str:
    """The ``WHERE`` condition for ``where`` (NULL for some non-matching rows; see above)."""
    return WhereTranslator(params).render(where)


def cursor_sql(cursor: Cursor, direction: SortDirection, params: Params) -> str:
    """Rows strictly after ``cursor`` in (CREATION_UTC, ID) order, as the reference pages."""
    op = "<" if direction == SortDirection.DESC else ">"
    _check_text("the cursor's creation_utc", str(cursor.creation_utc))
    _check_text("the cursor's id", str(cursor.id))
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
        _check_text(f"sort: the field name '{printable(field)}'", field)
        way = "DESC" if direction == SortDirection.DESC else "ASC"
        nulls = "NULLS LAST" if way == "DESC" else "NULLS FIRST"
        column = COLUMNS.get(field)
        if column is not None:
            terms.append(f"{column} {way} {nulls}")
            continue
        target = _Field(field, params)
        # Three keys: strings after everything else; then numbers, after missing/null/other
        # values (all NULL as numbers, so tied); then the strings among themselves. DESC
        # reverses each. A string's JSON text never parses as a number, so the groups are
        # disjoint; a missing field is not a string (COALESCE), so it ties with null.
        terms.extend(
            (
                f"COALESCE({target.is_string}, FALSE) {way}",
                f"{target.number} {way} {nulls}",
                f"{target.string} {way}",
            )
        )
    terms.append(FIRST_ORDER_SQL)
    return ", ".join(terms)


__all__ = [
    "COLUMNS",
    "FIRST_ORDER_SQL",
    "MAX_FILTER_DEPTH",
    "MAX_LIST_VALUES",
    "MAX_STATEMENT_BYTES",
    "PARAMSTYLE",
    "Params",
    "WhereTranslator",
    "cursor_sql",
    "field_order_sql",
    "field_path",
    "invalid_text_path",
    "is_valid_text",
    "page_order_sql",
    "printable",
    "statement_bytes",
    "where_sql",
]
