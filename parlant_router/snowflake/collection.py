"""One Parlant document collection stored in one Snowflake table.

Table layout (identical to Parlant's upstream adapter): ``ID STRING, VERSION STRING,
CREATION_UTC STRING, DATA VARIANT``; the three columns mirror the document's fields.

Statements per operation (see docs/snowflake.md for the measured comparison with upstream):

- find, find_one (sorted or not), insert_one: 1.
- update_one, delete_one: 1 when the filter is an id and this collection returned that
  document before (the write is guarded by the MD5 of the document as read); otherwise 2 when
  a document matches (read the first match, then the guarded write), 1 when none does.
  Snowflake has no ``UPDATE/DELETE ... RETURNING``. The guard also prevents lost updates.
- update_one with upsert that inserts: 2.

Every operation is safe to retry after a failure at any point: an insert is
``INSERT ... WHERE NOT EXISTS`` (a retry that finds the identical document counts as
success), and writes remember what they sent so that a retry first checks whether the lost
attempt went through.

What Snowflake cannot take is refused before a connection is borrowed, with one line naming
the operation and the table: a document holding a string that is not valid Unicode, or
whose JSON exceeds ``MAX_DOCUMENT_BYTES`` (``InvalidDocumentError``; an update's resulting
document is only known after its read, and is refused before its write); a filter the
translator refuses, or a statement over ``MAX_STATEMENT_BYTES`` (``InvalidFilterError``).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from parlant.core.loggers import Logger
from parlant.core.persistence.common import Cursor, ObjectId, SortDirection, Where, ensure_is_total
from parlant.core.persistence.document_database import (
    CollectionIndex,
    CollectionSort,
    DeleteResult,
    DocumentCollection,
    FindResult,
    InsertResult,
    TDocument,
    UpdateResult,
)

from parlant_router.snowflake.errors import (
    DuplicateDocumentError,
    InvalidDocumentError,
    InvalidFilterError,
    SnowflakeOperationError,
)
from parlant_router.snowflake.identifiers import quote_identifier
from parlant_router.snowflake.runner import StatementRunner, Statements
from parlant_router.snowflake.sql import (
    FIRST_ORDER_SQL,
    MAX_STATEMENT_BYTES,
    Params,
    cursor_sql,
    field_order_sql,
    invalid_text_path,
    page_order_sql,
    positional,
    printable,
    statement_bytes,
    where_sql,
)

T = TypeVar("T")

#: Optimistic-concurrency conflicts tolerated by one update_one/delete_one before giving up.
_MAX_CONFLICTS = 24
#: Seconds of the first pause after a conflict (doubling, randomized, at most 0.5 s).
_CONFLICT_PAUSE = 0.01
#: Bytes of documents remembered per collection, as last read, for one-statement writes by
#: id (their text as Python holds it, plus the id and the entry).
_SEEN_BYTES = 8 * 2**20
#: A larger document is not remembered: it would push out 64 small ones, and its write pays
#: one read more at most.
_SEEN_DOCUMENT_BYTES = _SEEN_BYTES // 64
_SEEN_ENTRY_OVERHEAD = 100

#: Bytes of a document's row (its JSON, id, version and creation_utc, UTF-8) that one
#: statement can carry. Snowflake stores up to 16 MB in a VARIANT (128 MB with the 2025_03
#: behavior bundle; docs.snowflake.com/en/release-notes/bcr-bundles/2025_03/bcr-1942), but the
#: document is a bound value, and the 1 MB statement limit counts bound values
#: (``MAX_STATEMENT_BYTES``): that is the binding limit. The rest of the 1 MB leaves room for
#: the statement's text, the old id and digest of an UPDATE, the filter of a MERGE.
MAX_DOCUMENT_BYTES = 900_000

Candidate = tuple[str, str, str]
"""(ID, the document's JSON text as Snowflake renders it, MD5 of that text)."""


def encode(operation: str, table: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """``serialize(document)``, or ``InvalidDocumentError`` when Snowflake cannot take it: a
    string (key or value) that is not valid Unicode, a row over ``MAX_DOCUMENT_BYTES``, or
    nesting too deep to serialize. The message names the field, never the content."""
    subject = f"{operation} on {table}: document '{printable(str(document.get('id')))}'"
    try:
        row = serialize(document)
    except RecursionError:
        raise InvalidDocumentError(f"{subject} is nested too deeply to store") from None
    size = 0
    for value in _row_values(row):
        if value is None:
            continue
        try:
            size += len(value.encode("utf-8"))
        except UnicodeEncodeError:
            path = invalid_text_path(document) or "id"
            raise InvalidDocumentError(
                f"{subject}: the string at '{printable(path)}' is not valid Unicode (it holds "
                "a lone surrogate); Snowflake cannot store it"
            ) from None
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidDocumentError(
            f"{subject} is {size:,} bytes to send (its JSON and columns); one Snowflake "
            f"statement carries at most {MAX_DOCUMENT_BYTES:,} (its 1 MB limit counts bound "
            "values)"
        )
    return row


def serialize(document: Mapping[str, Any]) -> dict[str, Any]:
    """A document as the values of its row's columns (``id``, ``version``, ``creation_utc``,
    ``data``, in that order)."""
    version = document.get("version")
    creation_utc = document.get("creation_utc")
    return {
        "id": str(document["id"]),
        "version": None if version is None else str(version),
        "creation_utc": None if creation_utc is None else str(creation_utc),
        "data": json.dumps(document, ensure_ascii=False),
    }


class SnowflakeDocumentCollection(DocumentCollection[TDocument]):
    """A ``DocumentCollection`` on one Snowflake table; see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        table: str,
        schema: type[TDocument],
        runner: StatementRunner,
        logger: Logger,
        ensure_indexes: Callable[[SnowflakeDocumentCollection[Any], Sequence[CollectionIndex]], Any]
        | None = None,
    ) -> None:
        self._name = name
        self.table = table
        self._sql_table = quote_identifier(table)
        self._schema = schema
        self._runner = runner
        self._logger = logger
        self._index_builder = ensure_indexes
        # id -> JSON text as last read. A write by id guarded by the text's MD5 needs no read
        # first; a stale entry only makes the guarded write miss, and the normal path runs.
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._seen_bytes = 0

    @property
    def name(self) -> str:
        return self._name

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        direction = sort_direction or SortDirection.ASC
        params = Params()
        condition = self._condition("find", filters, params)
        if cursor is not None:
            condition = f"{condition} AND {self._cursor('find', cursor, direction, params)}"

        if limit is not None and limit <= 0:
            # Nothing to return; the count alone is what the reference reports.
            sql = f"SELECT COUNT(*) FROM {self._sql_table} WHERE {condition}"
            self._check_size("find", sql, params.values)
            rows = await self._run("find", lambda s: s.query(sql, params.values))
            total = int(rows[0][0]) if rows else 0
            return FindResult(items=[], total_count=total, has_more=total > 0, next_cursor=None)

        if limit is None:
            # Every match is returned, so the count is the number of rows: no window needed.
            sql = (
                f"SELECT TO_JSON(DATA) FROM {self._sql_table} "
                f"WHERE {condition} ORDER BY {page_order_sql(direction)}"
            )
        else:
            # The window count runs before LIMIT: the number of matches after the cursor, in
            # the same statement, without reading a single row more than is returned.
            sql = (
                f"SELECT TO_JSON(DATA), COUNT(*) OVER () FROM {self._sql_table} "
                f"WHERE {condition} ORDER BY {page_order_sql(direction)} LIMIT {int(limit)}"
            )
        self._check_size("find", sql, params.values)
        rows = await self._run("find", lambda s: s.query(sql, params.values))
        items = [cast(TDocument, self._remember(row[0])) for row in rows]
        total = len(rows) if limit is None else int(rows[0][1]) if rows else 0
        has_more = limit is not None and total > limit
        next_cursor = None
        if has_more and items:
            last = items[-1]
            next_cursor = Cursor(
                creation_utc=str(last.get("creation_utc", "")),
                id=ObjectId(str(last.get("id", ""))),
            )
        return FindResult(
            items=items, total_count=total, has_more=has_more, next_cursor=next_cursor
        )

    async def find_one(
        self,
        filters: Where,
        sort: CollectionSort | None = None,
    ) -> TDocument | None:
        params = Params()
        condition = self._condition("find_one", filters, params)
        try:
            order = field_order_sql(sort, params) if sort else FIRST_ORDER_SQL
        except SnowflakeOperationError as error:
            raise type(error)(f"find_one on {self.table}: {error}") from None
        sql = (
            f"SELECT TO_JSON(DATA) FROM {self._sql_table} WHERE {condition} "
            f"ORDER BY {order} LIMIT 1"
        )
        self._check_size("find_one", sql, params.values)
        rows = await self._run("find_one", lambda s: s.query(sql, params.values))
        return cast(TDocument, self._remember(rows[0][0])) if rows else None

    def _condition(self, operation: str, filters: Where, params: Params) -> str:
        """``where_sql``, its refusals naming the operation and the table."""
        try:
            return where_sql(filters, params)
        except SnowflakeOperationError as error:
            raise type(error)(f"{operation} on {self.table}: {error}") from None

    def _cursor(
        self, operation: str, cursor: Cursor, direction: SortDirection, params: Params
    ) -> str:
        try:
            return cursor_sql(cursor, direction, params)
        except SnowflakeOperationError as error:
            raise type(error)(f"{operation} on {self.table}: {error}") from None

    def _check_size(self, operation: str, sql: str, values: Sequence[Any]) -> None:
        size = statement_bytes(sql, values)
        if size > MAX_STATEMENT_BYTES:
            raise InvalidFilterError(
                f"{operation} on {self.table}: the statement would be {size:,} bytes with its "
                f"values; Snowflake takes at most {MAX_STATEMENT_BYTES:,}"
            )

    def _remember(self, text: str) -> Any:
        document = json.loads(text)
        identifier = document.get("id") if isinstance(document, dict) else None
        if identifier is not None:
            key = str(identifier)
            self._forget({key})
            cost = _seen_cost(key, text)
            if cost <= _SEEN_DOCUMENT_BYTES:
                self._seen[key] = text
                self._seen_bytes += cost
                while self._seen_bytes > _SEEN_BYTES:
                    self._seen_bytes -= _seen_cost(*self._seen.popitem(last=False))
        return document

    def _seen_candidate(self, filters: Where) -> Candidate | None:
        """The remembered document, when ``filters`` selects exactly one id."""
        condition = (
            filters.get("id") if isinstance(filters, Mapping) and len(filters) == 1 else None
        )
        if isinstance(condition, Mapping) and set(condition) == {"$eq"}:
            condition = condition["$eq"]
        if not isinstance(condition, str) or (text := self._seen.get(condition)) is None:
            return None
        return condition, text, hashlib.md5(text.encode("utf-8")).hexdigest()

    def _candidates(
        self, statements: Statements, filters: Where, seen: Candidate | None
    ) -> Iterator[Candidate]:
        """The first matching row, read again each time the caller's guarded write misses."""
        if seen is not None:
            yield seen
        for conflicts in range(_MAX_CONFLICTS):
            if conflicts:
                # Two writers of one hot document fall into lockstep, the same one losing
                # every round; a random pause breaks it. This runs in the worker thread.
                time.sleep(random.uniform(0, min(_CONFLICT_PAUSE * 2**conflicts, 0.5)))
            match = self._first_match(statements, filters)
            if match is None:
                return
            yield match
        raise SnowflakeOperationError(
            f"{self.table}: the document kept changing concurrently; giving up"
        )

    def _forget(self, identifiers: set[str]) -> None:
        for identifier in identifiers:
            text = self._seen.pop(identifier, None)
            if text is not None:
                self._seen_bytes -= _seen_cost(identifier, text)

    async def ensure_indexes(self, indexes: Sequence[CollectionIndex]) -> None:
        if self._index_builder is not None:
            await self._index_builder(self, indexes)

    async def insert_one(self, document: TDocument) -> InsertResult:
        ensure_is_total(document, self._schema)
        row = encode("insert_one", self.table, document)

        def work(statements: Statements) -> None:
            self._insert(statements, row)

        await self._run("insert_one", work)
        return InsertResult(acknowledged=True)

    def _insert(self, statements: Statements, row: dict[str, Any]) -> None:
        inserted = statements.execute(
            # A FROM-less SELECT, as upstream inserts: the emulator rewrites it at about two
            # thirds of the cost of the SELECT ... FROM VALUES form. :1 is the id, twice.
            f"INSERT INTO {self._sql_table} (ID, VERSION, CREATION_UTC, DATA) "
            "SELECT :1, :2, :3, PARSE_JSON(:4) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self._sql_table} WHERE ID = :1)",
            _row_values(row),
        )
        if inserted:
            return
        if statements.attempt > 1:
            # An earlier attempt may have inserted it before its answer was lost.
            current = self._read_by_id(statements, row["id"])
            if current is not None and current == json.loads(row["data"]):
                return
        raise DuplicateDocumentError(
            f"insert_one into {self.table}: a document with id '{row['id']}' already exists"
        )

    def _read_by_id(self, statements: Statements, identifier: str) -> Any:
        rows = statements.query(
            f"SELECT TO_JSON(DATA) FROM {self._sql_table} WHERE ID = :1 LIMIT 1",
            (identifier,),
        )
        return json.loads(rows[0][0]) if rows else None

    def _first_match_query(self, operation: str, filters: Where) -> tuple[str, list[Any]]:
        """The statement reading the first matching row, and its values."""
        params = Params()
        condition = self._condition(operation, filters, params)
        sql = (
            f"SELECT ID, TO_JSON(DATA), MD5(TO_JSON(DATA)) FROM {self._sql_table} "
            f"WHERE {condition} ORDER BY {FIRST_ORDER_SQL} LIMIT 1"
        )
        return sql, params.values

    def _first_match(self, statements: Statements, filters: Where) -> Candidate | None:
        """The first matching row."""
        rows = statements.query(*self._first_match_query("read", filters))
        if not rows:
            return None
        identifier, data, digest = rows[0]
        return str(identifier), str(data), str(digest)

    async def update_one(
        self,
        filters: Where,
        params: TDocument,
        upsert: bool = False,
    ) -> UpdateResult[TDocument]:
        # Refused before any statement when the change alone cannot be stored (the document
        # it produces holds all of it); the full document is checked once it is known.
        encode("update_one", self.table, {"id": "(the update)", **params})
        return await self._update(
            "update_one", filters, lambda _: params, params if upsert else None
        )

    async def update_with(
        self, filters: Where, change: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    ) -> UpdateResult[TDocument]:
        """Set `change(current)` on the first match, recomputed from what is stored whenever
        another writer changed the document between the read and the guarded write."""
        return await self._update("update_with", filters, change, None)

    async def _update(
        self,
        operation: str,
        filters: Where,
        change: Callable[[Mapping[str, Any]], Mapping[str, Any]],
        upsert: TDocument | None,
    ) -> UpdateResult[TDocument]:
        sent: dict[str, Any] = {}

        def work(
            statements: Statements, candidates: Iterator[Candidate], touched: set[str]
        ) -> UpdateResult[TDocument]:
            if sent.get("update") is not None:
                # A lost attempt may have written the update already.
                identifier, document = sent["update"]
                if self._read_by_id(statements, identifier) == document:
                    return UpdateResult(True, 1, 1, cast(TDocument, document))
            if sent.get("insert") is not None:
                # ... or inserted the upserted document.
                identifier, document = sent["insert"]
                if self._read_by_id(statements, identifier) == document:
                    return UpdateResult(True, 0, 0, upsert)
            for identifier, data, digest in candidates:
                current = json.loads(data)
                updated = {**current, **change(current)}
                row = encode(operation, self.table, updated)
                touched.update((identifier, row["id"]))
                sent["update"] = (row["id"], json.loads(row["data"]))
                changed = statements.execute(
                    f"UPDATE {self._sql_table} SET ID = :1, VERSION = :2, "
                    "CREATION_UTC = :3, DATA = PARSE_JSON(:4) "
                    "WHERE ID = :5 AND MD5(TO_JSON(DATA)) = :6",
                    (*_row_values(row), identifier, digest),
                )
                if changed:
                    return UpdateResult(True, 1, 1, cast(TDocument, updated))
                sent["update"] = None  # changed under us (or a stale memory): read again
            if upsert is None:
                return UpdateResult(True, 0, 0, None)
            ensure_is_total(upsert, self._schema)
            row = encode(operation, self.table, upsert)
            sent["insert"] = (row["id"], json.loads(row["data"]))
            self._insert(statements, row)
            return UpdateResult(True, 0, 0, upsert)

        return await self._write_first_match(operation, filters, work)

    async def insert_unless(self, document: TDocument, conflict: Where) -> bool:
        """Insert `document` unless a document matching `conflict` exists, in one MERGE.

        A MERGE, not an ``INSERT ... WHERE NOT EXISTS``: Snowflake runs the MERGE, UPDATE and
        DELETE statements of one table one at a time (they lock it) while INSERTs run in
        parallel, so two inserts could both find nothing and both write. False when a
        conflicting document exists (nothing written); a document with the same id that is
        not ours is a DuplicateDocumentError, as for insert_one.
        """
        ensure_is_total(document, self._schema)
        row = encode("insert_unless", self.table, document)
        params = Params()
        values = [params.add(value) for value in _row_values(row)]
        condition = self._condition("insert_unless", conflict, params)

        merge = positional(
            f"MERGE INTO {self._sql_table} USING (SELECT {values[0]} AS NEW_ID, "
            f"{values[1]} AS NEW_VERSION, {values[2]} AS NEW_CREATION_UTC, "
            f"PARSE_JSON({values[3]}) AS NEW_DATA WHERE NOT EXISTS (SELECT 1 FROM {self._sql_table} "
            f"WHERE {condition})) AS INCOMING ON ID = INCOMING.NEW_ID "
            "WHEN NOT MATCHED THEN INSERT (ID, VERSION, CREATION_UTC, DATA) VALUES "
            "(INCOMING.NEW_ID, INCOMING.NEW_VERSION, INCOMING.NEW_CREATION_UTC, "
            "INCOMING.NEW_DATA)",
            params.values,
        )
        self._check_size("insert_unless", *merge)

        def work(statements: Statements) -> bool:
            inserted = statements.execute(*merge)
            if inserted:
                return True
            current = self._read_by_id(statements, row["id"])
            if current is None:
                return False
            if current == json.loads(row["data"]) and statements.attempt > 1:
                return True  # an earlier attempt inserted it before its answer was lost
            raise DuplicateDocumentError(
                f"insert_one into {self.table}: a document with id '{row['id']}' already exists"
            )

        return await self._run("insert_unless", work)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        sent: dict[str, Any] = {}

        def work(
            statements: Statements, candidates: Iterator[Candidate], touched: set[str]
        ) -> DeleteResult[TDocument]:
            if sent.get("delete") is not None:
                identifier, document = sent["delete"]
                if self._read_by_id(statements, identifier) is None:
                    return DeleteResult(True, 1, cast(TDocument, document))
            for identifier, data, digest in candidates:
                document = json.loads(data)
                touched.add(identifier)
                sent["delete"] = (identifier, document)
                deleted = statements.execute(
                    f"DELETE FROM {self._sql_table} WHERE ID = :1 AND MD5(TO_JSON(DATA)) = :2",
                    (identifier, digest),
                )
                if deleted:
                    return DeleteResult(True, 1, cast(TDocument, document))
                sent["delete"] = None
            return DeleteResult(True, 0, None)

        return await self._write_first_match("delete_one", filters, work)

    async def _write_first_match(
        self,
        operation: str,
        filters: Where,
        work: Callable[[Statements, Iterator[Candidate], set[str]], T],
    ) -> T:
        """Run ``work`` as one retried operation on the first document ``filters`` matches.

        Each attempt gets the candidates to write, in turn (see ``_candidates``), and a set
        to add every id it writes to; those ids are forgotten afterwards, whatever the outcome.
        """
        # Validated before any statement, so a bad filter never half-runs.
        self._check_size(operation, *self._first_match_query(operation, filters))
        seen = self._seen_candidate(filters)
        touched: set[str] = set()

        def attempt(statements: Statements) -> T:
            return work(statements, self._candidates(statements, filters, seen), touched)

        try:
            return await self._run(operation, attempt)
        finally:
            self._forget(touched)

    async def _run(self, operation: str, work: Callable[[Statements], T]) -> T:
        return await self._runner.run(operation, self.table, work)


def _seen_cost(identifier: str, text: str) -> int:
    """Bytes one remembered document holds: its text and id as Python keeps them, the entry."""
    return sys.getsizeof(text) + sys.getsizeof(identifier) + _SEEN_ENTRY_OVERHEAD


def _row_values(row: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """A serialized row's values for ID, VERSION, CREATION_UTC, DATA, in that order."""
    return row["id"], row["version"], row["creation_utc"], row["data"]


__all__ = [
    "MAX_DOCUMENT_BYTES",
    "SnowflakeDocumentCollection",
    "encode",
    "serialize",
]
