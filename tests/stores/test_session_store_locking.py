"""ConcurrentSessionDocumentStore: per-session locking, Parlant's behaviour otherwise.

Every test runs on Parlant's transient database and on our Snowflake database over the
emulator. Overlap is proven with barriers inside the database (two calls that both reach the
barrier were in flight at once), never with timings.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from parlant.core.agents import AgentId
from parlant.core.async_utils import ReaderWriterLock
from parlant.core.common import ItemNotFoundError
from parlant.core.customers import CustomerId
from parlant.core.sessions import (
    EventId,
    EventKind,
    EventSource,
    SessionDocumentStore,
    SessionId,
)

from parlant_router.stores.session_store import LOCK_SCOPES, ConcurrentSessionDocumentStore
from tests.stores.gated_database import GatedDatabase

#: Long enough never to fire when the calls do overlap; only a broken lock waits it out.
BARRIER_TIMEOUT = 20.0


def locked_base_methods() -> set[str]:
    """Methods of Parlant's SessionDocumentStore whose body uses ``self._lock``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(SessionDocumentStore)))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and inner.attr == "_lock"
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == "self"
                    and node.name != "__init__"
                ):
                    found.add(node.name)
    return found


def test_every_locked_method_of_parlant_is_overridden() -> None:
    locked = locked_base_methods()
    assert len(locked) >= 14  # the parse found Parlant 3.3.2's methods
    overridden = {name for name in locked if name in vars(ConcurrentSessionDocumentStore)}
    assert overridden == locked, f"not overridden: {sorted(locked - overridden)}"
    assert set(LOCK_SCOPES) == locked


@asynccontextmanager
async def open_store(
    database: GatedDatabase, store_type: type[SessionDocumentStore] = ConcurrentSessionDocumentStore
) -> AsyncIterator[SessionDocumentStore]:
    async with store_type(database, allow_migration=True) as store:
        yield store


async def new_session(store: SessionDocumentStore, customer: str = "c1") -> SessionId:
    session = await store.create_session(CustomerId(customer), AgentId("a1"))
    return session.id


async def append(store: SessionDocumentStore, session_id: SessionId, text: str) -> int:
    event = await store.create_event(
        session_id, EventSource.CUSTOMER, EventKind.MESSAGE, "trace", {"message": text}
    )
    return event.offset


class UnlockedSessionDocumentStore(SessionDocumentStore):
    """Parlant's store with its lock disabled: the control for the offsets test."""

    def __init__(self, database: GatedDatabase, allow_migration: bool = False) -> None:
        super().__init__(database, allow_migration)
        self._lock = _NoLock()


class _NoLock(ReaderWriterLock):
    def __init__(self) -> None:
        pass

    @property
    def reader_lock(self) -> AbstractAsyncContextManager[None]:
        return _nothing()

    @property
    def writer_lock(self) -> AbstractAsyncContextManager[None]:
        return _nothing()


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def yield_between_calls(collection: str, operation: str, argument: Any) -> None:
    # Lets every other task run between two statements of one store call, so that
    # read-then-write sequences interleave unless a lock orders them.
    await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "store_type, unique",
    [(ConcurrentSessionDocumentStore, True), (UnlockedSessionDocumentStore, False)],
    ids=["per-session-lock", "control-without-lock"],
)
async def test_concurrent_appends_to_one_session_get_consecutive_offsets(
    database: GatedDatabase, store_type: type[SessionDocumentStore], unique: bool
) -> None:
    async with open_store(database, store_type) as store:
        session_id = await new_session(store)
        database.hook = yield_between_calls
        offsets = await asyncio.gather(*(append(store, session_id, str(i)) for i in range(8)))
        database.hook = yield_between_calls
        listed = [event.offset for event in await store.list_events(session_id)]
    if unique:
        assert sorted(offsets) == list(range(8))
        assert sorted(listed) == list(range(8))
    else:
        # Without the lock the same appends collide: the test above can fail.
        assert len(set(offsets)) < 8


class Meeting:
    """A hook that holds calls on the event collection until ``parties`` of them arrived."""

    def __init__(self, parties: int, operation: str) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.operation = operation

    async def __call__(self, collection: str, operation: str, argument: Any) -> None:
        if collection == "events" and operation == self.operation:
            await asyncio.wait_for(self.barrier.wait(), BARRIER_TIMEOUT)


class Hold:
    """A hook that holds every ``operation`` on ``collection`` until ``release`` is set."""

    def __init__(self, collection: str, operation: str) -> None:
        self.collection = collection
        self.operation = operation
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, collection: str, operation: str, argument: Any) -> None:
        if collection == self.collection and operation == self.operation:
            self.entered.set()
            await self.release.wait()


async def held_append(
    database: GatedDatabase, store: SessionDocumentStore, session_id: SessionId
) -> tuple[Hold, asyncio.Task[int]]:
    """An append of "x" held inside its event insert; (the hold, the append's task)."""
    hold = Hold("events", "insert_one")
    database.hook = hold
    writing = asyncio.create_task(append(store, session_id, "x"))
    await hold.entered.wait()
    return hold, writing


async def test_appends_to_different_sessions_overlap(database: GatedDatabase) -> None:
    async with open_store(database) as store:
        sessions = [await new_session(store, f"c{i}") for i in range(4)]
        # All four create_event calls must be inside their writer locks at once to pass.
        database.hook = Meeting(4, "insert_one")
        offsets = await asyncio.gather(*(append(store, s, "hi") for s in sessions))
        assert offsets == [0, 0, 0, 0]
        assert store.locked_sessions == 0  # type: ignore[attr-defined]


async def test_parlant_store_serializes_appends_to_different_sessions(
    database: GatedDatabase,
) -> None:
    # The control: under Parlant's store-wide lock the same meeting never happens.
    async with open_store(database, SessionDocumentStore) as store:
        first, second = await new_session(store, "c1"), await new_session(store, "c2")
        barrier = asyncio.Barrier(2)

        async def hook(collection: str, operation: str, argument: Any) -> None:
            # Under a store-wide lock the second append cannot reach this point while the
            # first waits here, so the wait times out (no timing is measured).
            if collection == "events" and operation == "insert_one":
                await asyncio.wait_for(barrier.wait(), 0.5)

        database.hook = hook
        results = await asyncio.gather(
            append(store, first, "a"), append(store, second, "b"), return_exceptions=True
        )
        assert all(isinstance(r, TimeoutError) for r in results), results


async def test_reads_and_writes_of_different_sessions_overlap(database: GatedDatabase) -> None:
    async with open_store(database) as store:
        writer_session, reader_session = (
            await new_session(store, "w"),
            await new_session(store, "r"),
        )
        await append(store, reader_session, "x")
        # update_session (writer) reads its session while list_events (reader of another
        # session) reads its events: both wait for each other at the barrier.
        barrier = asyncio.Barrier(2)

        async def hook(collection: str, operation: str, argument: Any) -> None:
            reading_writer = collection == "sessions" and operation == "update_one"
            listing = collection == "events" and operation == "find"
            if reading_writer or listing:
                await asyncio.wait_for(barrier.wait(), BARRIER_TIMEOUT)

        database.hook = hook
        updated, events = await asyncio.gather(
            store.update_session(writer_session, {"title": "t"}),
            store.list_events(reader_session),
        )
        assert updated.title == "t"
        assert [e.offset for e in events] == [0]


async def test_one_session_excludes_a_reader_while_writing(database: GatedDatabase) -> None:
    async with open_store(database) as store:
        session_id = await new_session(store)
        hold, writing = await held_append(database, store, session_id)
        reading = asyncio.create_task(store.list_events(session_id))
        other = await new_session(store, "c2")  # other sessions are not held up
        assert (await store.read_session(other)).id == other
        assert not reading.done()  # the reader of the written session still waits
        hold.release.set()
        await writing
        assert [e.offset for e in await reading] == [0]


async def test_list_sessions_waits_for_writers_in_flight(database: GatedDatabase) -> None:
    async with open_store(database) as store:
        session_id = await new_session(store)
        hold = Hold("sessions", "update_one")
        database.hook = hold
        updating = asyncio.create_task(store.update_session(session_id, {"title": "new"}))
        await hold.entered.wait()
        listing = asyncio.create_task(store.list_sessions())
        await asyncio.sleep(0)
        assert not listing.done()
        hold.release.set()
        await updating
        assert [s.title for s in (await listing).items] == ["new"]


async def test_a_locked_base_method_not_overridden_takes_the_store_exclusively(
    database: GatedDatabase,
) -> None:
    async with open_store(database) as store:
        session_id = await new_session(store)
        hold, writing = await held_append(database, store, session_id)
        # Calling Parlant's own method bypasses the override, as a method added by a future
        # Parlant would: it must wait for the writer of any session.
        other = await new_session(store, "c2")
        bypass = asyncio.create_task(SessionDocumentStore.read_session(store, other))
        await asyncio.sleep(0)
        assert not bypass.done()
        hold.release.set()
        await writing
        assert (await bypass).id == other


async def transcript(store: SessionDocumentStore, tag: str) -> list[Any]:
    """Every public locked method once; answers without ids, timestamps and ``tag``."""
    out: list[Any] = []
    first = await new_session(store, f"{tag}c1")
    second = await new_session(store, f"{tag}c2")
    out.append((await store.read_session(first)).customer_id.removeprefix(tag))
    out.append((await store.update_session(first, {"title": "renamed"})).title)
    out.append((await store.set_metadata(first, "k", {"v": 1})).metadata)
    out.append((await store.unset_metadata(first, "k")).metadata)
    out.append(sorted((await store.upsert_labels(first, {"x", "y"})).labels))
    out.append(sorted((await store.remove_labels(first, {"x"})).labels))
    listing = await store.list_sessions(customer_id=CustomerId(f"{tag}c1"))
    out.append([(s.customer_id.removeprefix(tag), s.title) for s in listing.items])
    labelled = (await store.list_sessions(labels={"y"})).items
    out.append(sorted(s.customer_id.removeprefix(tag) for s in labelled if tag in s.customer_id))
    events = [await append(store, first, str(i)) for i in range(3)]
    out.append(events)
    listed = await store.list_events(first)
    out.append([(e.offset, e.data) for e in listed])
    out.append((await store.read_event(first, listed[1].id)).data)
    out.append((await store.update_event(first, listed[1].id, {"data": {"m": "edited"}})).data)
    await store.delete_event(listed[0].id)
    out.append([e.offset for e in await store.list_events(first)])
    out.append([e.offset for e in await store.list_events(first, exclude_deleted=False)])
    await store.delete_session(second)
    for call in (
        store.read_session(second),
        store.list_events(second),
        store.update_session(second, {"title": "x"}),
        store.create_event(second, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {}),
        store.delete_event(EventId("missing")),
    ):
        with pytest.raises(ItemNotFoundError) as caught:
            await call
        out.append(str(caught.value).replace(second, "<session>"))
    remaining = (await store.list_sessions()).items
    out.append(sorted(s.customer_id.removeprefix(tag) for s in remaining if tag in s.customer_id))
    return out


async def test_answers_equal_parlants_store(database: GatedDatabase) -> None:
    async with open_store(database, SessionDocumentStore) as store:
        expected = await transcript(store, "parlant-")
    async with open_store(database) as store:
        assert await transcript(store, "ours-") == expected
        assert store.locked_sessions == 0  # type: ignore[attr-defined]


async def test_a_cancelled_waiter_leaves_no_lock_behind(database: GatedDatabase) -> None:
    async with open_store(database) as store:
        session_id = await new_session(store)
        hold, writing = await held_append(database, store, session_id)
        waiting = asyncio.create_task(append(store, session_id, "y"))
        await asyncio.sleep(0)
        assert store.locked_sessions == 1  # type: ignore[attr-defined]
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        hold.release.set()
        assert await writing == 0
        assert store.locked_sessions == 0  # type: ignore[attr-defined]
        assert await append(store, session_id, "z") == 1
