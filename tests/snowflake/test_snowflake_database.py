"""Behaviour of our SnowflakeDocumentDatabase beyond the shared contract: integrity,
migrations, the failed-migrations table, collections' lifecycle, pooling, hybrid fallback,
errors."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import TYPE_CHECKING, Any, cast

import pytest
import snowflake.connector
from parlant.core.persistence.common import ObjectId, SortDirection
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionIndex,
    identity_loader,
)

from parlant_router.snowflake import (
    DuplicateDocumentError,
    RetryPolicy,
    SnowflakeDocumentDatabase,
    SnowflakeOperationError,
)
from tests.snowflake.connection_faults import rewriting_factory

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase
    from tests.support.logger import RecordingLogger


def doc(identifier: str, creation_utc: str = "2024", **fields: Any) -> BaseDocument:
    return cast(
        BaseDocument,
        {"id": ObjectId(identifier), "version": "1.0.0", "creation_utc": creation_utc, **fields},
    )


async def test_missing_fields_behave_as_in_mongodb(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        docs = await database.create_collection("sparse", BaseDocument)
        await docs.insert_one(doc("x1", "1", tag="red"))
        await docs.insert_one(doc("x2", "2"))

        async def ids(filters: Any) -> list[str]:
            return [d["id"] for d in await docs.find(filters)]

        assert await ids({"tag": {"$ne": "red"}}) == ["x2"]
        assert await ids({"tag": {"$nin": ["red"]}}) == ["x2"]
        assert await ids({"tag": {"$eq": "red"}}) == ["x1"]
        assert await ids({"tag": {"$in": ["red", "blue"]}}) == ["x1"]
        assert await ids({"tag": {"$lt": "zzz"}}) == ["x1"]
        assert await ids({"tag": {"$gt": 1}}) == []


async def test_inserting_an_existing_id_raises_and_writes_nothing(
    open_database: OpenDatabase,
) -> None:
    async with open_database() as database:
        docs = await database.create_collection("docs", BaseDocument)
        await docs.insert_one(doc("same", "1", text="original"))
        before = database.statements_sent

        with pytest.raises(DuplicateDocumentError) as raised:
            await docs.insert_one(doc("same", "2", text="intruder"))

        assert database.statements_sent - before == 1
        assert str(raised.value) == (
            f"insert_one into {database.table_prefix}DOCS: a document with id 'same' already exists"
        )
        assert list(await docs.find({})) == [doc("same", "1", text="original")]


async def test_migration_changes_and_fails_documents_in_batches(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    async with open_database() as database:
        docs = await database.create_collection("docs", BaseDocument)
        for n in range(6):
            await docs.insert_one(doc(f"d{n}", f"2024-0{n}", n=n))

    async def loader(document: BaseDocument) -> BaseDocument | None:
        n = cast(dict[str, Any], document)["n"]
        if n == 3:
            return None
        if n == 4:
            raise ValueError("cannot migrate four")
        if n % 2 == 0:
            return cast(BaseDocument, {**document, "version": "2.0.0", "even": True})
        return document

    async with open_database() as database:
        before = database.statements_sent
        docs = await database.get_collection("docs", BaseDocument, loader)
        # catalog, versions, one page (the sample was changed: the version is read), one
        # UPDATE for the changes, failed table: CREATE, INSERT, DELETE.
        assert database.statements_sent - before == 7

        assert [(d["id"], d["version"]) for d in await docs.find({})] == [
            ("d0", "2.0.0"),
            ("d1", "1.0.0"),
            ("d2", "2.0.0"),
            ("d5", "1.0.0"),
        ]
        assert (await docs.find_one({"id": {"$eq": "d2"}})) == {
            **doc("d2", "2024-02", n=2),
            "version": "2.0.0",
            "even": True,
        }
        assert any("cannot migrate four" in m for m in logger.messages("error"))

        # The failed documents are a collection like any other: filters, pages, cursor.
        failed = await database.get_collection(
            "docs_failed_migrations", BaseDocument, identity_loader
        )
        page = await failed.find({}, limit=1)
        assert [d["id"] for d in page] == ["d3"] and page.has_more and page.total_count == 2
        rest = await failed.find({}, limit=1, cursor=page.next_cursor)
        assert list(rest) == [doc("d4", "2024-04", n=4)]

    # A second start finds nothing left to do: no document is moved twice.
    async with open_database() as database:
        failed = await database.get_collection(
            "docs_failed_migrations", BaseDocument, identity_loader
        )
        assert len(list(await failed.find({}))) == 2


async def test_ten_thousand_documents_migrate_in_a_constant_number_of_statements(
    open_database: OpenDatabase, table_prefix: str, connection_params: dict[str, Any]
) -> None:
    # Filled server-side in one statement: the emulator parses large VALUES lists slowly.
    digits = ", ".join(f"({i})" for i in range(100))
    with snowflake.connector.connect(**connection_params) as connection:
        cursor = connection.cursor()
        cursor.execute(
            f'CREATE TABLE "{table_prefix}MANY" (ID STRING NOT NULL, VERSION STRING, '
            "CREATION_UTC STRING, DATA VARIANT)"
        )
        cursor.execute(
            f'INSERT INTO "{table_prefix}MANY" (ID, VERSION, CREATION_UTC, DATA) '
            "SELECT 'd' || TO_VARCHAR(N), '1', TO_VARCHAR(N), "
            "OBJECT_CONSTRUCT('id', 'd' || TO_VARCHAR(N), 'version', '1', "
            "'creation_utc', TO_VARCHAR(N), 'n', N) "
            f"FROM (SELECT A.X * 100 + B.X AS N FROM (VALUES {digits}) AS A(X), "
            f"(VALUES {digits}) AS B(X))"
        )

    async def loader(document: BaseDocument) -> BaseDocument | None:
        n = cast(dict[str, Any], document)["n"]
        if n % 10 == 0:
            return None  # 1,000 failures
        if n % 10 == 1:
            return cast(BaseDocument, {**document, "version": "2"})  # 1,000 changes
        return document

    async with open_database() as database:
        before = database.statements_sent
        many = await database.get_collection("many", BaseDocument, loader)
        sent = database.statements_sent - before
        # catalog + versions + 2 pages of 5,000 + 1 UPDATE + failed table CREATE + INSERT +
        # DELETE.
        assert sent == 8
        assert (await many.find({}, limit=0)).total_count == 9_000
        assert (await many.find({"version": {"$eq": "2"}}, limit=0)).total_count == 1_000
        failed = await database.get_collection(
            "many_failed_migrations", BaseDocument, identity_loader
        )
        assert (await failed.find({}, limit=0)).total_count == 1_000


async def test_collections_lifecycle(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        with pytest.raises(ValueError, match='Collection "docs" does not exist'):
            await database.get_collection("docs", BaseDocument, identity_loader)
        docs = await database.create_collection("docs", BaseDocument)
        await docs.insert_one(doc("a"))
        # Creating again keeps the rows (a table, not a memory).
        again = await database.get_or_create_collection("docs", BaseDocument, identity_loader)
        assert len(list(await again.find({}))) == 1

        await database.delete_collection("docs")
        with pytest.raises(ValueError):
            await database.get_collection("docs", BaseDocument, identity_loader)
        fresh = await database.get_or_create_collection("docs", BaseDocument, identity_loader)
        assert list(await fresh.find({})) == []

    async with open_database() as database:
        reopened = await database.get_collection("docs", BaseDocument, identity_loader)
        assert list(await reopened.find({})) == []


async def test_hybrid_tables_fall_back_to_standard_saying_so_once(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    async with open_database(table_type="hybrid") as database:
        first = await database.create_collection("one", BaseDocument)
        second = await database.create_collection("two", BaseDocument)
        await first.insert_one(doc("a"))
        await second.insert_one(doc("a"))
        assert database.table_type == "standard"
        await first.ensure_indexes([])
    fallbacks = [m for m in logger.messages("warning") if "hybrid" in m]
    assert len(fallbacks) == 1
    assert fallbacks[0].endswith("using standard tables instead")


async def test_independent_operations_run_in_parallel(
    connection_params: dict[str, Any], logger: RecordingLogger, table_prefix: str
) -> None:
    """Four finds must be in flight at once: a barrier inside execute proves it."""
    barrier = threading.Barrier(4, timeout=20)

    def gate(sql: str) -> str:
        if sql.startswith("SELECT TO_JSON(DATA) FROM"):  # the finds
            barrier.wait()  # BrokenBarrierError unless 4 run concurrently
        return sql

    async with SnowflakeDocumentDatabase(
        logger,
        connection_params,
        table_prefix=table_prefix,
        connection_factory=rewriting_factory(gate),
        pool_size=4,
    ) as database:
        docs = await database.create_collection("docs", BaseDocument)
        await docs.insert_one(doc("a"))
        results = await asyncio.gather(*(docs.find({}) for _ in range(4)))
    assert [len(list(r)) for r in results] == [1, 1, 1, 1]


async def test_errors_name_operation_and_table_never_a_secret(
    open_database: OpenDatabase, logger: RecordingLogger, connection_params: dict[str, Any]
) -> None:
    async with open_database() as database:
        docs = await database.create_collection("docs", BaseDocument)
        with pytest.raises(SnowflakeOperationError, match="unsupported operator '\\$regex'"):
            await docs.find(cast(Any, {"name": {"$regex": "x"}}))
        # The table disappears behind our back: the error says which operation on what.
        with snowflake.connector.connect(**connection_params) as connection:
            connection.cursor().execute(f'DROP TABLE "{database.table_prefix}DOCS"')
        with pytest.raises(SnowflakeOperationError) as raised:
            await docs.find_one({})
        assert str(raised.value).startswith(f"find_one on {database.table_prefix}DOCS failed: ")

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    secret = "s3cret-Passw0rd"
    unreachable = {
        **connection_params,
        "port": port,
        "password": secret,
        "login_timeout": 2,
        "network_timeout": 2,
    }
    database = SnowflakeDocumentDatabase(
        logger, unreachable, retry=RetryPolicy(attempts=2, initial_delay=0.01, jitter=0)
    )
    with pytest.raises(SnowflakeOperationError) as raised:
        await database.__aenter__()
    message = str(raised.value)
    assert message.startswith("connect on PARLANT.PUBLIC failed: ")
    assert "\n" not in message and secret not in message
    assert all(secret not in text for _, text in logger.records)


async def test_hybrid_tables_get_a_primary_key_and_column_indexes(
    connection_params: dict[str, Any], logger: RecordingLogger, table_prefix: str
) -> None:
    """What ours sends where hybrid tables exist. The emulator has none, so a shim records
    the hybrid DDL and runs its nearest standard equivalent instead."""
    sent: list[str] = []

    def hybrid_shim(sql: str) -> str:
        if sql.startswith(("CREATE HYBRID TABLE", "CREATE INDEX")):
            sent.append(sql)
            sql = sql.replace("CREATE HYBRID TABLE", "CREATE TABLE")
            if sql.startswith("CREATE INDEX"):
                sql = "SELECT 1"
        return sql

    async with SnowflakeDocumentDatabase(
        logger,
        connection_params,
        table_prefix=table_prefix,
        table_type="hybrid",
        connection_factory=rewriting_factory(hybrid_shim),
    ) as database:
        events = await database.create_collection("events", BaseDocument)
        await events.ensure_indexes(
            [
                CollectionIndex(fields=(("id", SortDirection.ASC),)),
                CollectionIndex(
                    fields=(("creation_utc", SortDirection.ASC), ("id", SortDirection.ASC))
                ),
                CollectionIndex(
                    fields=(("session_id", SortDirection.ASC), ("offset", SortDirection.ASC))
                ),
            ]
        )
        await events.insert_one(doc("a"))
        assert database.table_type == "hybrid"

    table = f"{table_prefix}EVENTS"
    assert sent == [
        f'CREATE HYBRID TABLE IF NOT EXISTS "{table}" (ID STRING NOT NULL PRIMARY KEY, '
        "VERSION STRING, CREATION_UTC STRING, DATA VARIANT)",
        f'CREATE INDEX IF NOT EXISTS "{table}_CREATION_UTC_ID_IDX" ON "{table}" (CREATION_UTC, ID)',
    ]
    assert logger.messages("warning") == []


async def test_concurrent_updates_of_one_document_lose_nothing(
    open_database: OpenDatabase,
) -> None:
    async with open_database(pool_size=4) as database:
        docs = await database.create_collection("docs", BaseDocument)
        await docs.insert_one(doc("shared"))
        results = await asyncio.gather(
            *(
                docs.update_one({"id": {"$eq": "shared"}}, cast(BaseDocument, {f"field{i}": i}))
                for i in range(8)
            )
        )
        assert all(result.matched_count == 1 for result in results)
        final = await docs.find_one({"id": {"$eq": "shared"}})
        # Each update read, merged and wrote the whole document: without the version guard
        # a concurrent writer's field would be overwritten by a stale read.
        assert final == {**doc("shared"), **{f"field{i}": i for i in range(8)}}


async def test_a_document_changed_elsewhere_is_never_written_from_a_stale_read(
    open_database: OpenDatabase, connection_params: dict[str, Any]
) -> None:
    async with open_database() as database:
        docs = await database.create_collection("docs", BaseDocument)
        await docs.insert_one(doc("a", n=1))
        assert (await docs.find_one({"id": {"$eq": "a"}})) == doc("a", n=1)  # remembered
        # Another process changes it.
        with snowflake.connector.connect(**connection_params) as connection:
            connection.cursor().execute(
                f"UPDATE \"{database.table_prefix}DOCS\" SET DATA = PARSE_JSON(%(d)s) WHERE ID = 'a'",
                {"d": '{"id": "a", "version": "1.0.0", "creation_utc": "2024", "n": 2, "x": true}'},
            )
        before = database.statements_sent
        result = await docs.update_one({"id": {"$eq": "a"}}, cast(BaseDocument, {"y": 3}))
        # The guarded write misses, then the current document is read and updated.
        assert database.statements_sent - before == 3
        assert result.updated_document == {**doc("a", n=2), "x": True, "y": 3}
        assert (await docs.find_one({"id": {"$eq": "a"}})) == result.updated_document
