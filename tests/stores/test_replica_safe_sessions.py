"""Several writers of one session: offsets, session updates and what each one's cache sees.

A "replica" here is what a `parlant-router run` process with `server.replicas: many` builds
for its sessions store: our Snowflake database (a pool of its own), its change feed, the
read cache publishing to and following the feed, and the session store appending at free
offsets. Two of them on one emulator schema stand for two processes (separate pools, caches
and memories; tests/e2e/test_replicas.py runs real processes). A third case shows the lost
update of Parlant's PATCH pattern inside one process, with every store in memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.agents import AgentId
from parlant.core.async_utils import Timeout
from parlant.core.customers import CustomerId
from parlant.core.sessions import EventKind, EventSource, SessionId, SessionUpdateParams

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from parlant_router.snowflake.change_feed import ChangeFeed
from parlant_router.stores.catalog import STORES
from parlant_router.stores.read_cache import CachedDocumentDatabase
from parlant_router.stores.session_listener import NotifyingSessionListener
from parlant_router.stores.session_store import ConcurrentSessionDocumentStore
from tests.support.logger import RecordingLogger

STALENESS = 0.4


@dataclass
class Replica:
    database: SnowflakeDocumentDatabase
    feed: ChangeFeed
    cache: CachedDocumentDatabase
    store: ConcurrentSessionDocumentStore
    listener: NotifyingSessionListener


@asynccontextmanager
async def replica(
    emulator: SnowflakeEmulator, table_prefix: str, staleness: float = STALENESS
) -> AsyncIterator[Replica]:
    """What the router builds for the sessions store with `replicas: many` (see router.py)."""
    logger = RecordingLogger()
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(
            SnowflakeDocumentDatabase(
                logger, connection_params=emulator.connect_kwargs(), pool_size=4
            )
        )
        # The feed on connections of its own (the router shares the backend's): the store's
        # statements are then counted apart from the feed's.
        feed_pool = await stack.enter_async_context(
            SnowflakeDocumentDatabase(logger, connection_params=emulator.connect_kwargs())
        )
        feed = await stack.enter_async_context(
            ChangeFeed(feed_pool, logger, max_staleness=staleness)
        )
        database = await stack.enter_async_context(pool.with_table_prefix(table_prefix))
        partitions = STORES["sessions"].cache_partitions
        cache = CachedDocumentDatabase(
            database, partitions=partitions, max_bytes=2**24, observer=feed.recorder("sessions")
        )
        for collection in partitions:
            feed.subscribe(
                f"sessions.{collection}",
                lambda p, c=collection: cache.drop(c, p),  # type: ignore[misc]
            )
        store = await stack.enter_async_context(
            ConcurrentSessionDocumentStore(cache, replica_safe=True)
        )
        feed.subscribe(
            "sessions.events",
            lambda p: store.changes.changed(SessionId(p)) if p else store.changes.changed_all(),
        )
        yield Replica(pool, feed, cache, store, NotifyingSessionListener(store, store.changes))


async def test_two_replicas_appending_to_one_session_store_every_event_once(
    emulator: SnowflakeEmulator, table_prefix: str
) -> None:
    async with replica(emulator, table_prefix) as a, replica(emulator, table_prefix) as b:
        session = await a.store.create_session(CustomerId("c"), AgentId("agent"))
        # Both have read the session's (empty) events: each believes offset 0 is free.
        assert await a.store.list_events(session.id) == []
        assert await b.store.list_events(session.id) == []

        async def append(writer: Replica, name: str, count: int) -> list[int]:
            offsets = []
            for n in range(count):
                event = await writer.store.create_event(
                    session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {"m": f"{name}{n}"}
                )
                offsets.append(event.offset)
            return offsets

        acknowledged = await asyncio.gather(
            append(a, "a", 12), append(b, "b", 12), append(a, "c", 12), append(b, "d", 12)
        )

        # What is stored, read past both caches.
        rows = await a.database.run(
            "read", "events", lambda s: s.query(f'SELECT TO_JSON(DATA) FROM "{table_prefix}EVENTS"')
        )
        stored = [json.loads(text) for (text,) in rows]
        offsets = sorted(e["offset"] for e in stored)
        assert offsets == list(range(48)), "duplicate or missing offsets"
        texts = sorted(e["data"]["m"] for e in stored)
        assert len(set(texts)) == 48, "an event stored twice"
        assert sorted(o for offsets in acknowledged for o in offsets) == list(range(48))
        assert a.store.offset_conflicts + b.store.offset_conflicts > 0, "no race happened"


async def test_an_append_nobody_raced_is_one_statement_and_a_lost_race_four(
    emulator: SnowflakeEmulator, table_prefix: str
) -> None:
    async with (
        replica(emulator, table_prefix, staleness=120) as a,
        replica(emulator, table_prefix, staleness=120) as b,
    ):
        session = await a.store.create_session(CustomerId("c"), AgentId("agent"))
        await a.store.list_events(session.id)
        await b.store.list_events(session.id)

        async def append(writer: Replica) -> int:
            before = writer.database.statements_sent
            await writer.store.create_event(
                session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {"m": "x"}
            )
            return writer.database.statements_sent - before

        assert await append(a) == 1  # the MERGE: session and offset came from the cache
        assert await append(a) == 1
        # b's cache still says offset 0 is free: the MERGE misses, the miss is told from a
        # duplicate id (a read by id), b reads the session's events again and appends at 2.
        assert await append(b) == 4
        assert b.store.offset_conflicts == 1
        assert [e.offset for e in await b.store.list_events(session.id)] == [0, 1, 2]


async def test_concurrent_patches_from_two_replicas_keep_every_key(
    emulator: SnowflakeEmulator, table_prefix: str
) -> None:
    """Parlant's PATCH /sessions/{id}: read the session, merge `metadata.set` into a copy
    of its metadata, `update_session` with the whole dict (api/sessions.py)."""
    async with replica(emulator, table_prefix) as a, replica(emulator, table_prefix) as b:
        session = await a.store.create_session(CustomerId("c"), AgentId("agent"))

        async def patch(writer: Replica, key: str) -> None:
            current = await writer.store.read_session(session.id)
            await asyncio.sleep(0)  # another request runs between the read and the write
            metadata = {**current.metadata, key: True}
            await writer.store.update_session(session.id, SessionUpdateParams(metadata=metadata))

        async def patches(writer: Replica, prefix: str) -> None:
            for n in range(12):
                # Each PATCH is its own request: its own task, as in the server.
                await asyncio.create_task(patch(writer, f"{prefix}{n}"))

        await asyncio.gather(patches(a, "a"), patches(b, "b"), patches(a, "c"), patches(b, "d"))
        await asyncio.gather(
            a.store.set_metadata(session.id, "x", 1), b.store.upsert_labels(session.id, {"vip"})
        )

        await asyncio.sleep(STALENESS + 0.5)
        for reader in (a, b):
            stored = await reader.store.read_session(session.id)
            assert len(stored.metadata) == 49, sorted(stored.metadata)
            assert stored.labels == {"vip"}


async def test_a_write_on_one_replica_wakes_a_client_waiting_on_the_other(
    emulator: SnowflakeEmulator, table_prefix: str
) -> None:
    async with replica(emulator, table_prefix) as a, replica(emulator, table_prefix) as b:
        session = await a.store.create_session(CustomerId("c"), AgentId("agent"))
        assert await b.store.list_events(session.id) == []  # cached empty on b
        waiting = asyncio.create_task(
            b.listener.wait_for_more_events(session.id, min_offset=0, timeout=Timeout(10))
        )
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        await a.store.create_event(
            session.id, EventSource.AI_AGENT, EventKind.MESSAGE, "t", {"m": "hello"}
        )
        assert await waiting
        waited = asyncio.get_running_loop().time() - started
        assert [e.data for e in await b.store.list_events(session.id)] == [{"m": "hello"}]
        # Two feed intervals make the bound; allow the emulator's statements on top.
        assert waited < STALENESS + 1.0
        assert b.feed.changes_seen >= 1


async def test_patches_in_one_process_keep_every_key_with_stores_in_memory() -> None:
    """No replicas at all: Parlant's PATCH pattern loses keys to itself (3 of 24 in the
    issue's trial); the router's store applies each request's change instead."""
    async with ConcurrentSessionDocumentStore(TransientDocumentDatabase()) as store:
        session = await store.create_session(CustomerId("c"), AgentId("agent"))

        async def patch(key: str) -> None:
            current = await store.read_session(session.id)
            await asyncio.sleep(0)
            await store.update_session(
                session.id, SessionUpdateParams(metadata={**current.metadata, key: True})
            )

        await asyncio.gather(*(asyncio.create_task(patch(f"k{n}")) for n in range(24)))
        assert len((await store.read_session(session.id)).metadata) == 24


async def test_a_partition_key_the_feed_cannot_store_is_announced_as_its_whole_scope(
    emulator: SnowflakeEmulator, table_prefix: str
) -> None:
    # A lone surrogate (or an oversized key) would make the feed's INSERT fail at every tick
    # and block every later publication of the process behind it.
    async with replica(emulator, table_prefix) as a, replica(emulator, table_prefix) as b:
        heard: list[str | None] = []
        b.feed.subscribe("probe.scope", heard.append)
        a.feed.record("probe.scope", "bad\ud800key")
        a.feed.record("probe.scope", "k" * 10_000)
        for _ in range(40):
            if heard:
                break
            await asyncio.sleep(STALENESS / 2)
        a.feed.record("probe.scope", "fine")
        for _ in range(40):
            if "fine" in heard:
                break
            await asyncio.sleep(STALENESS / 2)
        assert heard == [None, "fine"]
