"""NotifyingSessionListener over ConcurrentSessionDocumentStore on a CachedDocumentDatabase on
our Snowflake database over the emulator (statements counted at the connector):

(a) idle waiters send nothing (no statement, not even a cache lookup), where Parlant's
    polling listener keeps asking (the control);
(b) a write wakes its waiter at once, and only the store's report of it does: a listener
    whose changes nobody reports never wakes (so nothing polls);
(c) timeouts return False; an unknown session or event raises ItemNotFoundError, as Parlant's
    listener does;
(d) streaming: waiters on chunks and completion wake on update_event;
(e) two writers on one session in one process keep offsets dense with the cache on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import pytest
from parlant.core.agents import AgentId
from parlant.core.async_utils import Timeout
from parlant.core.common import ItemNotFoundError, JSONSerializable
from parlant.core.customers import CustomerId
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.sessions import (
    EventId,
    EventKind,
    EventSource,
    PollingSessionListener,
    SessionId,
    SessionListener,
    SessionStore,
)

from parlant_router.snowflake import CountingConnectionFactory
from parlant_router.stores.catalog import STORES
from parlant_router.stores.read_cache import CachedDocumentDatabase
from parlant_router.stores.session_listener import NotifyingSessionListener, SessionChanges
from parlant_router.stores.session_store import ConcurrentSessionDocumentStore
from tests.support.databases import OpenDatabase

#: Well above the 50 ms a wake takes; far below the 30 s the waiters would wait.
WAKE_BOUND = 0.5
LONG = 30.0


@dataclass
class Stack:
    store: ConcurrentSessionDocumentStore
    listener: NotifyingSessionListener
    counter: CountingConnectionFactory
    cache: CachedDocumentDatabase | None


@asynccontextmanager
async def session_stack(
    open_database: OpenDatabase, *, cached: bool = True
) -> AsyncIterator[Stack]:
    """The routed sessions store as the router builds it: cache partitions from the catalog."""
    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database:
        cache = (
            CachedDocumentDatabase(
                database, partitions=STORES["sessions"].cache_partitions, max_bytes=1 << 22
            )
            if cached
            else None
        )
        underneath: DocumentDatabase = cache if cache is not None else database
        async with ConcurrentSessionDocumentStore(underneath, allow_migration=True) as store:
            yield Stack(store, NotifyingSessionListener(store, store.changes), counter, cache)


async def new_session(stack: Stack) -> SessionId:
    session = await stack.store.create_session(CustomerId("c1"), AgentId("a1"))
    await stack.store.list_events(session.id)  # its partitions are loaded, as after a turn
    return session.id


async def append(
    stack: Stack,
    session_id: SessionId,
    data: JSONSerializable = None,
    kind: EventKind = EventKind.MESSAGE,
) -> EventId:
    event = await stack.store.create_event(
        session_id,
        EventSource.CUSTOMER,
        kind,
        "trace",
        data if data is not None else {"message": "hi"},
    )
    return event.id


def lookups(stack: Stack) -> int:
    """Questions asked of the cache so far (answered or not)."""
    assert stack.cache is not None
    stats = stack.cache.stats
    return stats.hits + stats.misses + stats.bypassed


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def settled(stack: Stack, sessions: int) -> None:
    """Every waiter is registered and has finished its first check (nothing in flight)."""
    await until(lambda: stack.store.changes.waiting_sessions == sessions)
    previous = -1
    while stack.counter.statements != previous:
        previous = stack.counter.statements
        await asyncio.sleep(0.2)


async def woken_within(waiter: asyncio.Task[bool], since: float) -> float:
    """Await `waiter` (True expected); seconds from `since` to its answer."""
    assert await asyncio.wait_for(waiter, 10) is True
    return asyncio.get_running_loop().time() - since


# (a) Idle waiters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cached", "idle_seconds"),
    [
        pytest.param("notifying", True, 2.0, id="notifying-cached"),
        pytest.param("notifying", False, 1.0, id="notifying-uncached"),
        pytest.param("polling", True, 1.0, id="control-parlant-polling-cached"),
        pytest.param("polling", False, 1.0, id="control-parlant-polling-uncached"),
    ],
)
async def test_idle_waiters_send_nothing(
    open_database: OpenDatabase, kind: str, cached: bool, idle_seconds: float
) -> None:
    async with session_stack(open_database, cached=cached) as stack:
        sessions = [await new_session(stack) for _ in range(10)]
        listener: SessionListener = (
            stack.listener if kind == "notifying" else PollingSessionListener(stack.store)
        )
        waiters = [
            asyncio.create_task(listener.wait_for_more_events(s, timeout=Timeout(LONG)))
            for s in sessions
        ]
        if kind == "notifying":
            await settled(stack, len(sessions))
        else:
            await asyncio.sleep(0.5)
        stack.counter.reset()
        asked = lookups(stack) if cached else 0

        await asyncio.sleep(idle_seconds)

        assert not any(w.done() for w in waiters)
        if kind == "notifying":
            assert stack.counter.statements == 0, stack.counter.log
            if cached:
                assert lookups(stack) == asked  # not even a question to the cache
        elif cached:
            assert lookups(stack) > asked  # the control: Parlant's listener keeps asking
        else:
            assert stack.counter.statements >= 10  # ... and, uncached, it costs statements

        # A write to each session wakes its waiter.
        for session_id in sessions:
            await append(stack, session_id)
        assert all(await asyncio.wait_for(asyncio.gather(*waiters), 10))
        if kind == "notifying":
            assert stack.store.changes.waiting_sessions == 0


# (b) Woken by the write ------------------------------------------------------------------------


async def test_a_write_wakes_its_waiter_at_once(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        await append(stack, session_id)  # offset 0
        loop = asyncio.get_running_loop()

        waiter = asyncio.create_task(
            stack.listener.wait_for_more_events(session_id, min_offset=1, timeout=Timeout(LONG))
        )
        await settled(stack, 1)
        assert not waiter.done()
        await append(stack, session_id)  # offset 1
        assert await woken_within(waiter, loop.time()) < WAKE_BOUND

        # A write that does not satisfy the question wakes the waiter, which checks again
        # and keeps waiting; the one that does satisfy it ends the wait.
        waiter = asyncio.create_task(
            stack.listener.wait_for_more_events(
                session_id, kinds=[EventKind.TOOL], min_offset=1, timeout=Timeout(LONG)
            )
        )
        await settled(stack, 1)
        await append(stack, session_id, kind=EventKind.STATUS)
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await append(stack, session_id, kind=EventKind.TOOL)
        assert await woken_within(waiter, loop.time()) < WAKE_BOUND


async def test_only_the_stores_report_wakes_a_waiter(open_database: OpenDatabase) -> None:
    """Nothing polls: a listener told of nobody's writes does not see one, though the store
    (and the cache it reads) has it; it answers as soon as it is told."""
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        unreported = SessionChanges()
        deaf = NotifyingSessionListener(stack.store, unreported)
        waiter = asyncio.create_task(deaf.wait_for_more_events(session_id, timeout=Timeout(LONG)))
        await until(lambda: unreported.waiting_sessions == 1)
        await asyncio.sleep(0.2)

        await append(stack, session_id)
        assert await stack.store.list_events(session_id)  # the event is there to be seen
        await asyncio.sleep(1.0)
        assert not waiter.done()

        told = asyncio.get_running_loop().time()
        unreported.changed(session_id)
        assert await woken_within(waiter, told) < WAKE_BOUND


class HeldAnswers:
    """The store, except that the next `list_events` answer is held once it is computed:
    a write can then land between a waiter's check and its wait."""

    def __init__(self, store: ConcurrentSessionDocumentStore) -> None:
        self._store = store
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def list_events(self, *args: Any, **kwargs: Any) -> Any:
        answer = await self._store.list_events(*args, **kwargs)
        if not self.held.is_set():
            self.held.set()
            await self.release.wait()
        return answer


async def test_a_write_between_check_and_wait_is_not_missed(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        await append(stack, session_id)  # offset 0
        held = HeldAnswers(stack.store)
        listener = NotifyingSessionListener(cast(SessionStore, held), stack.store.changes)
        waiter = asyncio.create_task(
            listener.wait_for_more_events(session_id, min_offset=1, timeout=Timeout(LONG))
        )
        await asyncio.wait_for(held.held.wait(), 10)  # checked: nothing yet

        await append(stack, session_id)  # offset 1, reported while the check is held
        written = asyncio.get_running_loop().time()
        held.release.set()
        assert await woken_within(waiter, written) < WAKE_BOUND


# (c) Timeouts and unknown sessions -------------------------------------------------------------


async def test_timeouts_return_false(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        await append(stack, session_id)
        streaming = await append(stack, session_id, data={"message": "", "chunks": ["a"]})
        loop = asyncio.get_running_loop()

        calls: list[Callable[[Timeout], Awaitable[bool]]] = [
            lambda t: stack.listener.wait_for_more_events(session_id, min_offset=2, timeout=t),
            lambda t: stack.listener.wait_for_event_completion(session_id, streaming, timeout=t),
            lambda t: stack.listener.wait_for_new_streaming_chunks(
                session_id, streaming, last_known_chunk_count=1, timeout=t
            ),
        ]
        for call in calls:
            started = loop.time()
            assert await call(Timeout(0.3)) is False
            assert 0.25 <= loop.time() - started < 2.0
            # No time at all: one check, then the answer.
            assert await call(Timeout.none()) is False
        assert stack.store.changes.waiting_sessions == 0

        # Already satisfied: True at once, whatever the timeout.
        assert await stack.listener.wait_for_more_events(session_id, timeout=Timeout.none())
        plain = await append(stack, session_id)
        assert await stack.listener.wait_for_event_completion(session_id, plain, Timeout.none())


def unanswerable(
    listener: SessionListener, session_id: SessionId
) -> list[Callable[[], Awaitable[bool]]]:
    """Questions about an unknown session, and about an unknown event of `session_id`."""
    unknown = SessionId("no-such-session")
    return [
        lambda: listener.wait_for_more_events(unknown, timeout=Timeout(1)),
        lambda: listener.wait_for_event_completion(unknown, EventId("e"), Timeout(1)),
        lambda: listener.wait_for_new_streaming_chunks(unknown, EventId("e"), 0, Timeout(1)),
        lambda: listener.wait_for_event_completion(session_id, EventId("e"), Timeout(1)),
        lambda: listener.wait_for_new_streaming_chunks(session_id, EventId("e"), 0, Timeout(1)),
    ]


async def test_unknown_sessions_and_events_raise_as_parlant(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        for listener in (stack.listener, PollingSessionListener(stack.store)):
            for question in unanswerable(listener, session_id):
                with pytest.raises(ItemNotFoundError):
                    await question()
        assert stack.store.changes.waiting_sessions == 0


async def test_a_deleted_session_ends_its_waits_as_parlant(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        waiter = asyncio.create_task(
            stack.listener.wait_for_more_events(session_id, timeout=Timeout(LONG))
        )
        await settled(stack, 1)
        await stack.store.delete_session(session_id)
        with pytest.raises(ItemNotFoundError):
            await asyncio.wait_for(waiter, WAKE_BOUND * 4)


# (d) Streaming -------------------------------------------------------------------------------


async def test_streaming_waiters_wake_on_update_event(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack:
        session_id = await new_session(stack)
        event_id = await append(stack, session_id, data={"message": "", "chunks": ["a"]})
        loop = asyncio.get_running_loop()

        completion = asyncio.create_task(
            stack.listener.wait_for_event_completion(session_id, event_id, Timeout(LONG))
        )
        more = asyncio.create_task(
            stack.listener.wait_for_new_streaming_chunks(session_id, event_id, 1, Timeout(LONG))
        )
        await settled(stack, 1)
        assert not completion.done() and not more.done()

        await stack.store.update_event(session_id, event_id, {"data": {"chunks": ["a", "b"]}})
        assert await woken_within(more, loop.time()) < WAKE_BOUND
        await asyncio.sleep(0.3)
        assert not completion.done()  # woken too, checked again, still streaming

        more = asyncio.create_task(
            stack.listener.wait_for_new_streaming_chunks(session_id, event_id, 2, Timeout(LONG))
        )
        await settled(stack, 1)
        await stack.store.update_event(session_id, event_id, {"data": {"chunks": ["a", "b", None]}})
        written = loop.time()
        assert await woken_within(completion, written) < WAKE_BOUND
        assert await woken_within(more, written) < WAKE_BOUND  # completion ends it too


# (e) Two writers --------------------------------------------------------------------------------


async def test_two_writers_keep_offsets_dense(open_database: OpenDatabase) -> None:
    async with session_stack(open_database) as stack, open_database() as direct:
        session_id = await new_session(stack)

        async def writer(tag: str) -> list[int]:
            offsets = []
            for i in range(20):
                event = await stack.store.create_event(
                    session_id,
                    EventSource.CUSTOMER,
                    EventKind.MESSAGE,
                    "trace",
                    {"message": f"{tag}{i}"},
                )
                offsets.append(event.offset)
            return offsets

        first, second = await asyncio.gather(writer("a"), writer("b"))
        assert sorted(first + second) == list(range(40))
        assert first == sorted(first) and second == sorted(second)

        # What the database holds, read without the cache, is what the cached store says.
        async with ConcurrentSessionDocumentStore(direct, allow_migration=True) as uncached:
            stored = await uncached.list_events(session_id)
        assert [e.offset for e in stored] == list(range(40))
        seen = await stack.store.list_events(session_id)
        assert [_event_row(e) for e in seen] == [_event_row(e) for e in stored]


def _event_row(event: Any) -> tuple[Any, ...]:
    return (event.id, event.offset, event.kind, event.source, event.data, event.creation_utc)
