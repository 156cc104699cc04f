"""Statements (round trips) and rows downloaded per operation: ours against Parlant's upstream
adapter, on the same workload, both counted at the connector's cursor.execute.

Run with ``-s`` to print the table that docs/snowflake.md reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, cast

from parlant.adapters.db.snowflake_db import SnowflakeDocumentDatabase as UpstreamDatabase
from parlant.core.persistence.common import ObjectId, SortDirection
from parlant.core.persistence.document_database import (
    BaseDocument,
    DocumentCollection,
    DocumentDatabase,
)

from parlant_router.snowflake import CountingConnectionFactory, SnowflakeDocumentDatabase
from tests.support.logger import RecordingLogger


class Event(TypedDict, total=False):
    id: ObjectId
    version: str
    creation_utc: str
    session_id: str
    offset: int


def event(n: int, session: str = "s1") -> Event:
    return Event(
        id=ObjectId(f"e{n:04d}"),
        version="1.0.0",
        creation_utc=f"2024-01-01T00:00:{n:04d}",
        session_id=session,
        offset=n,
    )


EVENTS = 40


async def load_with_changes(document: BaseDocument) -> Event | None:
    offset = cast(dict[str, Any], document)["offset"]
    if offset % 8 == 0:
        return None  # 5 failures
    if offset % 4 == 1:
        return cast(Event, {**document, "version": "2.0.0"})  # 10 changes
    return cast(Event, document)


async def identity(document: BaseDocument) -> Event | None:
    return cast(Event, document)


Step = tuple[str, Callable[[], Awaitable[Any]]]


async def workload(
    make: Callable[[CountingConnectionFactory], DocumentDatabase],
) -> dict[str, tuple[int, int]]:
    """Run the same operations; return (statements, rows returned) for each."""
    counter = CountingConnectionFactory()
    measured: dict[str, tuple[int, int]] = {}

    async def measure(name: str, operation: Callable[[], Awaitable[Any]]) -> Any:
        counter.reset()
        result = await operation()
        measured[name] = (counter.statements, counter.rows_returned)
        return result

    async with cast(Any, make(counter)) as database:
        events: DocumentCollection[Event] = await measure(
            "open a new collection",
            lambda: database.get_or_create_collection("events", Event, identity),
        )
        for n in range(EVENTS - 1):
            await events.insert_one(event(n, "s1" if n % 2 else "s2"))
        await measure("insert_one", lambda: events.insert_one(event(EVENTS - 1)))
        page = await measure(
            "find (filter, limit 5)", lambda: events.find({"session_id": {"$eq": "s1"}}, limit=5)
        )
        await measure(
            "find (next page by cursor)",
            lambda: events.find({"session_id": {"$eq": "s1"}}, limit=5, cursor=page.next_cursor),
        )
        await measure("find_one (by id)", lambda: events.find_one({"id": {"$eq": "e0007"}}))
        await measure(
            "find_one (latest by offset, sorted)",
            lambda: events.find_one(
                {"session_id": {"$eq": "s1"}}, sort=[("offset", SortDirection.DESC)]
            ),
        )
        # e0003 and e0005 were on the page read above; e0010 and e0012 were never read.
        await measure(
            "update_one (by id, read before)",
            lambda: events.update_one({"id": {"$eq": "e0003"}}, cast(Event, {"offset": 333})),
        )
        await measure(
            "update_one (by id, not read before)",
            lambda: events.update_one({"id": {"$eq": "e0010"}}, cast(Event, {"offset": 1010})),
        )
        await measure(
            "update_one (by a field)",
            lambda: events.update_one({"offset": {"$eq": 4}}, cast(Event, {"offset": 404})),
        )
        await measure(
            "update_one (no match)",
            lambda: events.update_one({"id": {"$eq": "nope"}}, cast(Event, {"offset": 1})),
        )
        await measure(
            "update_one (upsert inserts)",
            lambda: events.update_one({"id": {"$eq": "e9999"}}, event(9999), upsert=True),
        )
        await measure(
            "delete_one (by id, read before)", lambda: events.delete_one({"id": {"$eq": "e0005"}})
        )
        await measure(
            "delete_one (by id, not read before)",
            lambda: events.delete_one({"id": {"$eq": "e0012"}}),
        )
        await measure("delete_one (by a field)", lambda: events.delete_one({"offset": {"$eq": 6}}))
        await measure("delete_one (no match)", lambda: events.delete_one({"id": {"$eq": "nope"}}))

    async with cast(Any, make(counter)) as database:
        await measure(
            f"reopen with a loader: {EVENTS} docs, 10 changed, 5 failed",
            lambda: database.get_or_create_collection("events", Event, load_with_changes),
        )
        await measure("delete_collection", lambda: database.delete_collection("events"))
    return measured


#: Ours, exactly. Upstream is measured, not assumed.
EXPECTED_OURS = {
    "open a new collection": 2,  # catalog query (once per database) + CREATE TABLE
    "insert_one": 1,
    "find (filter, limit 5)": 1,
    "find (next page by cursor)": 1,
    "find_one (by id)": 1,
    "find_one (latest by offset, sorted)": 1,
    "update_one (by id, read before)": 1,  # guarded by the MD5 of the document as read
    "update_one (by id, not read before)": 2,
    "update_one (by a field)": 2,
    "update_one (no match)": 1,
    "update_one (upsert inserts)": 2,
    "delete_one (by id, read before)": 1,
    "delete_one (by id, not read before)": 2,
    "delete_one (by a field)": 2,
    "delete_one (no match)": 1,
    f"reopen with a loader: {EVENTS} docs, 10 changed, 5 failed": 7,
    "delete_collection": 2,
}


def on_emulator(
    database_type: Callable[..., DocumentDatabase], connection_params: dict[str, Any], prefix: str
) -> Callable[[CountingConnectionFactory], DocumentDatabase]:
    """`workload`'s `make`: a `database_type` on the emulator, sending through the counter."""
    return lambda counter: database_type(
        RecordingLogger(), connection_params, table_prefix=prefix, connection_factory=counter
    )


async def test_statements_per_operation_ours_against_upstream(
    connection_params: dict[str, Any], table_prefix: str
) -> None:
    ours = await workload(
        on_emulator(SnowflakeDocumentDatabase, connection_params, table_prefix + "OURS_")
    )
    upstream = await workload(
        on_emulator(UpstreamDatabase, connection_params, table_prefix + "UPSTREAM_")
    )

    print(
        "\n| operation | ours: statements | upstream: statements | ours: rows read | upstream: rows read |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, (statements, rows) in ours.items():
        theirs, their_rows = upstream[name]
        print(f"| {name} | {statements} | {theirs} | {rows} | {their_rows} |")

    assert {name: statements for name, (statements, _) in ours.items()} == EXPECTED_OURS
    for name, (statements, rows) in ours.items():
        assert statements <= upstream[name][0], name
        if not name.startswith(("open", "reopen")):  # ours reads the catalog there
            assert rows <= upstream[name][1], name
    # No operation reads more rows than it returns.
    assert ours["find (filter, limit 5)"][1] == 5
    assert ours["find_one (latest by offset, sorted)"][1] == 1
    assert ours["update_one (by a field)"][1] == 1 and ours["delete_one (by a field)"][1] == 1
    assert ours["update_one (by id, read before)"][1] == 0


async def test_statements_sent_agrees_with_the_connector(
    connection_params: dict[str, Any], table_prefix: str
) -> None:
    counter = CountingConnectionFactory()
    async with SnowflakeDocumentDatabase(
        RecordingLogger(), connection_params, table_prefix=table_prefix, connection_factory=counter
    ) as database:
        events = await database.create_collection("events", Event)
        for n in range(3):
            await events.insert_one(event(n))
        await events.update_one({"offset": {"$eq": 1}}, cast(Event, {"offset": 10}))
        await events.delete_one({"offset": {"$gte": 0}})
        assert database.statements_sent == counter.statements == 2 + 3 + 2 + 2
        # After our own update the remembered text is forgotten: the normal path.
        first = await events.find_one({"offset": {"$eq": 2}})
        assert first is not None
        await events.update_one({"offset": {"$eq": 2}}, cast(Event, {"offset": 20}))
        before = counter.statements
        result = await events.delete_one({"id": {"$eq": first["id"]}})
        assert result.deleted_document == {**first, "offset": 20}
        assert counter.statements - before == 2  # memory forgotten after our own update
