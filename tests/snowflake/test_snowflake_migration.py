"""Opening a collection with a loader: what it reads, and that it migrates exactly the
documents a full pass over the table migrates (the reference below is the open as it was
before: every document read and loaded in Python)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest
from parlant.core.common import Version
from parlant.core.persistence.common import MigrationRequired
from parlant.core.persistence.document_database import BaseDocument, identity_loader
from parlant.core.persistence.document_database_helper import DocumentMigrationHelper
from parlant.core.sessions import SessionDocumentStore

from parlant_router.durable.current_version import CurrentVersionDocumentDatabase
from parlant_router.snowflake import CountingConnectionFactory, SnowflakeDocumentDatabase
from parlant_router.snowflake import database as database_module
from parlant_router.snowflake.collection import serialize
from parlant_router.snowflake.database import _batches
from parlant_router.snowflake.runner import Statements

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase
    from tests.support.logger import RecordingLogger

Loader = Callable[[BaseDocument], Awaitable[BaseDocument | None]]
Row = tuple[Any, ...]


async def full_pass(database: SnowflakeDocumentDatabase, name: str, loader: Loader) -> int:
    """The reference: the open before this change, which read every document and ran the
    loader on each. Returns the rows it read."""
    collection = await database.create_collection(name, BaseDocument)
    rows = await database.run(
        "migrate",
        collection.table,
        lambda s: s.query(f'SELECT ID, TO_JSON(DATA) FROM "{collection.table}"'),
    )
    changed: list[tuple[str, dict[str, Any]]] = []
    failed: list[tuple[str, dict[str, Any]]] = []
    for identifier, data in rows:
        document = json.loads(data)
        try:
            migrated = await loader(cast(BaseDocument, document))
        except Exception:
            migrated = None
        if migrated is None:
            failed.append((str(identifier), document))
        elif migrated != document:
            changed.append((str(identifier), dict(migrated)))
    for batch in _batches(changed):
        await database._write_migrated(collection.table, batch)
    for batch in _batches(failed):
        await database._move_failed(collection, batch)
    return len(rows)


async def fill(
    database: SnowflakeDocumentDatabase, name: str, documents: list[dict[str, Any]]
) -> None:
    """Create the collection's table and insert `documents`, 100 to a statement."""
    collection = await database.create_collection(name, BaseDocument)
    inserts: list[tuple[str, list[Any]]] = []
    for start in range(0, len(documents), 100):
        values: list[Any] = []
        for document in documents[start : start + 100]:
            row = serialize(document)
            values.extend((row["id"], row["version"], row["creation_utc"], row["data"]))
        places = ", ".join(
            f"(:{n + 1}, :{n + 2}, :{n + 3}, :{n + 4})" for n in range(0, len(values), 4)
        )
        inserts.append(
            (
                f'INSERT INTO "{collection.table}" (ID, VERSION, CREATION_UTC, DATA) '
                f"SELECT COLUMN1, COLUMN2, COLUMN3, PARSE_JSON(COLUMN4) FROM VALUES {places}",
                values,
            )
        )

    def work(statements: Statements) -> None:
        for sql, values in inserts:
            statements.execute(sql, values)

    await database.run("fill", collection.table, work)


async def rows(database: SnowflakeDocumentDatabase, table: str) -> list[Row]:
    """Every row of `table`, by ID."""
    sql = f'SELECT ID, VERSION, CREATION_UTC, TO_JSON(DATA) FROM "{table}" ORDER BY ID'
    return await database.run("read", table, lambda s: s.query(sql))


async def contents(database: SnowflakeDocumentDatabase, name: str) -> dict[str, list[Row]]:
    """Every row of the collection's table and of its failed-migrations table."""
    table = f"{database.table_prefix}{name.upper()}"
    return {
        "documents": await rows(database, table),
        "failed": await rows(database, f"{table}_FAILED_MIGRATIONS"),
    }


def mixed_documents() -> list[dict[str, Any]]:
    """240 documents of every kind of version, interleaved by ID."""
    documents = []
    for n in range(240):
        document: dict[str, Any] = {"id": f"d{n:03d}", "creation_utc": f"2024-{n:03d}", "n": n}
        kind = n % 8
        if kind in (0, 1, 2):
            document["version"] = "0.1.0"
        elif kind in (3, 4):
            document["version"] = "0.2.0"
        elif kind == 5:
            document["version"] = "0.3.0"
        elif kind == 7:
            document["version"] = (None, 3, "0.4.0")[n % 3]
        # kind 6: no version at all
        documents.append(document)
    return documents


class _Store:
    VERSION = Version.from_string("0.3.0")


async def parlant_loader(document: BaseDocument) -> BaseDocument | None:
    """A store's loader as Parlant writes them: converters by version, one that rejects some
    documents by their content."""

    async def v0_1_0_to_v0_2_0(doc: BaseDocument) -> BaseDocument | None:
        return cast(BaseDocument, {**doc, "version": "0.2.0", "upgraded": True})

    async def v0_2_0_to_v0_3_0(doc: BaseDocument) -> BaseDocument | None:
        if cast(dict[str, Any], doc)["n"] % 5 == 0:
            return None
        return cast(BaseDocument, {**doc, "version": "0.3.0"})

    return await DocumentMigrationHelper[BaseDocument](
        _Store(), {"0.1.0": v0_1_0_to_v0_2_0, "0.2.0": v0_2_0_to_v0_3_0}
    ).migrate(document)


async def rejects_its_own_version(document: BaseDocument) -> BaseDocument | None:
    """Migrates 0.1.0 to 0.3.0 but rejects 0.3.0 (as Parlant 3.3's guideline associations
    loader does with its own version): the pass reads the group its writes land in."""
    version = cast(dict[str, Any], document)["version"]
    if version == "0.1.0":
        return cast(BaseDocument, {**document, "version": "0.3.0"})
    if version == "0.2.0":
        return document
    return None


SCENARIOS: dict[str, tuple[Loader, bool]] = {
    "parlant's migration helper": (parlant_loader, False),
    "a loader rejecting its own version": (rejects_its_own_version, False),
    "the same under CurrentVersionDocumentDatabase": (rejects_its_own_version, True),
}


@pytest.fixture(params=["default pages", "tiny pages and batches"])
def page_limits(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The product's limits, or limits small enough that pages are cut by rows and by
    characters and batches are written in the middle of the pass."""
    if request.param == "tiny pages and batches":
        monkeypatch.setattr(database_module, "MIGRATION_PAGE_ROWS", 7)
        monkeypatch.setattr(database_module, "MIGRATION_PAGE_CHARS", 400)
        monkeypatch.setattr(database_module, "MAX_BATCH_BYTES", 1_500)
    return str(request.param)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_opening_migrates_exactly_what_a_full_pass_migrates(
    open_database: OpenDatabase, scenario: str, page_limits: str, logger: RecordingLogger
) -> None:
    loader, wrapped = SCENARIOS[scenario]
    async with open_database() as database:
        await fill(database, "reference", mixed_documents())
        await fill(database, "opened", mixed_documents())
        original = await rows(database, f"{database.table_prefix}OPENED")

    async with open_database() as database:
        if wrapped:
            wrapper = CurrentVersionDocumentDatabase(database, "0.3.0")
            await full_pass(database, "reference", wrapper.wrap_loader(loader, "reference"))
            await wrapper.get_collection("opened", BaseDocument, loader)
        else:
            await full_pass(database, "reference", loader)
            await database.get_collection("opened", BaseDocument, loader)
        expected = await contents(database, "reference")
        migrated = await contents(database, "opened")

    assert migrated == expected
    # Not a pass that did nothing: documents were changed and others moved.
    assert migrated["documents"] != original and migrated["failed"]
    assert any(m.startswith("Migrated ") for m in logger.messages("info"))


async def test_opening_reads_one_row_per_version_when_nothing_changes(
    open_database: OpenDatabase,
) -> None:
    documents = [
        {"id": f"d{n:04d}", "version": "0.3.0", "creation_utc": f"2024-{n:04d}", "n": n}
        for n in range(5_000)
    ]
    documents[10]["version"] = 3  # another version the loader keeps
    del documents[20]["version"]  # and a document without one
    async with open_database() as database:
        await fill(database, "docs", documents)

    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database:
        counter.reset()
        docs = await database.get_collection("docs", BaseDocument, identity_loader)
        # The catalog (4 rows: the table's columns), then one row per version.
        assert (counter.statements, counter.rows_returned) == (2, 4 + 3)
        assert (await docs.find({}, limit=0)).total_count == 5_000

        # The reference reads the whole table for the same outcome.
        counter.reset()
        assert await full_pass(database, "docs", identity_loader) == 5_000


@pytest.mark.parametrize("page_rows", [database_module.MIGRATION_PAGE_ROWS, 1_000])
async def test_a_migration_sends_a_statement_per_page_and_per_batch(
    open_database: OpenDatabase,
    logger: RecordingLogger,
    monkeypatch: pytest.MonkeyPatch,
    page_rows: int,
) -> None:
    monkeypatch.setattr(database_module, "MIGRATION_PAGE_ROWS", page_rows)
    documents = [
        {"id": f"d{n:04d}", "version": "0.1.0", "creation_utc": f"2024-{n:04d}", "n": n}
        for n in range(3_000)
    ]

    async def loader(document: BaseDocument) -> BaseDocument | None:
        if cast(dict[str, Any], document)["n"] % 100 == 0:
            return None  # 30 failures
        return cast(BaseDocument, {**document, "version": "0.2.0"})

    async with open_database() as database:
        await fill(database, "reference", documents)
        await fill(database, "opened", documents)

    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database:
        await full_pass(database, "reference", loader)
        counter.reset()
        await database.get_collection("opened", BaseDocument, loader)
        opened = (counter.statements, counter.rows_returned)
        assert await contents(database, "opened") == await contents(database, "reference")

    # (The reference read the catalog.) The versions (1 row); a page per `page_rows`
    # documents, the last one ending the pass by the count; one UPDATE for 2,970 changed
    # documents (under 800,000 bytes); the failed table: CREATE, INSERT, DELETE.
    pages = -(-3_000 // page_rows)
    assert opened == (1 + pages + 1 + 3, 1 + 3_000)
    assert "Migrating " in logger.messages("info")[0]


def events(count: int) -> list[dict[str, Any]]:
    """`count` events of one session, at the version Parlant 3.3 writes them (the store's)."""
    return [
        {
            "id": f"e{n:04d}",
            "version": "0.9.0",
            "creation_utc": f"2024-{n:04d}",
            "session_id": "s1",
            "source": "customer",
            "kind": "message",
            "offset": n,
            "trace_id": "t",
            "data": {"message": "hello"},
            "metadata": None,
            "deleted": False,
        }
        for n in range(count)
    ]


async def test_parlant_session_store_opens_without_reading_its_events(
    open_database: OpenDatabase, table_prefix: str
) -> None:
    prefix = f"{table_prefix}SESSIONS_"
    async with open_database(table_prefix=prefix) as database:
        async with SessionDocumentStore(database, allow_migration=True):
            pass
        await fill(database, "events", events(5_000))
        stored = await rows(database, f"{prefix}EVENTS")

    counter = CountingConnectionFactory()
    async with (
        open_database(table_prefix=prefix, connection_factory=counter) as database,
        SessionDocumentStore(database, allow_migration=True),
    ):
        pass
    # The catalog (12 rows: 3 tables of 4 columns); the versions of metadata, sessions
    # (empty) and events (1 row each where not empty); Parlant's metadata check (find_one)
    # and its version update on leaving (find, update_one).
    assert (counter.statements, counter.rows_returned) == (7, 12 + 2 + 1 + 1)
    async with open_database(table_prefix=prefix) as database:
        assert await rows(database, f"{prefix}EVENTS") == stored


async def test_a_store_that_needs_migration_is_refused_without_reading_it(
    open_database: OpenDatabase, table_prefix: str
) -> None:
    """`server.migrate: false`: Parlant compares the metadata's version with the store's and
    raises before it opens the store's collections."""
    prefix = f"{table_prefix}SESSIONS_"
    async with open_database(table_prefix=prefix) as database:
        async with SessionDocumentStore(database, allow_migration=True):
            pass
        await fill(database, "events", events(100))
        metadata = await database.get_collection("metadata", BaseDocument, identity_loader)
        await metadata.update_one({}, cast(BaseDocument, {"version": "0.8.0"}))
        stored = await rows(database, f"{prefix}EVENTS")

    counter = CountingConnectionFactory()
    async with open_database(table_prefix=prefix, connection_factory=counter) as database:
        with pytest.raises(MigrationRequired):
            async with SessionDocumentStore(database, allow_migration=False):
                pass
        # The catalog (12 rows), the metadata's versions (1 row), its find_one (1 row).
        assert (counter.statements, counter.rows_returned) == (3, 12 + 1 + 1)
        assert await rows(database, f"{prefix}EVENTS") == stored
