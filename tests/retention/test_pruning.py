"""Pruning what a retention lets go, on the emulator (SQL) and through Parlant's collection
API (json, transient), against a reference computed here from the same data, with a clock
of the test's own."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId
from parlant.core.evaluations import EvaluationDocumentStore
from parlant.core.persistence.document_database import (
    BaseDocument,
    DocumentDatabase,
    identity_loader,
)
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore
from parlant.core.tags import TagId

from parlant_router.backends.json_atomic import AtomicJSONFileDatabase
from parlant_router.retention import Pruner, RetainedStore, sql_pruning
from parlant_router.retention.document_pruning import DocumentPruning
from parlant_router.retention.pruner import LeaseHeldElsewhere
from parlant_router.retention.sql_pruning import SqlPruning
from parlant_router.snowflake import CountingConnectionFactory, SnowflakeDocumentDatabase
from parlant_router.snowflake.lease import Lease
from parlant_router.stores.catalog import STORES

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase
    from tests.support.logger import RecordingLogger

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
RETENTION = timedelta(days=30)
SESSIONS_RULE = STORES["sessions"].retention
EVALUATIONS_RULE = STORES["evaluations"].retention
assert SESSIONS_RULE is not None and EVALUATIONS_RULE is not None

Opener = Callable[[], AbstractAsyncContextManager[DocumentDatabase]]


def clock() -> datetime:
    return NOW


async def seed_sessions(store: SessionDocumentStore, seed: int) -> dict[str, bool]:
    """Sessions created up to 100 days ago, with events at random times after their
    creation (some with none); {session id: expired at NOW} as the reference says."""
    rng = random.Random(seed)
    cutoff = NOW - RETENTION
    expected: dict[str, bool] = {}
    for number in range(40):
        created = NOW - timedelta(days=rng.uniform(0, 100))
        session = await store.create_session(
            CustomerId(f"c{number}"), AgentId("a"), creation_utc=created
        )
        last = created
        for _ in range(rng.choice((0, 0, 1, 3, 6))):
            at = created + (NOW - created) * rng.random()
            # Exactly on the cutoff: kept (expired means strictly older).
            at = cutoff if rng.random() < 0.05 else at
            last = max(last, at)
            await store.create_event(
                session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {"n": 1}, creation_utc=at
            )
        expected[session.id] = last < cutoff
    return expected


async def collection_ids(database: DocumentDatabase, name: str, field: str = "id") -> list[str]:
    collection = await database.get_collection(name, BaseDocument, identity_loader)
    return sorted(str(document[field]) for document in await collection.find({}))  # type: ignore[literal-required]


@asynccontextmanager
async def json_database(tmp_path: Path, logger: RecordingLogger) -> AsyncIterator[DocumentDatabase]:
    async with AtomicJSONFileDatabase(logger, tmp_path / "sessions.json") as database:
        yield database


@pytest.fixture(params=["emulator", "json", "transient"])
def opener(
    request: pytest.FixtureRequest,
    open_database: OpenDatabase,
    tmp_path: Path,
    logger: RecordingLogger,
) -> Opener:
    if request.param == "emulator":
        return lambda: open_database()
    if request.param == "json":
        return lambda: json_database(tmp_path, logger)

    @asynccontextmanager
    async def transient() -> AsyncIterator[DocumentDatabase]:
        yield TransientDocumentDatabase()

    return transient


def pruning_of(database: DocumentDatabase, rule: Any) -> SqlPruning | DocumentPruning:
    if isinstance(database, SnowflakeDocumentDatabase):
        return SqlPruning(database, rule)
    return DocumentPruning(database, rule)


async def test_a_pass_deletes_exactly_the_sessions_whose_last_event_is_older(
    opener: Opener, logger: RecordingLogger
) -> None:
    async with opener() as database, SessionDocumentStore(database, allow_migration=True) as store:
        expected = await seed_sessions(store, seed=20261130)
        expired = {sid for sid, gone in expected.items() if gone}
        assert 0 < len(expired) < len(expected)
        events_of = {sid: await store.list_events(sid) for sid in expected}
        pruner = Pruner(
            [RetainedStore("sessions", RETENTION, pruning_of(database, SESSIONS_RULE))],
            logger,
            clock=clock,
        )
        [dry] = await pruner.run(dry_run=True)
        assert await collection_ids(database, "sessions") == sorted(expected)  # nothing deleted
        [done] = await pruner.run()
        expired_events = sum(len(events_of[sid]) for sid in expired)
        assert (
            done.documents
            == dry.documents
            == {
                "sessions": len(expired),
                "events": expired_events,
            }
        )
        assert await collection_ids(database, "sessions") == sorted(set(expected) - expired)
        kept_events = sorted(e.id for sid in expected if sid not in expired for e in events_of[sid])
        assert await collection_ids(database, "events") == kept_events
        [again] = await pruner.run()
        assert again.documents == {"sessions": 0, "events": 0}
        assert f"deleted {len(expired):,} sessions, {expired_events:,} events" in " ".join(
            logger.messages("info")
        )


async def test_sessions_are_found_and_deleted_in_pages_by_sql(
    open_database: OpenDatabase, logger: RecordingLogger, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CountingConnectionFactory()
    monkeypatch.setattr(sql_pruning, "PAGE_ROWS", 4)
    async with (
        open_database(connection_factory=counter) as database,
        SessionDocumentStore(database, allow_migration=True) as store,
    ):
        expected = await seed_sessions(store, seed=7)
        expired = sorted(sid for sid, gone in expected.items() if gone)
        counter.reset()
        counts = await SqlPruning(database, SESSIONS_RULE).prune(NOW - RETENTION)
        log = list(counter.log)
        assert counts["sessions"] == len(expired)
        assert await collection_ids(database, "sessions") == sorted(set(expected) - set(expired))
        # A SELECT per page (4 ids; the last one short, or empty after a full one), a DELETE
        # per collection per non-empty page, and one orphan sweep.
        kinds = [sql.split()[0] for sql in log]
        full = -(-len(expired) // 4)
        assert kinds.count("SELECT") == len(expired) // 4 + 1, log
        assert kinds.count("DELETE") == 2 * full + 1, log
        assert set(kinds) == {"SELECT", "DELETE"}


async def test_a_session_active_again_since_its_page_was_read_is_kept_with_its_events(
    opener: Opener,
) -> None:
    async with opener() as database, SessionDocumentStore(database, allow_migration=True) as store:
        old = NOW - timedelta(days=60)
        revived = await store.create_session(CustomerId("c"), AgentId("a"), creation_utc=old)
        gone = await store.create_session(CustomerId("c"), AgentId("a"), creation_utc=old)
        for session in (revived, gone):
            await store.create_event(
                session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {}, creation_utc=old
            )
        pruning = pruning_of(database, SESSIONS_RULE)
        stale_page = [revived.id, gone.id]  # read before the new event below
        await store.create_event(revived.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {})
        if isinstance(pruning, SqlPruning):
            counts = {"sessions": 0, "events": 0}
            await pruning._delete_range(None, max(stale_page), pruning_cutoff(), counts)
        else:
            kept = await pruning._still_expired(sorted(stale_page), NOW - RETENTION)
            assert kept == [gone.id]
            return
        assert counts == {"sessions": 1, "events": 1}
        assert await collection_ids(database, "sessions") == [revived.id]
        assert len(await store.list_events(revived.id)) == 2


def pruning_cutoff() -> str:
    from parlant_router.retention.rules import utc_text

    return utc_text(NOW - RETENTION)


async def test_old_events_left_without_their_session_are_swept(opener: Opener) -> None:
    async with opener() as database, SessionDocumentStore(database, allow_migration=True) as store:
        kept = await store.create_session(CustomerId("c"), AgentId("a"))
        events = await database.get_collection("events", BaseDocument, identity_loader)
        template = await store.create_event(
            kept.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {}
        )
        stored = await events.find_one({"id": {"$eq": template.id}})
        assert stored is not None
        for name, days in (("old-orphan", 60), ("new-orphan", 1)):
            orphan = {
                **stored,
                "id": name,
                "session_id": "no-such-session",
                "creation_utc": (NOW - timedelta(days=days)).isoformat(),
            }
            await events.insert_one(orphan)  # type: ignore[arg-type]
        counts = await pruning_of(database, SESSIONS_RULE).prune(NOW - RETENTION)
        assert counts == {"sessions": 0, "events": 1}
        assert await collection_ids(database, "events") == sorted([template.id, "new-orphan"])


async def test_evaluations_expire_by_creation_with_their_tag_associations(
    opener: Opener, logger: RecordingLogger
) -> None:
    async with (
        opener() as database,
        EvaluationDocumentStore(database, allow_migration=True) as store,
    ):
        old = await store.create_evaluation(
            [], creation_utc=NOW - timedelta(days=45), tags=[TagId("t1"), TagId("t2")]
        )
        new = await store.create_evaluation(
            [], creation_utc=NOW - timedelta(days=5), tags=[TagId("t1")]
        )
        pruner = Pruner(
            [RetainedStore("evaluations", RETENTION, pruning_of(database, EVALUATIONS_RULE))],
            logger,
            clock=clock,
        )
        [counts] = await pruner.run()
        assert counts.documents == {"evaluations": 1, "evaluation_tag_associations": 2}
        assert await collection_ids(database, "evaluations") == [new.id]
        assert await collection_ids(database, "evaluation_tag_associations", "evaluation_id") == [
            new.id
        ]
        assert old.id not in await collection_ids(database, "evaluations")


async def test_two_pruners_sharing_a_lease_take_turns_and_delete_nothing_twice(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    async with (
        open_database() as database,
        SessionDocumentStore(database, allow_migration=True) as store,
    ):
        expected = await seed_sessions(store, seed=3)
        expired = sum(expected.values())

        def pruner() -> Pruner:
            return Pruner(
                [RetainedStore("sessions", RETENTION, SqlPruning(database, SESSIONS_RULE))],
                logger,
                lease=Lease(database, f"prune-{database.table_prefix}", ttl=60),
                clock=clock,
            )

        first, second = pruner(), pruner()
        import asyncio

        outcomes = await asyncio.gather(first.run(), second.run(), return_exceptions=True)
        done = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, LeaseHeldElsewhere)]
        assert len(done) + len(refused) == 2 and done
        assert sum(r[0].documents["sessions"] for r in done) == expired
        assert await collection_ids(database, "sessions") == sorted(
            sid for sid, gone in expected.items() if not gone
        )
        # The lease was given back: the other takes its turn at once and finds nothing.
        [later] = await second.run()
        assert later.documents["sessions"] == 0


async def test_a_pass_stopped_while_it_takes_the_lease_gives_it_back(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    # A server stopping while its pass's lease statement runs: the statement takes the lease
    # (its answer arrives after the task was cancelled); the lease must not stay held.
    import asyncio

    class SlowAnswer(Lease):
        async def acquire(self) -> bool:
            taken = await super().acquire()
            taken_event.set()
            await asyncio.sleep(0.5)
            return taken

    taken_event = asyncio.Event()
    async with open_database() as database:
        name = f"prune-{database.table_prefix}"
        stopped = Pruner(
            [RetainedStore("sessions", RETENTION, SqlPruning(database, SESSIONS_RULE))],
            logger,
            lease=SlowAnswer(database, name, ttl=600),
            clock=clock,
        )
        task = asyncio.ensure_future(stopped.run())
        await taken_event.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await Lease(database, name, ttl=600).acquire()
