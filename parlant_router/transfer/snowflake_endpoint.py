"""One store in Snowflake as a `copy`/`export`/`import` endpoint: `SnowflakeStore`.

The store is one `SnowflakeDocumentDatabase` opened with the store's table prefix; its
tables are Parlant's layout (ID, VERSION, CREATION_UTC, DATA VARIANT), and each document
moves as its DATA, every field included. Statements reuse the database's rules: the
catalog (`tables`), the table DDL (`create_collection`), `encode` (a document as its
row's values, refused when Snowflake cannot take it), the batch sizing of migrations
(`_batches`: each statement, text and bound values, under `MAX_BATCH_BYTES` plus one
row's placeholders, far under Snowflake's 1 MB), values always bound (`Params`).

Which tables are the store's (`collections`, `clear`): those of the current schema whose
name is `<PREFIX><NAME>` in Snowflake's folded form (`[A-Z0-9_]`, as `table_name` names
them), the collection being `<name>` lower-cased (`PARLANT_SESSIONS_EVENTS` is `events`,
`PARLANT_SESSIONS_EVENTS_FAILED_MIGRATIONS` is `events_failed_migrations`: a table where a
migration moved what it could not load is a collection of its own, under the name by which
`table_name` finds its table again). A table under one of `other_prefixes` (the prefixes of
the other stores in the same schema that extend this one's: `PARLANT_SESSIONS_` under
`PARLANT_`) belongs to that store and is left out.

Statements, measured on the emulator (tests/transfer/test_snowflake_endpoint.py):
`collections` 2 (the catalog, once per database; one UNION ALL probing every table),
`count` 1, `pages` 1 per page, `write` 1 per batch (+1 to create a
missing table), `merge` at most 3 per batch (read the held, insert, update), `clear` 1 per
table. 3,000 documents of 2 KB are written in 9 statements of ~780 KB.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from parlant.core.common import Version
from parlant.core.persistence.document_database import BaseDocument

from parlant_router.snowflake.collection import encode
from parlant_router.snowflake.database import SnowflakeDocumentDatabase, _batches
from parlant_router.snowflake.errors import SnowflakeOperationError
from parlant_router.snowflake.identifiers import quote_identifier, sanitize_identifier, table_name
from parlant_router.snowflake.runner import Statements
from parlant_router.snowflake.sql import MAX_STATEMENT_BYTES, Params, statement_bytes
from parlant_router.transfer.endpoints import Document, MergeCounts

#: Rows one page of `pages` holds at most.
PAGE_ROWS = 10_000
#: Characters of JSON one page holds at most, beyond its first document (at most
#: `MAX_DOCUMENT_BYTES`): with `PAGE_ROWS`, what reading holds in memory.
PAGE_CHARS = 4_000_000

_JSON_CHARS = "COALESCE(LENGTH(TO_JSON(DATA)), 0)"  # a NULL would drop its row from the sum


def describe(database: SnowflakeDocumentDatabase, where: str) -> str:
    """`PARLANT.PUBLIC.PARLANT_SESSIONS_* on <where>` (`where`: `SnowflakeBackend.describe()`)."""
    return f"{database.location}.{database.table_prefix}* on {where}"


class SnowflakeStore:
    """One store's tables in Snowflake: a `StoreDestination` (and so a `StoreSource`).

    Args:
        store: the store's name (`sessions`, ...).
        database: the store's database, open (the caller closes it), with the store's
            table prefix.
        description: where it is, for messages (see `describe`).
        other_prefixes: table prefixes of the other stores in the same schema; the tables
            under those that extend this store's prefix are theirs (see the module).
    """

    def __init__(
        self,
        store: str,
        database: SnowflakeDocumentDatabase,
        description: str,
        *,
        other_prefixes: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.description = description
        self._database = database
        prefix = database.table_prefix
        self._excluded = tuple(
            folded
            for folded in (sanitize_identifier(other) for other in other_prefixes)
            if folded != prefix and folded.startswith(prefix)
        )

    # Reading

    async def collections(self) -> Sequence[str]:
        """The store's collections holding at least one document, sorted (see the module
        for which tables are the store's); one query probes them all."""
        tables = await self._tables()
        if not tables:
            return []
        probes = " UNION ALL ".join(
            f"SELECT {index}, COUNT(*) FROM (SELECT 1 FROM {quote_identifier(table)} LIMIT 1)"
            for index, table in enumerate(tables.values())
        )
        rows = await self._database.run(
            "list collections", self._database.table_prefix, lambda s: s.query(probes)
        )
        names = list(tables)
        return sorted(names[int(index)] for index, found in rows if int(found) > 0)

    async def count(self, collection: str) -> int:
        """The collection's documents: one COUNT(*); 0, with no statement, when its table
        does not exist."""
        table = self._table(collection)
        if table not in await self._database.tables():
            return 0
        sql = f"SELECT COUNT(*) FROM {quote_identifier(table)}"
        rows = await self._database.run("count", table, lambda s: s.query(sql))
        return int(rows[0][0]) if rows else 0

    async def pages(self, collection: str) -> AsyncIterator[list[Document]]:
        """The collection's documents in ID order, in pages of at most `PAGE_ROWS`
        documents and `PAGE_CHARS` characters of JSON (a larger document is a page of its
        own): one query a page."""
        table = self._table(collection)
        if table not in await self._database.tables():
            return
        after: str | None = None
        more = True
        while more:
            more, after, page = await self._page(table, after)
            if page:
                yield page

    async def _page(self, table: str, after: str | None) -> tuple[bool, str | None, list[Document]]:
        """The page after ID `after` (from the first when None): whether more may follow,
        the ID to continue after, the documents. As the migrations' `_load_page`: the running
        sum is over the innermost `ORDER BY ... LIMIT`'s rows, and `COUNT(*) OVER ()`, the
        rows before the cut, tells a cut page from the last without a further query."""
        params = Params()
        condition = "TRUE" if after is None else f"ID > {params.add(after)}"
        sql = (
            "SELECT ID, TO_JSON(DATA), COUNT(*) OVER () FROM (SELECT ID, DATA FROM "
            f"{quote_identifier(table)} WHERE {condition} ORDER BY ID LIMIT {int(PAGE_ROWS)}) "
            f"QUALIFY SUM({_JSON_CHARS}) OVER (ORDER BY ID ROWS BETWEEN UNBOUNDED PRECEDING "
            f"AND CURRENT ROW) - {_JSON_CHARS} < {params.add(PAGE_CHARS)} ORDER BY ID"
        )
        rows = await self._database.run("read", table, lambda s: s.query(sql, params.values))
        if not rows:
            return False, after, []
        documents = [json.loads(data) for _, data, _ in rows if data is not None]
        before_cut = int(rows[-1][2])
        more = before_cut == PAGE_ROWS or len(rows) < before_cut
        return more, str(rows[-1][0]), documents

    # Writing

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        """Insert the documents whose id the collection does not hold (the first of those
        sharing an id), creating its table if missing. One statement per batch, each
        `INSERT ... SELECT ... FROM VALUES ... WHERE NOT EXISTS`: running a batch again
        inserts nothing twice. Returns the rows inserted. A document Snowflake cannot take
        is refused (`InvalidDocumentError`) before its batch is sent."""
        table = await self._ensure_table(collection)
        unique: dict[str, Document] = {}
        for document in documents:
            unique.setdefault(str(document["id"]), document)
        inserted = 0
        for batch in _batches(list(unique.items())):
            inserted += await self._insert(table, [doc for _, doc in batch], "write")
        return inserted

    async def merge(self, collection: str, documents: Sequence[Document]) -> MergeCounts:
        """Insert the documents the collection does not hold; replace a held one by the
        source's when the source's `version` is higher (semantic versions; text order when
        either is not one) or the same with other content; keep it otherwise. Documents
        sharing an id in `documents` are merged in order, as if one after the other. Per
        batch: one query of the held documents by id, one INSERT, one UPDATE (each only
        when needed)."""
        table = await self._ensure_table(collection)
        counts = MergeCounts()
        pending: dict[str, Document] = {}
        for document in documents:
            identifier = str(document["id"])
            earlier = pending.get(identifier)
            if earlier is None:
                pending[identifier] = document
            elif _wins(_normalized(document), _normalized(earlier)):
                pending[identifier] = document
                counts += MergeCounts(replaced=1)
            else:
                counts += MergeCounts(kept=1)
        for batch in _batches(list(pending.items())):
            counts += await self._merge_batch(table, batch)
        return counts

    async def _merge_batch(self, table: str, batch: Sequence[tuple[str, Document]]) -> MergeCounts:
        rows = {identifier: encode("merge", table, document) for identifier, document in batch}
        params = Params()
        in_list = ", ".join(params.add(identifier) for identifier in rows)
        select = f"SELECT ID, TO_JSON(DATA) FROM {quote_identifier(table)} WHERE ID IN ({in_list})"
        found = await self._database.run("merge", table, lambda s: s.query(select, params.values))
        held = {str(identifier): json.loads(data) for identifier, data in found}
        to_insert: list[dict[str, Any]] = []
        to_replace: list[dict[str, Any]] = []
        kept = 0
        for identifier, row in rows.items():
            current = held.get(identifier)
            if identifier not in held:
                to_insert.append(row)
            elif _wins(json.loads(row["data"]), current):
                to_replace.append(row)
            else:
                kept += 1
        inserted = await self._insert_rows(table, to_insert, "merge") if to_insert else 0
        if to_replace:
            await self._replace(table, to_replace)
        # A row inserted meanwhile by another writer is left to it: counted as kept.
        kept += len(to_insert) - inserted
        return MergeCounts(inserted=inserted, replaced=len(to_replace), kept=kept)

    async def clear(self) -> None:
        """Delete every row of every table of the store (its tables stay): one DELETE a
        table."""
        for table in (await self._tables()).values():
            await self._send("clear", table, f"DELETE FROM {quote_identifier(table)}", [])

    async def finish(self) -> None:
        """Nothing to do: every statement is committed as it runs (autocommit)."""

    # Helpers

    def _table(self, collection: str) -> str:
        return table_name(self._database.table_prefix, collection)

    async def _tables(self) -> dict[str, str]:
        """The store's tables by collection name, in the catalog's order (see the module)."""
        prefix = self._database.table_prefix
        found: dict[str, str] = {}
        for table in await self._database.tables():
            if not table.startswith(prefix) or table.startswith(self._excluded):
                continue
            collection = table[len(prefix) :].lower()
            if collection and table_name(prefix, collection) == table:
                found[collection] = table
        return found

    async def _ensure_table(self, collection: str) -> str:
        """The collection's table, created when missing by the database's own DDL (an
        upstream failed-migrations table gets the columns it lacks)."""
        await self._database.create_collection(collection, BaseDocument)
        return self._table(collection)

    async def _insert(self, table: str, documents: Sequence[Document], operation: str) -> int:
        rows = [encode(operation, table, document) for document in documents]
        return await self._insert_rows(table, rows, operation)

    async def _insert_rows(self, table: str, rows: Sequence[dict[str, Any]], operation: str) -> int:
        quoted = quote_identifier(table)
        params = Params()
        values = ", ".join(
            "(" + ", ".join(params.add(row[key]) for key in _KEYS) + ")" for row in rows
        )
        sql = (
            f"INSERT INTO {quoted} (ID, VERSION, CREATION_UTC, DATA) "
            "SELECT V.ID, V.VERSION, V.CREATION_UTC, PARSE_JSON(V.DATA) FROM VALUES "
            f"{values} AS V(ID, VERSION, CREATION_UTC, DATA) WHERE NOT EXISTS "
            f"(SELECT 1 FROM {quoted} AS E WHERE E.ID = V.ID)"
        )
        return await self._send(operation, table, sql, params.values)

    async def _replace(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Replace held rows by id in one UPDATE (as the migrations' `_write_migrated`)."""
        quoted = quote_identifier(table)
        params = Params()
        values = ", ".join(
            "(" + ", ".join(params.add(row[key]) for key in _KEYS) + ")" for row in rows
        )
        sql = (
            f"UPDATE {quoted} SET VERSION = V.NEW_VERSION, CREATION_UTC = V.NEW_CREATION_UTC, "
            "DATA = PARSE_JSON(V.NEW_DATA) FROM (SELECT COLUMN1 AS OLD_ID, COLUMN2 AS "
            "NEW_VERSION, COLUMN3 AS NEW_CREATION_UTC, COLUMN4 AS NEW_DATA FROM VALUES "
            f"{values}) AS V WHERE {quoted}.ID = V.OLD_ID"
        )
        await self._send("merge", table, sql, params.values)

    async def _send(self, operation: str, table: str, sql: str, values: list[Any]) -> int:
        size = statement_bytes(sql, values)
        if size > MAX_STATEMENT_BYTES:  # the batching keeps far under it; never sent over
            raise SnowflakeOperationError(
                f"{operation} on {table}: a batch of {size:,} bytes exceeds Snowflake's "
                f"statement limit ({MAX_STATEMENT_BYTES:,})"
            )

        def work(statements: Statements) -> int:
            return statements.execute(sql, values)

        return await self._database.run(operation, table, work)


#: An encoded row's values in the order of the columns ID, VERSION, CREATION_UTC, DATA.
_KEYS = ("id", "version", "creation_utc", "data")


def _normalized(document: Document) -> Any:
    """The document as its JSON reads back (tuples as lists, ...), to compare contents."""
    return json.loads(json.dumps(document, ensure_ascii=False))


def _wins(source: Any, held: Any) -> bool:
    """Whether `source` replaces `held` (both as JSON reads back): its `version` is higher,
    or the same and its content differs."""
    order = _version_order(source.get("version"), held.get("version"))
    return order > 0 or (order == 0 and source != held)


def _version_order(source: Any, held: Any) -> int:
    """1, 0 or -1 as `source` is higher, the same or lower: as semantic versions, else as
    text (a missing version is the empty text)."""
    try:
        a, b = Version.from_string(str(source)), Version.from_string(str(held))
    except (TypeError, ValueError):
        x = "" if source is None else str(source)
        y = "" if held is None else str(held)
        return (x > y) - (x < y)
    return (a > b) - (a < b)


__all__ = ["PAGE_CHARS", "PAGE_ROWS", "SnowflakeStore", "describe"]
