"""CachedDocumentDatabase on our Snowflake database over the emulator (real connector):

(a) what it saves, counted at the connector: repeated reads of a loaded partition send nothing,
    an append sends exactly its INSERT;
(b) a write that fails (connection dropped before or during its statement) never leaves a
    cached answer the database does not give;
(c) a load overlapping a write on its partition is not kept, and reads begun after the write
    see it;
(d) the byte budget: never exceeded, least recently used partitions evicted first, a partition
    larger than the budget never kept, answers right throughout;
(e) documents handed out or handed in are copies: mutating one never changes the cache.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import pytest
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.persistence.common import ObjectId, SortDirection, Where
from parlant.core.persistence.document_database import BaseDocument, DocumentCollection

from parlant_router.snowflake import (
    CountingConnectionFactory,
    RetryPolicy,
    SnowflakeDocumentDatabase,
    SnowflakeOperationError,
)
from parlant_router.stores.read_cache import PARTITION_COST, CachedDocumentDatabase, document_cost
from tests.cache.helpers import (
    ArmedLog,
    GatedDocumentDatabase,
    armed_plan,
    assert_same,
    cached_partitions,
    exact,
    held_bytes,
    ids,
)
from tests.snowflake.connection_faults import FaultPlan, faulty_factory
from tests.support.databases import OpenDatabase
from tests.support.logger import RecordingLogger

PARTITIONS: dict[str, str | None] = {"events": "session_id", "config": None}
ROOMY = 1 << 20
#: One attempt: a dropped connection fails the operation instead of being retried.
NO_RETRIES = RetryPolicy(attempts=1, initial_delay=0, max_delay=0, jitter=0)


Doc = BaseDocument


def event(n: int, session: str = "s1", **fields: Any) -> Doc:
    return cast(
        Doc,
        {
            "id": ObjectId(f"e{n:03d}"),
            "version": "1.0.0",
            "creation_utc": f"2024-01-01T00:00:{n:03d}",
            "session_id": session,
            "offset": n,
            "kind": "message" if n % 2 else "status",
            "deleted": False,
            "data": {"chunks": ["x"]},
            **fields,
        },
    )


def pin(session: str) -> Where:
    return cast(Where, {"session_id": {"$eq": session}})


def by_id(n: int) -> Where:
    return cast(Where, {"id": {"$eq": f"e{n:03d}"}})


async def collections(
    database: Any, name: str = "events"
) -> tuple[CachedDocumentDatabase, DocumentCollection[Doc]]:
    cached = CachedDocumentDatabase(database, partitions=PARTITIONS, max_bytes=ROOMY)
    return cached, await cached.create_collection(name, Doc)


# (a) Statements ---------------------------------------------------------------------------


def parlant_turn_reads(events: DocumentCollection[Doc]) -> list[Callable[[], Awaitable[Any]]]:
    """The reads Parlant's session store makes of one session's events during a turn."""
    return [
        lambda: events.find(pin("s1")),
        lambda: events.find(cast(Where, {"session_id": {"$eq": "s1"}, "deleted": {"$eq": False}})),
        lambda: events.find(
            cast(
                Where,
                {
                    "$or": [
                        {"session_id": {"$eq": "s1"}, "offset": {"$gte": 2}, "kind": {"$eq": k}}
                        for k in ("message", "status")
                    ]
                },
            )
        ),
        lambda: events.find_one(pin("s1"), sort=[("offset", SortDirection.DESC)]),
        lambda: events.find_one(by_id(4)),
        lambda: events.find_one(
            cast(
                Where,
                {
                    "id": {"$eq": "e004"},
                    "session_id": {"$eq": "s1"},
                    "deleted": {"$ne": True},
                },
            )
        ),
        lambda: events.find(pin("s1"), sort_direction=SortDirection.DESC),
    ]


def documents_of(answer: Any) -> Any:
    """A find's documents as a list; a find_one's document (or None) as it is."""
    return answer if answer is None or isinstance(answer, dict) else list(answer)


async def test_repeated_reads_send_nothing_and_an_append_sends_its_insert(
    open_database: OpenDatabase,
) -> None:
    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database, open_database() as direct:
        cached, events = await collections(database)
        for n in range(6):
            await events.insert_one(event(n, "s1" if n % 3 else "s2"))
        truth = await direct.create_collection("events", Doc)

        counter.reset()
        await events.find(pin("s1"))
        assert counter.statements == 1  # the partition's load
        assert cached.stats.loads == 1

        counter.reset()
        reads = parlant_turn_reads(events)
        for _ in range(3):
            for read in reads:
                await read()
        assert counter.statements == 0, counter.log
        assert cached.stats.hits == 3 * len(reads)

        # An append: its INSERT, nothing else; the next reads see it and send nothing.
        counter.reset()
        await events.insert_one(event(6, "s1"))
        assert counter.statements == 1
        assert counter.log[0].startswith("INSERT"), counter.log
        counter.reset()
        latest = await events.find_one(pin("s1"), sort=[("offset", SortDirection.DESC)])
        assert_same(latest, event(6, "s1"))
        assert counter.statements == 0

        # Every answer is the database's.
        for read_cached, read_direct in zip(
            parlant_turn_reads(events), parlant_turn_reads(truth), strict=True
        ):
            assert_same(documents_of(await read_cached()), documents_of(await read_direct()))

        # The counter does count: what the cache leaves to the database (a paged find, a
        # partition never pinned) sends a statement each time.
        counter.reset()
        await events.find(pin("s1"), limit=2)
        await events.find(cast(Where, {"offset": {"$gte": 0}}))
        assert counter.statements == 2


async def test_a_whole_collection_is_loaded_once_for_every_filter(
    open_database: OpenDatabase,
) -> None:
    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database:
        cached, config = await collections(database, "config")
        for n in range(4):
            await config.insert_one(event(n, f"s{n}"))
        counter.reset()
        assert ids(list(await config.find(cast(Where, {"offset": {"$gte": 2}})))) == [
            "e002",
            "e003",
        ]
        assert ids(list(await config.find({}))) == ["e000", "e001", "e002", "e003"]
        assert await config.find_one(cast(Where, {"session_id": "s9"})) is None
        first = await config.find_one({}, sort=[("offset", SortDirection.DESC)])
        assert first is not None and first["id"] == "e003"
        assert counter.statements == 1
        assert cached.stats.loads == 1


# (b) Failed writes --------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedWrite:
    label: str
    keyword: str
    when: str
    write: Callable[[DocumentCollection[Doc]], Awaitable[Any]]


FAILED_WRITES = [
    FailedWrite("insert, applied", "INSERT", "after", lambda c: c.insert_one(event(10, "s1"))),
    FailedWrite("insert, not applied", "INSERT", "before", lambda c: c.insert_one(event(10, "s1"))),
    FailedWrite(
        "update by id, applied",
        "UPDATE",
        "after",
        lambda c: c.update_one(by_id(1), cast(Doc, {"offset": 100})),
    ),
    FailedWrite(
        "update by id, not applied",
        "UPDATE",
        "before",
        lambda c: c.update_one(by_id(1), cast(Doc, {"offset": 100})),
    ),
    FailedWrite(
        "update by partition and field, applied",
        "UPDATE",
        "after",
        lambda c: c.update_one(
            cast(Where, {"session_id": {"$eq": "s1"}, "offset": {"$gte": 1}}),
            cast(Doc, {"kind": "changed"}),
        ),
    ),
    FailedWrite(
        "update moving an event to another session, applied",
        "UPDATE",
        "after",
        lambda c: c.update_one(
            cast(Where, {"session_id": {"$eq": "s1"}, "offset": {"$eq": 1}}),
            cast(Doc, {"session_id": "s2"}),
        ),
    ),
    FailedWrite(
        "upsert inserting, applied",
        "INSERT",
        "after",
        lambda c: c.update_one(by_id(11), event(11, "s2"), upsert=True),
    ),
    FailedWrite("delete by id, applied", "DELETE", "after", lambda c: c.delete_one(by_id(0))),
    FailedWrite("delete by id, not applied", "DELETE", "before", lambda c: c.delete_one(by_id(0))),
    FailedWrite(
        "delete unpinned, applied",
        "DELETE",
        "after",
        lambda c: c.delete_one(cast(Where, {"offset": {"$eq": 2}})),
    ),
]


@asynccontextmanager
async def faulty_database(
    connection_params: dict[str, Any], table_prefix: str
) -> AsyncIterator[tuple[SnowflakeDocumentDatabase, FaultPlan, ArmedLog]]:
    plan, log = armed_plan()
    async with SnowflakeDocumentDatabase(
        RecordingLogger(),
        connection_params,
        table_prefix=table_prefix,
        connection_factory=faulty_factory(plan),
        retry=NO_RETRIES,
        pool_size=2,
    ) as database:
        yield database, plan, log


READS: list[Where] = [
    pin("s1"),
    pin("s2"),
    by_id(0),
    by_id(1),
    by_id(10),
    cast(Where, {"session_id": {"$eq": "s1"}, "offset": {"$gte": 1}}),
]


async def assert_cache_agrees(
    events: DocumentCollection[Doc], truth: DocumentCollection[Doc], context: str
) -> None:
    for where in READS:
        assert_same(
            list(await events.find(where)), list(await truth.find(where)), f"{context}: {where}"
        )
        assert_same(
            await events.find_one(where), await truth.find_one(where), f"{context}: {where}"
        )


@pytest.mark.parametrize("failure", FAILED_WRITES, ids=[f.label for f in FAILED_WRITES])
@pytest.mark.parametrize("collection", ["events", "config"])
async def test_a_failed_write_leaves_no_answer_the_database_does_not_give(
    connection_params: dict[str, Any],
    table_prefix: str,
    open_database: OpenDatabase,
    failure: FailedWrite,
    collection: str,
) -> None:
    async with (
        faulty_database(connection_params, table_prefix) as (database, plan, log),
        open_database() as direct,
    ):
        cached, events = await collections(database, collection)
        for n, session in enumerate(["s1", "s1", "s1", "s2", "s2"]):
            await events.insert_one(event(n, session))
        truth = await direct.create_collection(collection, Doc)
        await assert_cache_agrees(events, truth, "before")  # every partition is loaded
        loads = cached.stats.loads

        log.arm(failure.keyword, failure.when)
        with pytest.raises(SnowflakeOperationError):
            await failure.write(events)
        assert not log.armed and len(plan.injected) == 1, plan.injected

        await assert_cache_agrees(events, truth, failure.label)
        assert cached.stats.invalidations >= 1
        assert cached.stats.loads > loads  # read again, not answered from what was held


# (c) Loads overlapping writes ----------------------------------------------------------------


@dataclass(frozen=True)
class OverlappingWrite:
    label: str
    write: Callable[[DocumentCollection[Doc]], Awaitable[Any]]
    #: Armed drop (keyword, when), for a write that fails while the load is held.
    fault: tuple[str, str] | None = None


OVERLAPPING_WRITES = [
    OverlappingWrite("insert", lambda c: c.insert_one(event(5, "s1"))),
    OverlappingWrite("update", lambda c: c.update_one(by_id(1), cast(Doc, {"offset": 100}))),
    OverlappingWrite(
        "update by partition",
        lambda c: c.update_one(pin("s1"), cast(Doc, {"kind": "changed"})),
    ),
    OverlappingWrite("delete", lambda c: c.delete_one(by_id(1))),
    OverlappingWrite(
        "update moving an event out of the partition",
        lambda c: c.update_one(by_id(1), cast(Doc, {"session_id": "s2"})),
    ),
    OverlappingWrite(
        "upsert inserting",
        lambda c: c.update_one(by_id(6), event(6, "s1"), upsert=True),
    ),
    OverlappingWrite(
        "insert that fails after it was applied",
        lambda c: c.insert_one(event(5, "s1")),
        fault=("INSERT", "after"),
    ),
]


@pytest.mark.parametrize("overlap", OVERLAPPING_WRITES, ids=[o.label for o in OVERLAPPING_WRITES])
async def test_a_load_overlapping_a_write_is_not_kept(
    connection_params: dict[str, Any],
    table_prefix: str,
    open_database: OpenDatabase,
    overlap: OverlappingWrite,
) -> None:
    async with (
        faulty_database(connection_params, table_prefix) as (database, _, log),
        open_database() as direct,
    ):
        gated = GatedDocumentDatabase(database)
        cached = CachedDocumentDatabase(gated, partitions=PARTITIONS, max_bytes=ROOMY)
        events = await cached.create_collection("events", Doc)
        for n in range(3):
            await events.insert_one(event(n, "s1"))
        truth = await direct.create_collection("events", Doc)
        before = list(await truth.find(pin("s1")))

        # The load reads the partition, then is held with that snapshot (before the write).
        gated.gate.arm(pin("s1"))
        load = asyncio.create_task(events.find(pin("s1")))
        await asyncio.wait_for(gated.gate.reached.wait(), 30)

        if overlap.fault is not None:
            log.arm(*overlap.fault)
            with pytest.raises(SnowflakeOperationError):
                await overlap.write(events)
        else:
            await overlap.write(events)
        after = list(await truth.find(pin("s1")))
        assert exact(after) != exact(before), (
            "the write changed nothing: the test would prove nothing"
        )

        # A read begun once the write has returned must see it, though the load is in flight.
        later = asyncio.create_task(events.find(pin("s1")))
        await asyncio.sleep(0.2)
        gated.gate.release()
        overlapping = list(await load)
        assert_same(overlapping, before, "the held load answers with its snapshot")
        assert_same(list(await later), after, "a read begun after the write returned")

        # The overlapping load was not kept: the next read loads again and sees the write.
        assert_same(list(await events.find(pin("s1"))), after, "the next read")
        assert_same(
            await events.find_one(pin("s1"), sort=[("offset", SortDirection.DESC)]),
            await truth.find_one(pin("s1"), sort=[("offset", SortDirection.DESC)]),
        )


async def test_a_cancelled_reader_does_not_cancel_the_readers_sharing_its_load(
    open_database: OpenDatabase,
) -> None:
    """Parlant cancels turns (a new message arrives); a read another request shares with the
    cancelled turn's load must still be answered."""
    async with open_database() as database:
        gated = GatedDocumentDatabase(database)
        cached = CachedDocumentDatabase(gated, partitions=PARTITIONS, max_bytes=ROOMY)
        events = await cached.create_collection("events", Doc)
        await events.insert_one(event(1, "s1"))

        gated.gate.arm(pin("s1"))
        starter = asyncio.create_task(events.find(pin("s1")))
        await asyncio.wait_for(gated.gate.reached.wait(), 30)
        sharer = asyncio.create_task(events.find(pin("s1")))
        await asyncio.sleep(0.1)  # it waits for the load in flight
        starter.cancel()
        await asyncio.sleep(0.1)
        gated.gate.release()

        with pytest.raises(asyncio.CancelledError):
            await starter
        assert_same(list(await asyncio.wait_for(sharer, 30)), [event(1, "s1")])
        assert_same(list(await events.find(pin("s1"))), [event(1, "s1")])


# (d) The byte budget ----------------------------------------------------------------------------


def size(documents: list[Doc]) -> int:
    """What the budget charges for a partition holding `documents`."""
    return PARTITION_COST + sum(document_cost(d) for d in documents)


async def test_the_byte_budget_evicts_the_least_recently_used_and_never_exceeds(
    open_database: OpenDatabase,
) -> None:
    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database, open_database() as direct:
        sessions = [f"s{i}" for i in range(1, 6)]
        documents = {
            s: [event(10 * i + k, s) for k in range(2)] for i, s in enumerate(sessions, start=1)
        }
        partition_size = size(documents["s1"])
        assert all(size(d) == partition_size for d in documents.values())
        max_bytes = 3 * partition_size + partition_size // 2  # three partitions fit, not four
        cached = CachedDocumentDatabase(database, partitions=PARTITIONS, max_bytes=max_bytes)
        events = await cached.create_collection("events", Doc)
        truth = await direct.create_collection("events", Doc)
        for docs in documents.values():
            for document in docs:
                await events.insert_one(document)
        big = [event(100 + k, "big", data={"chunks": ["y" * 1500]}) for k in range(4)]
        assert size(big) > max_bytes
        for document in big:
            await events.insert_one(document)

        async def read(session: str) -> int:
            """Read a partition (checked against the database); the statements it sent."""
            counter.reset()
            answer = list(await events.find(pin(session)))
            sent = counter.statements
            assert_same(answer, list(await truth.find(pin(session))), session)
            budget = cached.budget
            assert 0 <= budget.used <= budget.max_bytes
            assert budget.used == held_bytes([events])
            return sent

        assert [await read(s) for s in ("s1", "s2", "s3")] == [1, 1, 1]
        assert cached.budget.used == 3 * partition_size
        assert cached.stats.evictions == 0
        assert await read("s1") == 0  # s1 is now the most recently used; s2 the least
        assert await read("s4") == 1  # evicts s2
        assert cached.stats.evictions == 1
        assert await read("s1") == 0
        assert await read("s3") == 0
        assert await read("s2") == 1  # loaded again; evicts s4 (s1 and s3 were used since)
        assert cached.stats.evictions == 2
        assert await read("s4") == 1

        # A partition larger than the whole budget is never kept, and evicts nothing.
        held = cached.budget.used
        loads = cached.stats.loads
        assert await read("big") == 1
        assert await read("big") == 1
        assert cached.stats.loads == loads + 2
        assert cached.budget.used == held
        assert await read("s4") == 0

        # A held partition that outgrows the budget is dropped, and answers stay right.
        evictions = cached.stats.evictions
        for k in range(2, 12):
            await events.insert_one(event(200 + k, "s4", data={"chunks": ["z" * 40]}))
            assert 0 <= cached.budget.used <= max_bytes
            assert cached.budget.used == held_bytes([events])
        assert cached.stats.evictions > evictions
        assert await read("s4") == 1
        assert await read("s4") == 1  # still too large to keep


async def test_empty_partitions_are_bounded_too() -> None:
    cached = CachedDocumentDatabase(
        TransientDocumentDatabase(), partitions={"sessions": "id"}, max_bytes=1000
    )
    sessions = await cached.create_collection("sessions", Doc)
    for n in range(5000):
        assert await sessions.find_one(cast(Where, {"id": {"$eq": f"unknown-{n}"}})) is None
    # Whatever a partition is charged, a 1000-byte budget cannot hold 1000 of them.
    assert len(cached_partitions(sessions)) < 1000


# Writes that change where a document lives ---------------------------------------------------

IDENTITY_CHANGES: list[tuple[str, Where, dict[str, Any]]] = [
    ("a new id, by id", by_id(1), {"id": "e901"}),
    ("a new id, by partition and field", pin("s1"), {"id": "e901"}),
    ("a new id, unpinned", cast(Where, {"offset": {"$eq": 1}}), {"id": "e901"}),
    ("another session, by id", by_id(1), {"session_id": "s2"}),
    ("a session nobody reads, by id", by_id(1), {"session_id": "s9"}),
    ("a session never loaded, by partition", pin("s1"), {"session_id": "s3"}),
]


@pytest.mark.parametrize(
    ("label", "where", "params"), IDENTITY_CHANGES, ids=[c[0] for c in IDENTITY_CHANGES]
)
async def test_an_update_changing_id_or_partition(
    open_database: OpenDatabase, label: str, where: Where, params: dict[str, Any]
) -> None:
    async with open_database() as database, open_database() as direct:
        _, events = await collections(database)
        for n, session in enumerate(["s1", "s1", "s2", "s3"]):
            await events.insert_one(event(n, session))
        truth = await direct.create_collection("events", Doc)
        for session in ("s1", "s2"):  # s3 is not held
            await events.find(pin(session))

        result = await events.update_one(where, cast(Doc, params))
        assert result.matched_count == 1, label

        for read in [pin("s1"), pin("s2"), pin("s3"), pin("s9"), by_id(1), by_id(0)]:
            assert_same(
                list(await events.find(read)), list(await truth.find(read)), f"{label}: {read}"
            )
        assert_same(
            await events.find_one(cast(Where, {"id": {"$eq": "e901"}})),
            await truth.find_one(cast(Where, {"id": {"$eq": "e901"}})),
            label,
        )


# (e) Copies -------------------------------------------------------------------------------


async def test_documents_handed_out_are_copies(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        _, events = await collections(database)
        await events.insert_one(event(1, "s1"))
        expected = event(1, "s1")

        (found,) = list(await events.find(pin("s1")))
        cast(dict[str, Any], found)["data"]["chunks"].append("mutated")
        cast(dict[str, Any], found)["offset"] = -1
        one = await events.find_one(by_id(1))
        assert_same(one, expected)
        assert one is not None
        cast(dict[str, Any], one)["data"]["chunks"].clear()
        assert_same(list(await events.find(pin("s1"))), [expected])

        updated = await events.update_one(by_id(1), cast(Doc, {"kind": "updated"}))
        assert updated.updated_document is not None
        cast(dict[str, Any], updated.updated_document)["data"]["chunks"].append("mutated")
        assert_same(list(await events.find(pin("s1"))), [{**expected, "kind": "updated"}])


async def test_documents_handed_in_are_copied(open_database: OpenDatabase) -> None:
    async with open_database() as database:
        _, events = await collections(database)
        await events.find(pin("s1"))  # the partition is held: writes update it in place

        document = event(1, "s1")
        kept = copy.deepcopy(document)
        await events.insert_one(document)
        cast(dict[str, Any], document)["data"]["chunks"].append("mutated after insert_one")
        assert_same(list(await events.find(pin("s1"))), [kept])

        params = cast(Doc, {"data": {"chunks": ["a"]}})
        await events.update_one(by_id(1), params)
        cast(dict[str, Any], params)["data"]["chunks"].append("mutated after update_one")
        assert_same(list(await events.find(pin("s1"))), [{**kept, "data": {"chunks": ["a"]}}])

        upserted = event(2, "s1")
        kept_upsert = copy.deepcopy(upserted)
        await events.update_one(by_id(2), upserted, upsert=True)
        cast(dict[str, Any], upserted)["data"]["chunks"].append("mutated after upsert")
        assert_same(
            list(await events.find(pin("s1"))),
            [{**kept, "data": {"chunks": ["a"]}}, kept_upsert],
        )


async def test_documents_that_are_not_json_are_left_to_the_database() -> None:
    # A custom backend may hand back values JSON cannot hold; the cache then keeps nothing
    # and every read is the database's own answer.
    from datetime import datetime, timezone

    inner = TransientDocumentDatabase()
    cached = CachedDocumentDatabase(inner, partitions={"events": "session_id"}, max_bytes=10**6)
    events = await cached.create_collection("events", Doc)
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    odd = cast(Doc, {"id": "e1", "version": "1", "session_id": "s1", "creation_utc": "c", "at": at})
    await events.insert_one(odd)
    for _ in range(2):
        found = list(await events.find(pin("s1")))
        assert found == [odd] and found[0]["at"] == at  # type: ignore[typeddict-item]
    assert cached.budget.used == 0
    assert cached.stats.loads == 2 and cached.stats.bypassed == 2


async def test_with_a_max_age_a_partition_is_read_again_once_it_is_older() -> None:
    """`server.replicas: many`: what another process wrote but never announced (it died
    before publishing) is served for at most `max_age`."""
    stored = TransientDocumentDatabase()
    cache = CachedDocumentDatabase(stored, partitions=PARTITIONS, max_bytes=ROOMY, max_age=0.3)
    events = await cache.get_or_create_collection("events", Doc, exact)
    direct = await stored.get_collection("events", Doc, exact)
    await events.insert_one(event(0))
    assert ids(await events.find({"session_id": {"$eq": "s1"}})) == ["e000"]
    await direct.insert_one(event(1))  # another writer, unannounced

    assert ids(await events.find({"session_id": {"$eq": "s1"}})) == ["e000"]
    await asyncio.sleep(0.4)
    assert ids(await events.find({"session_id": {"$eq": "s1"}})) == ["e000", "e001"]
    assert cache.stats.loads == 2
