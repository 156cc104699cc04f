"""`SnowflakeStore`, the Snowflake endpoint of copy/export/import, on the session's emulator:
what it writes reads back equal, in ID order and pages; writes are batched by size, each
statement under Snowflake's 1 MB, and idempotent; merges keep the newer; clear empties;
collections map tables back to Parlant's names."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest
import snowflake.connector
from parlant.core.persistence.document_database import BaseDocument

from parlant_router.snowflake import InvalidDocumentError, SnowflakeDocumentDatabase
from parlant_router.snowflake.collection import MAX_DOCUMENT_BYTES
from parlant_router.snowflake.sql import MAX_STATEMENT_BYTES, statement_bytes
from parlant_router.transfer import snowflake_endpoint
from parlant_router.transfer.endpoints import Document, MergeCounts, StoreDestination
from parlant_router.transfer.snowflake_endpoint import SnowflakeStore, describe

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase


def doc(identifier: str, version: str = "0.1.0", **fields: Any) -> Document:
    return {"id": identifier, "version": version, "creation_utc": "2025-01-01T00:00:00", **fields}


def store_of(database: SnowflakeDocumentDatabase, **kwargs: Any) -> SnowflakeStore:
    return SnowflakeStore("sessions", database, describe(database, "the emulator"), **kwargs)


async def read_all(store: SnowflakeStore, collection: str) -> list[Document]:
    return [d async for page in store.pages(collection) for d in page]


class Recorder:
    """Every statement sent through the wrapped connections: its size (text and binds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sizes: list[tuple[str, int]] = []

    def factory(self, kwargs: Mapping[str, Any]) -> Any:
        return _Connection(snowflake.connector.connect(**kwargs), self)


class _Connection:
    def __init__(self, connection: Any, recorder: Recorder) -> None:
        self._connection = connection
        self._recorder = recorder

    def cursor(self) -> Any:
        return _Cursor(self._connection.cursor(), self._recorder)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _Cursor:
    def __init__(self, cursor: Any, recorder: Recorder) -> None:
        self._cursor = cursor
        self._recorder = recorder

    def execute(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        with self._recorder._lock:
            self._recorder.sizes.append((sql.split()[0], statement_bytes(sql, params or [])))
        return self._cursor.execute(sql, params, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


async def test_it_is_a_store_destination(open_database: OpenDatabase) -> None:
    async with open_database(table_prefix="PARLANT_SESSIONS_") as database:
        store: StoreDestination = store_of(database)
        assert store.description == f"{database.location}.PARLANT_SESSIONS_* on the emulator"
        assert database.location.count(".") == 1  # DATABASE.SCHEMA
        assert store.store == "sessions"


async def test_what_is_written_reads_back_equal_in_id_order(
    open_database: OpenDatabase,
) -> None:
    near_limit = "x" * (MAX_DOCUMENT_BYTES - 1_000)
    documents = [
        doc("b", text="héllo ✓ 日本語 😀", nested={"list": [1, 2.5, None, True], "o": {"k": []}}),
        doc("a", quote='he said "hi"\n\t\\', empty=""),
        doc("c", big=near_limit),
        doc("d", big=near_limit),
        {"id": "e", "no_version": True},
    ]
    async with open_database() as database:
        store = store_of(database)
        assert await store.write("events", documents) == 5

        read = await read_all(store, "events")

        assert read == sorted(documents, key=lambda d: d["id"])
        assert await store.count("events") == 5
        assert await store.collections() == ["events"]


async def test_a_document_snowflake_cannot_take_is_refused_before_any_statement(
    open_database: OpenDatabase,
) -> None:
    async with open_database() as database:
        store = store_of(database)
        await store.write("events", [doc("ok")])
        before = database.statements_sent

        with pytest.raises(InvalidDocumentError):
            await store.write("events", [doc("big", big="x" * MAX_DOCUMENT_BYTES)])

        assert database.statements_sent == before
        assert await store.count("events") == 1


async def test_pages_are_cut_by_rows_and_characters_in_id_order(
    open_database: OpenDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = [doc(f"id{n:03}", text="y" * 100) for n in range(25)]
    async with open_database() as database:
        store = store_of(database)
        await store.write("events", list(reversed(documents)))
        monkeypatch.setattr(snowflake_endpoint, "PAGE_ROWS", 10)

        before = database.statements_sent
        pages = [page async for page in store.pages("events")]
        assert [len(page) for page in pages] == [10, 10, 5]
        assert database.statements_sent - before == 3  # the short page ends it
        assert [d for page in pages for d in page] == documents

        monkeypatch.setattr(snowflake_endpoint, "PAGE_CHARS", 450)  # ~2.x documents
        pages = [page async for page in store.pages("events")]
        assert all(len(page) <= 3 for page in pages) and len(pages) >= 9
        assert [d for page in pages for d in page] == documents

        assert await read_all(store, "missing") == []


async def test_writes_are_batched_by_size_under_the_statement_limit(
    open_database: OpenDatabase,
) -> None:
    recorder = Recorder()
    documents = [doc(f"doc-{n:05}", text="z" * 2_000) for n in range(3_000)]
    async with open_database(connection_factory=recorder.factory) as database:
        store = store_of(database)
        await store.write("events", documents[:1])  # creates the table
        mark, before = len(recorder.sizes), database.statements_sent

        assert await store.write("events", documents) == 2_999

        sent = database.statements_sent - before
        inserts = recorder.sizes[mark:]
        assert sent == len(inserts) == 9  # ~2.15 KB a row, ~364 a batch (800 KB)
        assert all(kind == "INSERT" for kind, _ in inserts)
        assert max(size for _, size in inserts) < MAX_STATEMENT_BYTES
        assert await store.count("events") == 3_000

        before = database.statements_sent
        assert await store.write("events", documents) == 0  # idempotent
        assert database.statements_sent - before == 9
        assert await store.count("events") == 3_000


async def test_a_batch_holding_one_id_twice_inserts_the_first(
    open_database: OpenDatabase,
) -> None:
    async with open_database() as database:
        store = store_of(database)
        assert await store.write("events", [doc("a", n=1), doc("a", n=2), doc("b")]) == 2
        assert await store.write("events", [doc("a", n=3), doc("c")]) == 1
        assert [d.get("n") for d in await read_all(store, "events")] == [1, None, None]


async def test_merge_inserts_replaces_the_older_and_keeps_the_newer(
    open_database: OpenDatabase,
) -> None:
    async with open_database() as database:
        store = store_of(database)
        await store.write(
            "events",
            [
                doc("older", "0.1.0", text="old"),
                doc("newer", "0.3.0", text="kept"),
                doc("same", "0.2.0", text="same"),
                doc("changed", "0.2.0", text="before"),
                doc("odd", "v2", text="odd"),
            ],
        )
        incoming = [
            doc("older", "0.2.0", text="new"),
            doc("newer", "0.2.0", text="incoming"),
            doc("same", "0.2.0", text="same"),
            doc("changed", "0.2.0", text="after"),
            doc("odd", "v3", text="odd3"),  # not semantic versions: compared as text
            doc("fresh", "0.1.0"),
        ]
        before = database.statements_sent

        counts = await store.merge("events", incoming)

        assert database.statements_sent - before == 3  # read held, insert, update
        assert counts == MergeCounts(inserted=1, replaced=3, kept=2)
        texts = {d["id"]: d.get("text") for d in await read_all(store, "events")}
        assert texts == {
            "older": "new",
            "newer": "kept",
            "same": "same",
            "changed": "after",
            "odd": "odd3",
            "fresh": None,
        }
        assert (await read_all(store, "events"))[0] == doc("changed", "0.2.0", text="after")

        before = database.statements_sent
        assert await store.merge("events", incoming) == MergeCounts(kept=6)
        assert database.statements_sent - before == 1  # nothing to write


async def test_merge_orders_semantic_versions_numerically(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        store = store_of(database)
        await store.write("events", [doc("a", "0.9.0")])
        assert await store.merge("events", [doc("a", "0.10.0")]) == MergeCounts(replaced=1)
        assert (await read_all(store, "events"))[0]["version"] == "0.10.0"


async def test_merge_resolves_one_id_given_twice_in_order(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        store = store_of(database)
        counts = await store.merge("fresh", [doc("a", "0.1.0"), doc("a", "0.2.0", n=2)])
        assert counts == MergeCounts(inserted=1, replaced=1)
        assert await read_all(store, "fresh") == [doc("a", "0.2.0", n=2)]


async def test_clear_deletes_every_row_and_keeps_the_tables(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        store = store_of(database)
        await store.write("events", [doc("a"), doc("b")])
        await store.write("metadata", [{"id": "meta", "version": "0.7.0"}])

        await store.clear()

        assert await store.collections() == []
        assert await store.count("events") == 0
        assert set(await database.tables()) == {
            f"{database.table_prefix}EVENTS",
            f"{database.table_prefix}METADATA",
        }


async def test_collections_map_tables_back_to_collections(
    open_database: OpenDatabase, table_prefix: str
) -> None:
    nested = f"{table_prefix}CUSTOMERS_"
    async with open_database() as database:
        other = database.with_table_prefix(nested)
        customers = await other.create_collection("customers", BaseDocument)
        await customers.insert_one(doc("c1"))  # type: ignore[arg-type]
        store = store_of(database, other_prefixes=[nested, table_prefix])
        await store.write("events", [doc("e1")])
        await store.write("events_failed_migrations", [doc("f1")])
        await store.write("metadata", [{"id": "meta", "version": "0.7.0"}])
        await database.create_collection("sessions", BaseDocument)  # empty: not listed
        await database.run(  # not a name `table_name` gives: another program's
            "test", "t", lambda s: s.execute(f'CREATE TABLE "{table_prefix}Mixed" (ID STRING)')
        )

        reopened = database.with_table_prefix(table_prefix)  # its catalog: read afresh
        before = reopened.statements_sent
        listed = await store_of(reopened, other_prefixes=[nested]).collections()
        assert reopened.statements_sent - before == 2  # the catalog, one probe of every table
        assert listed == ["events", "events_failed_migrations", "metadata"]
        # Without the other store's prefix, its tables look like this store's.
        unaware = await store_of(reopened).collections()
        assert unaware == ["customers_customers", *listed]

        before = reopened.statements_sent
        assert await store_of(reopened).count("nothing") == 0
        assert reopened.statements_sent == before
