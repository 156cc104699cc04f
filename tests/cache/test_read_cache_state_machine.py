"""CachedDocumentDatabase as a state machine: every operation runs on two copies of the same
collections in one emulator database (two table prefixes), one behind the read cache, one
direct; every answer must be identical (documents compared as JSON text, order included),
errors included.

Two collections: `events`, partitioned by `session_id` (Parlant's events), and `config`,
cached whole. Writes: inserts (duplicates too), updates by id, by partition and field, across
partitions, moving a document to another partition, upserts as Parlant writes them (the
filter names the id the new document has), deletes. Reads: pinned to a partition, by id,
unpinned, sorted, paged (which the cache leaves to the database). Partitions are evicted
explicitly, and by a budget too small to hold them all in the second variant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypedDict, cast

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from parlant.core.persistence.common import ObjectId, SortDirection, Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionSort,
    DeleteResult,
    DocumentCollection,
    FindResult,
    InsertResult,
    UpdateResult,
)

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from parlant_router.stores.read_cache import CachedDocumentDatabase
from tests.cache.helpers import (
    cached_partitions,
    exact,
    held_bytes,
    new_prefix,
)
from tests.support.logger import RecordingLogger
from tests.support.loop_thread import LoopThread


class _IdOnly(TypedDict, total=False):
    id: ObjectId


Doc = BaseDocument
#: The collections' schema: only `id` is required (documents may lack `session_id`).
SCHEMA = cast(type[Doc], _IdOnly)


PARTITIONS: dict[str, str | None] = {"events": "session_id", "config": None}
COLLECTIONS = st.sampled_from(sorted(PARTITIONS))
IDS = st.integers(0, 9).map(lambda i: f"d{i}")
SESSIONS = st.sampled_from(["s1", "s2", "s1", "s2", "s3"])
#: Mostly Parlant's string session ids; sometimes a value no `$eq` pin of a string reaches.
SESSION_VALUES = st.one_of(SESSIONS, SESSIONS, SESSIONS, st.sampled_from([1, None, "missing"]))
NUMBERS = st.one_of(st.integers(-2, 3), st.sampled_from([0.5, 1.0]), st.booleans(), st.none())
TAGS = st.sampled_from(["a", "b", "1", ""])
CHUNKS = st.lists(st.one_of(st.sampled_from(["x", "yz"]), st.none()), max_size=3)
FIELDS = st.fixed_dictionaries({}, optional={"n": NUMBERS, "tag": TAGS, "chunks": CHUNKS})
PARAMS = st.fixed_dictionaries(
    {}, optional={"n": NUMBERS, "tag": TAGS, "chunks": CHUNKS, "session_id": SESSIONS}
).filter(bool)
LEAVES = st.one_of(
    st.builds(lambda v: {"n": {"$gte": v}}, NUMBERS.filter(lambda v: v is not None)),
    st.builds(lambda v: {"n": {"$ne": v}}, NUMBERS),
    st.builds(lambda t: {"tag": t}, TAGS),
    st.builds(lambda ts: {"tag": {"$nin": ts}}, st.lists(TAGS, max_size=2)),
    st.just({}),
)
SORTS = st.one_of(
    st.none(),
    st.lists(
        st.tuples(
            st.sampled_from(["n", "tag", "creation_utc", "chunks", "session_id"]),
            st.sampled_from(SortDirection),
        ),
        min_size=1,
        max_size=2,
        unique_by=lambda pair: pair[0],
    ),
)


def pinned(session: str, other: str, leaf: dict[str, Any], form: str) -> Where:
    """A filter on `session_id`: pinned in one of the forms Parlant writes (flat, `$and`,
    every `$or` branch), or an `$or` that pins no single partition (`other` may differ)."""
    if form == "flat":
        return cast(Where, {"session_id": {"$eq": session}, **leaf})
    if form == "and":
        return cast(Where, {"$and": [{"session_id": session}, leaf]})
    if form == "or":
        return cast(
            Where,
            {"$or": [{"session_id": {"$eq": session}, **leaf}, {"session_id": session, "n": 1}]},
        )
    if form == "or_two":
        return cast(
            Where, {"$or": [{"session_id": {"$eq": session}, **leaf}, {"session_id": other}]}
        )
    return cast(Where, {"$or": [{"session_id": {"$eq": session}}, leaf]})


def selector(draw: st.DrawFn, existing: list[str]) -> Where:
    """A filter for reads and writes: pinned to a partition, by id, or neither.

    Ids are mostly those of documents that exist (`existing`), so that writes and reads meet.
    """
    kind = draw(st.sampled_from(["pinned"] * 3 + ["id"] * 2 + ["id_and_pin", "unpinned"]))
    leaf = draw(LEAVES)
    use_existing = bool(existing) and draw(st.integers(0, 4)) > 0
    identifier = draw(st.sampled_from(existing) if use_existing else IDS, label="id")
    if kind == "pinned":
        form = draw(
            st.sampled_from(["flat", "flat", "and", "or", "or_two", "or_two", "or_unpinned"])
        )
        return pinned(draw(SESSIONS), draw(SESSIONS), leaf, form)
    if kind == "id":
        return cast(Where, {"id": {"$eq": identifier}})
    if kind == "id_and_pin":
        return cast(Where, {"id": {"$eq": identifier}, "session_id": {"$eq": draw(SESSIONS)}})
    return cast(Where, leaf)


def outcome(value: Any) -> str:
    """A result as comparable text (documents exact); an error as its type."""
    if isinstance(value, BaseException):
        return f"raised {type(value).__name__}"
    if isinstance(value, FindResult):
        cursor = value.next_cursor
        return exact(
            [
                list(value.items),
                value.total_count,
                value.has_more,
                None if cursor is None else [str(cursor.creation_utc), str(cursor.id)],
            ]
        )
    if isinstance(value, UpdateResult):
        return exact(
            [value.acknowledged, value.matched_count, value.modified_count, value.updated_document]
        )
    if isinstance(value, DeleteResult):
        return exact([value.acknowledged, value.deleted_count, value.deleted_document])
    if isinstance(value, InsertResult):
        return exact([value.acknowledged])
    return exact(value)


Operation = Callable[[DocumentCollection[Doc]], Awaitable[Any]]


class CacheAgainstDatabase(RuleBasedStateMachine):
    """Configured by `run` below: the loop, the open database and the byte budget."""

    runner: ClassVar[LoopThread]
    database: ClassVar[SnowflakeDocumentDatabase]
    max_bytes: ClassVar[int]

    def __init__(self) -> None:
        super().__init__()
        self.cached_db = CachedDocumentDatabase(
            self.database.with_table_prefix(new_prefix("K")),
            partitions=PARTITIONS,
            max_bytes=self.max_bytes,
        )
        self.direct_db = self.database.with_table_prefix(new_prefix("D"))
        self.cached: dict[str, DocumentCollection[Doc]] = {}
        self.direct: dict[str, DocumentCollection[Doc]] = {}
        for name in PARTITIONS:
            self.cached[name] = self.runner.run(self.cached_db.create_collection(name, SCHEMA))
            self.direct[name] = self.runner.run(self.direct_db.create_collection(name, SCHEMA))
        self.clock = 0
        self.appended = 0
        self.steps: list[str] = []
        #: Ids of the documents each collection holds (tracked from the direct answers).
        self.existing: dict[str, list[str]] = {name: [] for name in PARTITIONS}

    def both(self, collection: str, label: str, operation: Operation) -> Any:
        """Run `operation` on the direct and the cached collection; the answers must match.

        Returns the direct answer (or the error it raised)."""

        async def attempt(target: DocumentCollection[Doc]) -> Any:
            try:
                return await operation(target)
            except Exception as error:
                return error

        direct = self.runner.run(attempt(self.direct[collection]))
        expected = outcome(direct)
        actual = outcome(self.runner.run(attempt(self.cached[collection])))
        self.steps.append(f"{collection}: {label} -> {expected}")
        history = "\n".join(self.steps[-12:])
        assert actual == expected, (
            f"{collection}: {label}\ncached: {actual}\ndirect: {expected}\nlast steps:\n{history}"
        )
        return direct

    def track(self, collection: str, added: Any = None, removed: Any = None) -> None:
        held = self.existing[collection]
        if isinstance(added, dict) and added.get("id") not in held:
            held.append(str(added["id"]))
        if isinstance(removed, dict) and removed.get("id") in held:
            held.remove(str(removed["id"]))

    def new_document(self, identifier: str, session: Any, fields: dict[str, Any]) -> Doc:
        self.clock += 1
        document: dict[str, Any] = {
            "id": identifier,
            "version": "1.0.0",
            "creation_utc": f"2024-01-01T00:00:{self.clock:03d}",
        }
        if session != "missing":
            document["session_id"] = session
        document.update(fields)
        return cast(Doc, document)

    # Writes ---------------------------------------------------------------------------------

    @rule(collection=COLLECTIONS, identifier=IDS, session=SESSION_VALUES, fields=FIELDS)
    def insert_one(
        self, collection: str, identifier: str, session: Any, fields: dict[str, Any]
    ) -> None:
        document = self.new_document(identifier, session, fields)
        result = self.both(
            collection, f"insert_one({document!r})", lambda c: c.insert_one(document)
        )
        self.track(collection, added=None if isinstance(result, Exception) else document)

    @rule(collection=COLLECTIONS, session=SESSIONS, fields=FIELDS)
    def append(self, collection: str, session: str, fields: dict[str, Any]) -> None:
        # A new id each time: what the sessions store does with events, so partitions grow.
        self.appended += 1
        document = self.new_document(f"a{self.appended:02d}", session, fields)
        self.both(collection, f"insert_one({document!r})", lambda c: c.insert_one(document))
        self.track(collection, added=document)

    @rule(collection=COLLECTIONS, params=PARAMS, data=st.data())
    def update_one(self, collection: str, params: dict[str, Any], data: st.DataObject) -> None:
        where = data.draw(st.composite(selector)(self.existing[collection]), label="filter")
        self.both(
            collection,
            f"update_one({where!r}, {params!r})",
            lambda c: c.update_one(where, cast(Doc, params)),
        )

    @rule(session=SESSIONS, data=st.data())
    def move(self, session: str, data: st.DataObject) -> None:
        # An event moved to another session: it leaves one partition for another.
        existing = self.existing["events"]
        identifier = data.draw(st.sampled_from(existing) if existing else IDS, label="id")
        where = cast(Where, {"id": {"$eq": identifier}})
        params = cast(Doc, {"session_id": session})
        self.both(
            "events", f"update_one({where!r}, {params!r})", lambda c: c.update_one(where, params)
        )

    @rule(
        collection=COLLECTIONS,
        pin=st.one_of(st.none(), SESSIONS),
        session=SESSIONS,
        fields=FIELDS,
        data=st.data(),
    )
    def upsert(
        self,
        collection: str,
        pin: str | None,
        session: str,
        fields: dict[str, Any],
        data: st.DataObject,
    ) -> None:
        # As Parlant upserts: the filter names the id, the params are the whole document.
        existing = self.existing[collection]
        identifier = data.draw(st.sampled_from(existing) if existing else IDS, label="id")
        where: dict[str, Any] = {"id": {"$eq": identifier}}
        if pin is not None:
            where["session_id"] = {"$eq": pin}
        document = self.new_document(identifier, session, fields)
        result = self.both(
            collection,
            f"update_one({where!r}, {document!r}, upsert=True)",
            lambda c: c.update_one(cast(Where, where), document, upsert=True),
        )
        if isinstance(result, UpdateResult):
            self.track(collection, added=result.updated_document)

    @rule(collection=COLLECTIONS, data=st.data())
    def delete_one(self, collection: str, data: st.DataObject) -> None:
        where = data.draw(st.composite(selector)(self.existing[collection]), label="filter")
        result = self.both(collection, f"delete_one({where!r})", lambda c: c.delete_one(where))
        if isinstance(result, DeleteResult):
            self.track(collection, removed=result.deleted_document)

    # Reads ----------------------------------------------------------------------------------

    @rule(
        collection=COLLECTIONS,
        direction=st.sampled_from([None, *SortDirection]),
        limit=st.sampled_from([None, None, None, 2]),
        data=st.data(),
    )
    def find(
        self,
        collection: str,
        direction: SortDirection | None,
        limit: int | None,
        data: st.DataObject,
    ) -> None:
        where = data.draw(st.composite(selector)(self.existing[collection]), label="filter")
        self.both(
            collection,
            f"find({where!r}, limit={limit}, sort_direction={direction})",
            lambda c: c.find(where, limit=limit, sort_direction=direction),
        )

    @rule(collection=COLLECTIONS, sort=SORTS, data=st.data())
    def find_one(self, collection: str, sort: CollectionSort | None, data: st.DataObject) -> None:
        where = data.draw(st.composite(selector)(self.existing[collection]), label="filter")
        self.both(
            collection, f"find_one({where!r}, sort={sort!r})", lambda c: c.find_one(where, sort)
        )

    @rule(collection=COLLECTIONS)
    def find_all(self, collection: str) -> None:
        self.both(collection, "find({})", lambda c: c.find({}))

    @rule(session=SESSIONS, data=st.data())
    def read_session(self, session: str, data: st.DataObject) -> None:
        # What Parlant reads most: a session's events, and an event by id.
        where = cast(Where, {"session_id": {"$eq": session}})
        self.both("events", f"find({where!r})", lambda c: c.find(where))
        existing = self.existing["events"]
        if existing:
            identifier = data.draw(st.sampled_from(existing), label="id")
            by_id = cast(Where, {"id": {"$eq": identifier}})
            self.both("events", f"find_one({by_id!r})", lambda c: c.find_one(by_id))

    # The cache's own events -----------------------------------------------------------------

    @rule(collection=COLLECTIONS, data=st.data())
    def evict(self, collection: str, data: st.DataObject) -> None:
        held = sorted(cached_partitions(self.cached[collection]), key=repr)
        if held:
            key = data.draw(st.sampled_from(held), label="partition")
            self.steps.append(f"{collection}: evict({key!r})")
            cast(Any, self.cached[collection]).evict(key)

    @invariant()
    def memory_within_budget(self) -> None:
        budget = self.cached_db.budget
        assert 0 <= budget.used <= budget.max_bytes
        # The bytes accounted are those of the documents held, nothing leaked or lost.
        assert budget.used == held_bytes(list(self.cached.values()))

    @invariant()
    def cached_partitions_hold_only_their_documents(self) -> None:
        for name, field in PARTITIONS.items():
            for key, documents in cached_partitions(self.cached[name]).items():
                if field is not None:
                    assert all(d.get(field) == key for d in documents), (name, key, documents)
                assert len({d["id"] for d in documents}) == len(documents)


@pytest.fixture(scope="module")
def database(
    loop_thread: LoopThread, emulator: SnowflakeEmulator
) -> Iterator[SnowflakeDocumentDatabase]:
    database = SnowflakeDocumentDatabase(
        RecordingLogger(), emulator.connect_kwargs(), table_prefix=new_prefix("M")
    )
    loop_thread.run(database.__aenter__())
    yield database
    loop_thread.run(database.__aexit__(None, None, None))


@pytest.mark.parametrize(
    "max_bytes",
    [
        pytest.param(1_000_000, id="roomy-budget"),
        # About three documents: partitions are evicted, the larger ones never kept.
        pytest.param(360, id="tiny-budget"),
    ],
)
def test_cached_answers_equal_direct_answers(
    loop_thread: LoopThread, database: SnowflakeDocumentDatabase, max_bytes: int
) -> None:
    machine = type(
        "CacheAgainstDatabaseRun",
        (CacheAgainstDatabase,),
        {"runner": loop_thread, "database": database, "max_bytes": max_bytes},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            # Shrinking replays whole sequences on the emulator for minutes (past the test
            # timeout); a failure reports its sequence and the last steps as they ran.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
