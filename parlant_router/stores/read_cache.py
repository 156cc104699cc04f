"""A per-process read cache under a store's DocumentDatabase.

Parlant's stores read the same documents many times per turn (the session ~30 times, its
events ~30, the agent, its tags, guideline associations, ...). On a warehouse each read is
a round trip. `CachedDocumentDatabase` keeps what was read and answers repeated reads in
memory, with the database's own semantics (`document_query`).

What is cached, per collection (the store catalog's `cache_partitions`):

- a *partition field* (`session_id` for events, `id` for sessions and customers, `key` for
  context-variable values): the cache holds every document of a partition value, loaded
  by one query the first time a query pins that value with `$eq` (`{"session_id": {"$eq":
  s}, ...}`, also inside `$and`, or in every branch of an `$or`). Afterwards every query
  pinned to it, and a `find_one` by an `id` the cache holds, is answered in memory;
- no partition field (agents, tags, guidelines, journeys, ...: collections that grow with
  configuration, not traffic): the whole collection is one partition;
- collections not named are not cached; neither are paged `find`s (limit or cursor).

Writes go to the database first; only an acknowledged write changes the cache, from the
document the database returned. A write that fails (or is cancelled) may or may not have
reached the database, so the partitions it could have touched are dropped and read again
next time: the cache never holds a value the database does not have. A load that overlaps
a write to its partition is used for that one read but not kept.

Memory is bounded by bytes per database (the JSON size of the documents held), with the
least recently used partitions evicted first; a partition larger than the bound is never
kept.

Several processes: the cache is exact while this process is the only writer of the
store's tables (`server.replicas: one`, the default). With `server.replicas: many` every
cached write is also reported to `observer` (`record(collection, partition)`), which
publishes it to the other processes (the Snowflake change feed), and `drop(collection,
partition)` forgets what another process wrote: reads are then at most the feed's staleness
bound behind the other processes' writes. A process killed between a write and its next
publication leaves that write unannounced; `max_age` bounds how long a partition is served
without being read again, and so how stale such a write can leave the others.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import (
    CollectionSort,
    DeleteResult,
    DocumentCollection,
    DocumentDatabase,
    FindResult,
    InsertResult,
    TDocument,
    UpdateResult,
)

from parlant_router.durable.conditional_writes import Change, insert_unless, update_with
from parlant_router.durable.passthrough import PassThroughCollection, PassThroughDocumentDatabase
from parlant_router.stores.document_query import (
    Document,
    compile_filter,
    first_by,
    in_find_order,
)

_WHOLE = ("whole collection",)
"""The partition key of a collection cached whole."""


@dataclass
class CacheStats:
    """What the cache did, for benchmarks, logs and tests."""

    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    loads: int = 0
    evictions: int = 0
    invalidations: int = 0


_DOCUMENT_OVERHEAD = 200
"""Bytes a kept document costs besides its text: its slots in two dicts and its id."""
PARTITION_COST = 600
"""Bytes a kept partition is charged besides its documents (an empty one is not free)."""


@dataclass
class _Partition:
    documents: dict[str, str] = field(default_factory=dict)
    """JSON text by id, in insertion order: compact, and every read parses a copy."""
    size: int = PARTITION_COST
    loaded_at: float = field(default_factory=time.monotonic)


def _text(document: Mapping[str, Any]) -> str:
    # As the adapters serialize documents: what a fresh read of the database returns.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _size(text: str) -> int:
    return sys.getsizeof(text) + _DOCUMENT_OVERHEAD


def document_cost(document: Mapping[str, Any]) -> int:
    """Bytes a kept document is charged against the budget: the memory of its JSON text
    (which is how it is kept) plus its share of the cache's indexes."""
    return _size(_text(document))


class CacheBudget:
    """The byte bound shared by every cached collection of one database (LRU eviction)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._entries: OrderedDict[tuple[CachedCollection[Any], Hashable], int] = OrderedDict()
        self.stats = CacheStats()

    def touch(self, owner: CachedCollection[Any], key: Hashable) -> None:
        if (owner, key) in self._entries:
            self._entries.move_to_end((owner, key))

    def resize(self, owner: CachedCollection[Any], key: Hashable, size: int) -> bool:
        """Account `size` bytes for a partition; False (and nothing kept) if it cannot fit."""
        self.forget(owner, key)
        if size > self.max_bytes:
            return False
        self._entries[(owner, key)] = size
        self.used += size
        while self.used > self.max_bytes:
            (victim, victim_key), _ = next(iter(self._entries.items()))
            victim.evict(victim_key)
            self.stats.evictions += 1
        return True

    def forget(self, owner: CachedCollection[Any], key: Hashable) -> None:
        size = self._entries.pop((owner, key), None)
        if size is not None:
            self.used -= size


class WriteObserver(Protocol):
    """Told of every write to a cached collection (for other processes' caches)."""

    def record(self, collection: str, partition: str | None) -> None:
        """`partition` of `collection` was written (None: any of it)."""


class CachedDocumentDatabase(PassThroughDocumentDatabase):
    """`inner` with the collections named in `partitions` cached (see the module docstring)."""

    def __init__(
        self,
        inner: DocumentDatabase,
        *,
        partitions: Mapping[str, str | None],
        max_bytes: int,
        observer: WriteObserver | None = None,
        max_age: float | None = None,
    ) -> None:
        super().__init__(inner)
        self._partitions = dict(partitions)
        self.budget = CacheBudget(max_bytes)
        self._observer = observer
        self._max_age = max_age
        """Seconds after which a partition is read again whatever the feed said (None: never)."""
        self._collections: dict[str, CachedCollection[Any]] = {}

    def drop(self, collection: str, partition: str | None) -> None:
        """Forget `partition` of `collection` (None: all of it): another process wrote it."""
        cached = self._collections.get(collection)
        if cached is not None:
            cached.drop(partition)

    @property
    def stats(self) -> CacheStats:
        return self.budget.stats

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        if name not in self._partitions:
            return collection
        cached = CachedCollection(
            collection, name, self._partitions[name], self.budget, self._observer, self._max_age
        )
        self._collections[name] = cached
        return cached


class CachedCollection(PassThroughCollection[TDocument]):
    """One cached collection: partitions by `partition_field` (None: the whole collection)."""

    def __init__(
        self,
        inner: DocumentCollection[TDocument],
        name: str,
        partition_field: str | None,
        budget: CacheBudget,
        observer: WriteObserver | None = None,
        max_age: float | None = None,
    ) -> None:
        super().__init__(inner, name)
        self.partition_field = partition_field
        self._budget = budget
        self._observer = observer
        self._max_age = max_age
        self._partitions: dict[Hashable, _Partition] = {}
        self._partition_of_id: dict[str, Hashable] = {}
        self._loading: dict[Hashable, asyncio.Future[_Partition | None]] = {}
        self._dirty: set[Hashable] = set()
        """Partitions written while their load was in flight: that load is not kept."""

    # Keys -------------------------------------------------------------------------------

    def _pinned(self, where: Where) -> Hashable | None:
        """The partition every document matching `where` belongs to, if `where` says."""
        if self.partition_field is None:
            return _WHOLE
        return _pinned_value(where, self.partition_field)

    def _key_of(self, document: Mapping[str, Any]) -> Hashable:
        if self.partition_field is None:
            return _WHOLE
        return _hashable(document.get(self.partition_field))

    # Partitions -------------------------------------------------------------------------

    async def _partition(self, key: Hashable) -> _Partition | None:
        partition = self._partitions.get(key)
        if (
            partition is not None
            and self._max_age is not None
            and time.monotonic() - partition.loaded_at > self._max_age
        ):
            self.evict(key)
            partition = None
        if partition is not None:
            self._budget.stats.hits += 1
            self._budget.touch(self, key)
            return partition
        self._budget.stats.misses += 1
        pending = self._loading.get(key)
        if pending is not None:
            # Written while that load was in flight: its answer may predate the write, which
            # this read must see. Let it finish (it is not kept), then read again.
            again = key in self._dirty
            try:
                loaded = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.done():
                    raise  # this read was cancelled
                again = True  # the read that started the load was, not this one
            except Exception:
                if not again:
                    raise
            return await self._partition(key) if again else loaded
        future: asyncio.Future[_Partition | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            loaded = await self._load(key)
        except BaseException as error:
            future.set_exception(error)
            # Nobody else may be awaiting it: mark the exception retrieved.
            future.exception()
            raise
        finally:
            del self._loading[key]
            self._dirty.discard(key)
        future.set_result(loaded)
        return loaded

    async def _load(self, key: Hashable) -> _Partition | None:
        where = {} if key == _WHOLE else {str(self.partition_field): {"$eq": key}}
        self._budget.stats.loads += 1
        result = await self.inner.find(cast(Where, where))
        partition = _Partition()
        try:
            for document in result.items:
                text = _text(document)
                partition.documents[str(document.get("id"))] = text
                partition.size += _size(text)
        except (TypeError, ValueError):
            return None  # not JSON (a custom backend's types): its reads go to the database
        if key in self._dirty:
            return partition  # answers this read; a write overlapped it, so it is not kept
        if self._budget.resize(self, key, partition.size):
            self._partitions[key] = partition
            for document_id in partition.documents:
                self._partition_of_id[document_id] = key
        return partition

    def evict(self, key: Hashable) -> None:
        """Drop a partition (called by the budget; the next read loads it again)."""
        partition = self._partitions.pop(key, None)
        self._budget.forget(self, key)
        if partition is not None:
            for document_id in partition.documents:
                if self._partition_of_id.get(document_id) == key:
                    del self._partition_of_id[document_id]

    def _invalidate(self, key: Hashable | None) -> None:
        """A write of unknown outcome: drop what it may have touched (None: everything)."""
        self._budget.stats.invalidations += 1
        keys = list(self._partitions) if key is None else [key]
        for each in keys:
            self.evict(each)
        self._dirty.update(
            k for k in (self._loading if key is None else [key]) if k in self._loading
        )

    def drop(self, partition: str | None) -> None:
        """Forget what another process wrote: `partition` (None: the whole collection)."""
        self._invalidate(_WHOLE if self.partition_field is None else partition)

    def _observe(self, *keys: Hashable | None) -> None:
        """Report a write of `keys` (None: unknown) to the observer, if any."""
        if self._observer is None:
            return
        for key in set(keys):
            partition = key if isinstance(key, str) else None
            self._observer.record(self.name, partition)

    def _written(self, key: Hashable) -> None:
        if key in self._loading:
            self._dirty.add(key)

    def _store(self, document: Mapping[str, Any]) -> None:
        key = self._key_of(document)
        self._written(key)
        partition = self._partitions.get(key)
        if partition is None:
            return
        document_id = str(document.get("id"))
        self._discard(document_id)
        try:
            # Text of its own: the caller keeps (and may change) the document it passed in.
            text = _text(document)
        except (TypeError, ValueError):
            self.evict(key)  # not JSON (a custom backend's types): leave it to the database
            return
        partition.documents[document_id] = text
        partition.size += _size(text)
        self._partition_of_id[document_id] = key
        if not self._budget.resize(self, key, partition.size):
            self.evict(key)

    def _discard(self, document_id: str) -> None:
        key = self._partition_of_id.pop(document_id, None)
        if key is None:
            return
        self._written(key)
        partition = self._partitions.get(key)
        if partition is not None and document_id in partition.documents:
            partition.size -= _size(partition.documents.pop(document_id))
            self._budget.resize(self, key, partition.size)

    # Reads ------------------------------------------------------------------------------

    async def _cached_candidates(self, where: Where) -> list[Document] | None:
        """The documents `where` can match, from the cache; None if it cannot say."""
        key = self._pinned(where)
        if key is None:
            document_id = _pinned_value(where, "id")
            key = self._partition_of_id.get(str(document_id)) if document_id else None
            if key is None:
                return None
        partition = await self._partition(key)
        if partition is None:
            return None
        # Parsed afresh: callers get documents of their own, nested values included.
        return [json.loads(text) for text in partition.documents.values()]

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        predicate = compile_filter(filters)
        if predicate is None or limit is not None or cursor is not None:
            self._budget.stats.bypassed += 1
            return await self.inner.find(filters, limit, cursor, sort_direction)
        candidates = await self._cached_candidates(filters)
        if candidates is None:
            self._budget.stats.bypassed += 1
            return await self.inner.find(filters, limit, cursor, sort_direction)
        items = in_find_order([d for d in candidates if predicate(d)])
        if sort_direction == SortDirection.DESC:
            items.reverse()
        return FindResult(
            items=cast(list[TDocument], items),
            total_count=len(items),
            has_more=False,
            next_cursor=None,
        )

    async def find_one(
        self, filters: Where, sort: CollectionSort | None = None
    ) -> TDocument | None:
        predicate = compile_filter(filters)
        candidates = None if predicate is None else await self._cached_candidates(filters)
        if predicate is None or candidates is None:
            self._budget.stats.bypassed += 1
            return await self.inner.find_one(filters, sort)
        found = first_by([d for d in candidates if predicate(d)], sort)
        return cast(TDocument | None, found)

    # Writes -----------------------------------------------------------------------------
    # Each reports what it touched to the observer, also when it failed: a write of unknown
    # outcome may have reached the database.

    async def insert_one(self, document: TDocument) -> InsertResult:
        key = self._key_of(document)
        try:
            result = await self.inner.insert_one(document)
        except BaseException:
            self._invalidate(key)
            raise
        finally:
            self._observe(key)
        if result.acknowledged:
            self._store(document)
        return result

    async def insert_unless(self, document: TDocument, conflict: Where) -> bool:
        key = self._key_of(document)
        try:
            inserted = await insert_unless(self.inner, document, conflict)
        except BaseException:
            self._invalidate(key)
            self._observe(key)
            raise
        if inserted:
            self._store(document)
            self._observe(key)
        else:
            # What this cache said was free is taken: another process wrote it.
            self._invalidate(self._pinned(conflict))
        return inserted

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        moves = self.partition_field is not None and self.partition_field in params
        try:
            result = await self.inner.update_one(filters, params, upsert)
        except BaseException:
            self._invalidate(self._pinned(filters))
            if moves:
                # It may have moved (or upserted) a document into another partition.
                self._invalidate(self._key_of(params))
            self._observe(self._pinned(filters), self._key_of(params) if moves else None)
            raise
        self._updated(filters, result, renames="id" in params, moves=moves)
        return result

    async def update_with(self, filters: Where, change: Change) -> UpdateResult[TDocument]:
        try:
            result = await update_with(self.inner, filters, change)
        except BaseException:
            # The change is a function: which fields it set, and where to, is unknown.
            self._invalidate(self._pinned(filters))
            self._observe(self._pinned(filters))
            raise
        self._updated(filters, result, renames=True, moves=self.partition_field is not None)
        return result

    def _updated(
        self, filters: Where, result: UpdateResult[TDocument], *, renames: bool, moves: bool
    ) -> None:
        """Keep the document an acknowledged update returned (`renames`: it may have changed
        its id; `moves`: its partition)."""
        updated = result.updated_document
        if updated is None:
            return  # nothing matched: nothing written
        document_id = str(updated.get("id"))
        if result.matched_count and renames:
            renamed_from = _pinned_value(filters, "id")
            if renamed_from is None or renamed_from != document_id:
                # The document may have had another id, which the result does not say:
                # drop what held it (the filter's partition, or every one).
                self._invalidate(self._pinned(filters))
        if moves and document_id not in self._partition_of_id:
            # It may have left a partition whose load is in flight: that load is not kept.
            self._dirty.update(self._loading)
        self._observe(self._partition_of_id.get(document_id), self._key_of(updated))
        self._discard(document_id)
        self._store(updated)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        try:
            result = await self.inner.delete_one(filters)
        except BaseException:
            self._invalidate(self._pinned(filters))
            self._observe(self._pinned(filters))
            raise
        if result.deleted_document is not None:
            deleted = result.deleted_document
            self._written(self._key_of(deleted))
            self._discard(str(deleted.get("id")))
            self._observe(self._key_of(deleted))
        return result


def _hashable(value: Any) -> Hashable:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _pinned_value(where: Where, field_name: str) -> Any | None:
    """The value `where` requires `field_name` to equal (`$eq` on a string), else None."""
    if not isinstance(where, Mapping) or not where:
        return None
    first = next(iter(where))
    if first == "$and":
        for operand in cast(Sequence[Where], where.get("$and", ())):
            value = _pinned_value(operand, field_name)
            if value is not None:
                return value
        return None
    if first == "$or":
        branches = cast(Sequence[Where], where.get("$or", ()))
        values = {_pinned_value(branch, field_name) for branch in branches}
        if len(values) == 1 and len(where) == 1:
            return values.pop()
        return None
    condition = where.get(field_name)
    value = condition.get("$eq") if isinstance(condition, Mapping) else condition
    # Only strings: a number would also pin booleans and floats equal to it.
    return value if isinstance(value, str) else None
