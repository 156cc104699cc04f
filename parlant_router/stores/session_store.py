"""Parlant's SessionDocumentStore with one lock per session instead of one for the store.

Parlant 3.3.2's ``SessionDocumentStore`` guards every method with a single
``ReaderWriterLock``: a writer (``create_event``, ``update_session``, ...) excludes every
other call on the store, so concurrent turns of *different* sessions queue behind each other
whatever the database underneath. What the lock protects is per session: ``create_event``
reads the session's latest offset and inserts the next one, ``update_session`` and the
metadata/label methods read the session and write it back. Those read-then-write sequences
only race with calls on the same session.

``ConcurrentSessionDocumentStore`` keeps Parlant's code and semantics and changes only the
locking:

- a method scoped to one session takes that session's reader-writer lock, in the mode Parlant
  used (reader or writer), so calls on one session exclude each other exactly as before and
  calls on different sessions run in parallel;
- ``create_session`` writes a session nobody can know yet, so it needs no session lock;
- ``list_sessions`` (reads across sessions) and ``delete_event`` (names an event, not its
  session) take the whole store exclusively: they wait for every call in flight and hold off
  new ones, which is at least as strict as Parlant's store-wide lock was for them.

Every session-scoped call also holds the store lock's shared side, which is what lets the
exclusive calls wait for them. Locks are always taken store first, then session, so no two
calls can wait on each other. A session's lock lives only while a call holds or waits for it.

Writes of a session document never lose another writer's change. Parlant's methods read the
session, compute the new value (the metadata with one key more, the labels with one more, the
offsets and agent states a request computed from what it read) and write it back whole; with
several writers (two requests of one process, or two processes) the later write drops the
earlier one's change. Here each such write is a *change* applied to the current document
(`durable.conditional_writes.update_with`: a guarded write, recomputed if the document moved):
`set_metadata` sets its key on whatever metadata is there, and `update_session` applies what
the caller changed relative to the session it read in the same task (`read_session`
remembers it): keys set or removed in `metadata` and `consumption_offsets`, states appended
to `agent_states`. A single writer gets exactly Parlant's result.

With ``replica_safe`` (``server.replicas: many``) an event is appended with a conditional
insert that fails if the offset is taken (`insert_unless`), and retried with the next one:
processes appending to one session never share an offset.

Each public method of the base class that takes ``self._lock`` is overridden here; the base's
lock is replaced by one that is a no-op inside those overrides. Should a future Parlant add a
locked method this class does not override, that method takes the store exclusively (correct,
only slower), and ``tests/stores`` fails until it is covered.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

import aiorwlock
from parlant.core.agents import AgentId
from parlant.core.async_utils import ReaderWriterLock
from parlant.core.common import ItemNotFoundError, JSONSerializable, UniqueId
from parlant.core.customers import CustomerId
from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
    InsertResult,
    TDocument,
)
from parlant.core.sessions import (
    Event,
    EventId,
    EventKind,
    EventSource,
    EventUpdateParams,
    Session,
    SessionDocumentStore,
    SessionId,
    SessionListing,
    SessionMode,
    SessionUpdateParams,
)
from typing_extensions import Self, override

from parlant_router.durable.conditional_writes import Change, insert_unless, update_with
from parlant_router.durable.passthrough import PassThroughCollection
from parlant_router.stores.session_listener import SessionChanges
from parlant_router.stores.session_updates import relative_update

#: Set while one of the overrides below holds the locks the base method needs.
_LOCKED_BY_OVERRIDE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "parlant_router_session_store_locked", default=False
)

#: The methods of ``SessionDocumentStore`` (Parlant 3.3.2) that take ``self._lock``, and the
#: scope this class locks them with. Tests compare it with the base class's source.
LOCK_SCOPES: Mapping[str, str] = {
    "create_session": "store (shared): the new session's id is not known to anyone yet",
    "delete_session": "session (writer)",
    "read_session": "session (reader)",
    "update_session": "session (writer)",
    "list_sessions": "store (exclusive): reads across sessions",
    "set_metadata": "session (writer)",
    "unset_metadata": "session (writer)",
    "upsert_labels": "session (writer)",
    "remove_labels": "session (writer)",
    "create_event": "session (writer)",
    "read_event": "session (reader)",
    "delete_event": "store (exclusive): the event's session is not named",
    "list_events": "session (reader)",
    "update_event": "session (writer)",
}


#: Sessions as the current task read them (`read_session`), most recent last: what the
#: values an `update_session` of the same task passes were computed from.
_READ_IN_TASK: contextvars.ContextVar[Mapping[SessionId, tuple[Session, ...]]] = (
    contextvars.ContextVar("parlant_router_sessions_read", default=MappingProxyType({}))
)
_READS_KEPT = 4
#: Appends of one event that lost the race for an offset before this gives up.
_MAX_OFFSET_CONFLICTS = 32


class OffsetConflictError(RuntimeError):
    """Another writer kept taking the offsets an event was to be appended at."""


class _OffsetTaken(Exception):
    """The offset of the event being appended was taken by another writer (retry)."""


class _OffsetClaimingEvents(PassThroughCollection[TDocument]):
    """The events collection, inserting an event only if its offset is still free."""

    async def insert_one(self, document: TDocument) -> InsertResult:
        fields = cast(Mapping[str, Any], document)
        taken: Where = {
            "$and": [
                {"session_id": {"$eq": fields["session_id"]}},
                {"offset": {"$gte": fields["offset"]}},
            ]
        }
        if not await insert_unless(self.inner, document, taken):
            raise _OffsetTaken()
        return InsertResult(acknowledged=True)


class _StoreLockStandIn(ReaderWriterLock):
    """Replaces the base class's store lock.

    Inside an override of this module the locks are already held, so it does nothing; a
    locked base method that is not overridden gets the whole store exclusively instead.
    """

    def __init__(self, exclusive: aiorwlock.RWLock) -> None:
        # The base __init__ would build an unused aiorwlock; this lock is the store's own.
        self._exclusive = exclusive

    @property
    def reader_lock(self) -> AbstractAsyncContextManager[None]:
        return self._enter()

    @property
    def writer_lock(self) -> AbstractAsyncContextManager[None]:
        return self._enter()

    @asynccontextmanager
    async def _enter(self) -> AsyncIterator[None]:
        if _LOCKED_BY_OVERRIDE.get():
            yield
            return
        async with self._exclusive.writer:
            yield


class _SessionLocks:
    """One ``aiorwlock.RWLock`` per session id, created on demand, dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[SessionId, tuple[aiorwlock.RWLock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, session_id: SessionId, *, write: bool) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id, (None, 0))
        if lock is None:
            lock = aiorwlock.RWLock()
        # Counted before waiting, so that a lock someone waits for is never dropped.
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock.writer if write else lock.reader:
                yield
        finally:
            current, users = self._locks[session_id]
            if users == 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (current, users - 1)


class ConcurrentSessionDocumentStore(SessionDocumentStore):
    """``SessionDocumentStore`` locking per session; see the module docstring.

    A drop-in: same constructor, same documents and tables, same answers.
    """

    def __init__(
        self,
        database: DocumentDatabase,
        allow_migration: bool = False,
        *,
        changes: SessionChanges | None = None,
        replica_safe: bool = False,
    ) -> None:
        super().__init__(database, allow_migration)
        self.changes = changes or SessionChanges()
        """Told of every write to a session's events, for `NotifyingSessionListener`."""
        self.replica_safe = replica_safe
        """Events are appended only at a free offset (``server.replicas: many``)."""
        self.offset_conflicts = 0
        """Appends that found their offset taken by another writer and took the next one."""
        self._store_lock = aiorwlock.RWLock()
        self._session_locks = _SessionLocks()
        self._lock = _StoreLockStandIn(self._store_lock)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self.replica_safe:
            self._event_collection = _OffsetClaimingEvents(self._event_collection, "events")
        return self

    @property
    def locked_sessions(self) -> int:
        """Sessions whose lock is held or awaited right now (the registry's size)."""
        return len(self._session_locks)

    @asynccontextmanager
    async def _session(self, session_id: SessionId, *, write: bool) -> AsyncIterator[None]:
        async with self._store_lock.reader, self._session_locks.hold(session_id, write=write):
            token = _LOCKED_BY_OVERRIDE.set(True)
            try:
                yield
            finally:
                _LOCKED_BY_OVERRIDE.reset(token)

    @asynccontextmanager
    async def _writing_events(self, session_id: SessionId) -> AsyncIterator[None]:
        """The session's writer lock; its waiters are woken once the write is over."""
        try:
            async with self._session(session_id, write=True):
                yield
        finally:
            # Also after a failed write: a waiter only re-checks, and sees what is stored.
            self.changes.changed(session_id)

    @asynccontextmanager
    async def _store(self, *, exclusive: bool) -> AsyncIterator[None]:
        async with self._store_lock.writer if exclusive else self._store_lock.reader:
            token = _LOCKED_BY_OVERRIDE.set(True)
            try:
                yield
            finally:
                _LOCKED_BY_OVERRIDE.reset(token)

    @override
    async def create_session(
        self,
        customer_id: CustomerId,
        agent_id: AgentId,
        creation_utc: datetime | None = None,
        title: str | None = None,
        mode: SessionMode | None = None,
        metadata: Mapping[str, JSONSerializable] = {},
        labels: set[str] | None = None,
    ) -> Session:
        async with self._store(exclusive=False):
            return await super().create_session(
                customer_id, agent_id, creation_utc, title, mode, metadata, labels
            )

    @override
    async def delete_session(self, session_id: SessionId) -> None:
        async with self._writing_events(session_id):
            await super().delete_session(session_id)

    @override
    async def read_session(self, session_id: SessionId) -> Session:
        async with self._session(session_id, write=False):
            session = await super().read_session(session_id)
        reads = _READ_IN_TASK.get()
        # Kept as read (serialized only if the task updates the session): reads are the
        # hot path, ~30 per turn, updates one or two.
        kept = (*reads.get(session_id, ())[1 - _READS_KEPT :], session)
        # A new mapping: the task's context holds its own, its children inherit a copy.
        _READ_IN_TASK.set({**reads, session_id: kept})
        return session

    @override
    async def update_session(self, session_id: SessionId, params: SessionUpdateParams) -> Session:
        fields = cast(Mapping[str, Any], self._serialize_session_update_params(params))
        read = [self._serialize_session(s) for s in _READ_IN_TASK.get().get(session_id, ())]
        return await self._change_session(session_id, relative_update(fields, read))

    async def _change_session(self, session_id: SessionId, change: Change) -> Session:
        """Apply `change` to the session as stored now (see the module docstring)."""
        async with self._session(session_id, write=True):
            result = await update_with(
                cast(DocumentCollection[Any], self._session_collection),
                {"id": {"$eq": session_id}},
                change,
            )
        if result.updated_document is None:
            raise ItemNotFoundError(item_id=UniqueId(session_id), message="Session not found")
        return self._deserialize_session(session_document=result.updated_document)

    @override
    async def list_sessions(
        self,
        agent_id: AgentId | None = None,
        customer_id: CustomerId | None = None,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
        labels: set[str] | None = None,
    ) -> SessionListing:
        async with self._store(exclusive=True):
            return await super().list_sessions(
                agent_id, customer_id, limit, cursor, sort_direction, labels
            )

    # As Parlant computes them, from the document as stored when the write lands.

    @override
    async def set_metadata(
        self, session_id: SessionId, key: str, value: JSONSerializable
    ) -> Session:
        return await self._change_session(
            session_id, lambda current: {"metadata": {**current["metadata"], key: value}}
        )

    @override
    async def unset_metadata(self, session_id: SessionId, key: str) -> Session:
        return await self._change_session(
            session_id,
            lambda current: {
                "metadata": {k: v for k, v in current["metadata"].items() if k != key}
            },
        )

    @override
    async def upsert_labels(self, session_id: SessionId, labels: set[str]) -> Session:
        return await self._change_session(
            session_id, lambda current: {"labels": list(set(current.get("labels", [])) | labels)}
        )

    @override
    async def remove_labels(self, session_id: SessionId, labels: set[str]) -> Session:
        return await self._change_session(
            session_id, lambda current: {"labels": list(set(current.get("labels", [])) - labels)}
        )

    @override
    async def create_event(
        self,
        session_id: SessionId,
        source: EventSource,
        kind: EventKind,
        trace_id: str,
        data: JSONSerializable,
        metadata: Mapping[str, JSONSerializable] = {},
        creation_utc: datetime | None = None,
    ) -> Event:
        async with self._writing_events(session_id):
            for _ in range(_MAX_OFFSET_CONFLICTS):
                try:
                    return await super().create_event(
                        session_id, source, kind, trace_id, data, metadata, creation_utc
                    )
                except _OffsetTaken:
                    # Another process appended meanwhile; the cache has dropped what it
                    # knew of the session's events, so the next attempt reads them again.
                    self.offset_conflicts += 1
        raise OffsetConflictError(
            f"session {session_id}: {_MAX_OFFSET_CONFLICTS} offsets in a row were taken by "
            "other writers; the event was not stored"
        )

    @override
    async def read_event(self, session_id: SessionId, event_id: EventId) -> Event:
        async with self._session(session_id, write=False):
            return await super().read_event(session_id, event_id)

    @override
    async def delete_event(self, event_id: EventId) -> None:
        async with self._store(exclusive=True):
            await super().delete_event(event_id)

    @override
    async def list_events(
        self,
        session_id: SessionId,
        source: EventSource | None = None,
        trace_id: str | None = None,
        kinds: Sequence[EventKind] = [],
        min_offset: int | None = None,
        exclude_deleted: bool = True,
    ) -> Sequence[Event]:
        async with self._session(session_id, write=False):
            return await super().list_events(
                session_id, source, trace_id, kinds, min_offset, exclude_deleted
            )

    @override
    async def update_event(
        self, session_id: SessionId, event_id: EventId, params: EventUpdateParams
    ) -> Event:
        async with self._writing_events(session_id):
            return await super().update_event(session_id, event_id, params)


__all__ = ["LOCK_SCOPES", "ConcurrentSessionDocumentStore", "OffsetConflictError"]
