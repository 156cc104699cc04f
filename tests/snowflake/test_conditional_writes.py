"""Conditional writes of our Snowflake collection (durable/conditional_writes.py): the
MERGE that inserts unless a conflicting document exists, and the guarded update that
re-applies a change to whatever another writer left. Two databases with their own memory
stand for two server processes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import pytest
from parlant.core.persistence.common import ObjectId, SortDirection
from parlant.core.persistence.document_database import BaseDocument, identity_loader

from parlant_router.durable.conditional_writes import ConditionalWrites
from parlant_router.snowflake import DuplicateDocumentError

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase


def event(identifier: str, session: str, offset: int) -> BaseDocument:
    return cast(
        BaseDocument,
        {
            "id": ObjectId(identifier),
            "version": "1",
            "creation_utc": "2026",
            "session_id": session,
            "offset": offset,
        },
    )


def taken(session: str, offset: int) -> Any:
    return {"$and": [{"session_id": {"$eq": session}}, {"offset": {"$gte": offset}}]}


async def test_insert_unless_inserts_once_and_reports_a_conflict(
    open_database: OpenDatabase,
) -> None:
    async with open_database() as database:
        events = await database.create_collection("events", BaseDocument)
        assert isinstance(events, ConditionalWrites)
        before = database.statements_sent

        assert await events.insert_unless(event("e0", "s", 0), taken("s", 0))  # type: ignore[attr-defined]
        assert database.statements_sent - before == 1
        assert not await events.insert_unless(event("e1", "s", 0), taken("s", 0))  # type: ignore[attr-defined]
        # Another session's offsets are not a conflict.
        assert await events.insert_unless(event("e2", "t", 0), taken("t", 0))  # type: ignore[attr-defined]
        with pytest.raises(DuplicateDocumentError):
            await events.insert_unless(event("e0", "s", 7), taken("s", 7))  # type: ignore[attr-defined]

        stored = sorted((d["id"], d["offset"]) for d in await events.find({}))  # type: ignore[typeddict-item]
        assert stored == [("e0", 0), ("e2", 0)]


async def test_concurrent_appends_from_two_processes_never_share_an_offset(
    open_database: OpenDatabase, table_prefix: str
) -> None:
    """Each writer claims the next offset it believes free; a lost race reads again."""
    async with (
        open_database(pool_size=4) as first,
        open_database(pool_size=4, table_prefix=table_prefix) as second,
    ):
        collections = [
            await first.get_or_create_collection("events", BaseDocument, identity_loader),
            await second.get_or_create_collection("events", BaseDocument, identity_loader),
        ]
        conflicts = 0

        async def append(task: int, count: int) -> None:
            nonlocal conflicts
            events = collections[task % 2]
            for n in range(count):
                while True:
                    latest = await events.find_one(
                        {"session_id": {"$eq": "s"}}, sort=[("offset", SortDirection.DESC)]
                    )
                    offset = latest["offset"] + 1 if latest else 0  # type: ignore[typeddict-item]
                    document = event(f"t{task}-{n}", "s", offset)
                    if await events.insert_unless(document, taken("s", offset)):  # type: ignore[attr-defined]
                        break
                    conflicts += 1

        await asyncio.gather(*(append(task, 8) for task in range(4)))

        stored = list(await collections[0].find({"session_id": {"$eq": "s"}}))
        offsets = sorted(d["offset"] for d in stored)  # type: ignore[typeddict-item]
        assert offsets == list(range(len(stored)))
        assert len(stored) == 32
        assert conflicts > 0, "the writers never raced: the test proves nothing"


async def test_update_with_keeps_both_writers_changes(
    open_database: OpenDatabase, table_prefix: str
) -> None:
    async with (
        open_database() as first,
        open_database(table_prefix=table_prefix) as second,
    ):
        a = await first.get_or_create_collection("sessions", BaseDocument, identity_loader)
        b = await second.get_or_create_collection("sessions", BaseDocument, identity_loader)
        await a.insert_one(cast(BaseDocument, {**event("s", "s", 0), "metadata": {}}))
        # Both writers have read the session (and remember it, as a store would).
        await a.find_one({"id": {"$eq": "s"}})
        await b.find_one({"id": {"$eq": "s"}})

        def setting(key: str) -> Any:
            return lambda current: {"metadata": {**current["metadata"], key: True}}

        async def patch(collection: Any, keys: list[str]) -> None:
            for key in keys:
                result = await collection.update_with({"id": {"$eq": "s"}}, setting(key))
                assert result.matched_count == 1

        await asyncio.gather(
            patch(a, [f"a{n}" for n in range(6)]), patch(b, [f"b{n}" for n in range(6)])
        )

        stored = await a.find_one({"id": {"$eq": "s"}})
        assert stored is not None
        assert sorted(stored["metadata"]) == sorted(  # type: ignore[typeddict-item]
            [f"a{n}" for n in range(6)] + [f"b{n}" for n in range(6)]
        )
        missing = await a.update_with({"id": {"$eq": "nobody"}}, setting("x"))  # type: ignore[attr-defined]
        assert missing.matched_count == 0
