"""Waiting for session events without polling the database.

Parlant's `PollingSessionListener` answers a client waiting for events (`list_events` with
`wait_for_data`, what chat front ends do) by calling `list_events` every 0.25 s, and
`read_event` every 0.1 s for streaming: a waiting client costs statements for as long as
it waits, and keeps a warehouse from ever suspending.

`NotifyingSessionListener` asks the same questions, with the same answers, but only when
something may have changed: the routed session store reports every write to a session's
events to `SessionChanges`, which wakes the waiters of that session. While nothing is
written, a waiter sends nothing.

Several processes: with `server.replicas: one` (the default) this process makes every
write, so nothing is missed. With `server.replicas: many` the change feed (one poll of the
change table per process and interval, whatever the number of waiters) reports the other
processes' writes here too, within `server.max_staleness`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import cast

from parlant.core.async_utils import Timeout
from parlant.core.sessions import (
    EventId,
    EventKind,
    EventSource,
    SessionId,
    SessionListener,
    SessionStore,
)
from typing_extensions import override

_FOREVER = Timeout.infinite()
"""Parlant's default: wait without a limit (a constant; it holds no clock reading)."""


class SessionChanges:
    """Wakes the waiters of a session when its events change (in this process)."""

    def __init__(self) -> None:
        self._waiters: dict[SessionId, set[asyncio.Event]] = {}

    @property
    def waiting_sessions(self) -> int:
        """Sessions someone waits on right now."""
        return len(self._waiters)

    def changed(self, session_id: SessionId) -> None:
        """Report a write to `session_id`'s events (or the session itself)."""
        for waiter in self._waiters.get(session_id, ()):
            waiter.set()

    def changed_all(self) -> None:
        """Report writes to sessions not named (another process's, after a missed poll)."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()

    @contextmanager
    def watch(self, session_id: SessionId) -> Iterator[asyncio.Event]:
        """An event set by the next change of `session_id` while the block runs."""
        waiter = asyncio.Event()
        self._waiters.setdefault(session_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters[session_id]
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[session_id]


class NotifyingSessionListener(SessionListener):
    """Parlant's listener semantics, re-checking only when `changes` reports a write."""

    def __init__(self, session_store: SessionStore, changes: SessionChanges) -> None:
        self._session_store = session_store
        self._changes = changes

    async def _wait_until(
        self,
        session_id: SessionId,
        timeout: Timeout,
        satisfied: Callable[[], Awaitable[bool]],
    ) -> bool:
        # Raises ItemNotFoundError for an unknown session, as Parlant's listener does.
        await self._session_store.read_session(session_id)
        while True:
            # Watch before checking: a write between the check and the wait still wakes us.
            with self._changes.watch(session_id) as changed:
                if await satisfied():
                    return True
                if timeout.expired():
                    return False
                remaining = timeout.remaining()
                # Not asyncio.wait_for: before Python 3.12 it loses a cancellation that
                # arrives as the change does, and the caller would wait on.
                waiting = asyncio.ensure_future(changed.wait())
                try:
                    await asyncio.wait(
                        {waiting}, timeout=None if math.isinf(remaining) else remaining
                    )
                finally:
                    waiting.cancel()

    @override
    async def wait_for_more_events(
        self,
        session_id: SessionId,
        kinds: Sequence[EventKind] = [],
        min_offset: int | None = None,
        source: EventSource | None = None,
        trace_id: str | None = None,
        timeout: Timeout = _FOREVER,
    ) -> bool:
        async def has_events() -> bool:
            events = await self._session_store.list_events(
                session_id, min_offset=min_offset, source=source, kinds=kinds, trace_id=trace_id
            )
            return bool(events)

        return await self._wait_until(session_id, timeout, has_events)

    async def _chunks(self, session_id: SessionId, event_id: EventId) -> list[str | None] | None:
        """The event's streaming chunks, or None for a non-streaming event."""
        event = await self._session_store.read_event(session_id, event_id)
        data = cast(dict[str, object], event.data)
        if "chunks" not in data:
            return None
        return cast(list[str | None], data["chunks"])

    @override
    async def wait_for_event_completion(
        self,
        session_id: SessionId,
        event_id: EventId,
        timeout: Timeout = _FOREVER,
    ) -> bool:
        async def completed() -> bool:
            chunks = await self._chunks(session_id, event_id)
            return chunks is None or bool(chunks and chunks[-1] is None)

        return await self._wait_until(session_id, timeout, completed)

    @override
    async def wait_for_new_streaming_chunks(
        self,
        session_id: SessionId,
        event_id: EventId,
        last_known_chunk_count: int,
        timeout: Timeout = _FOREVER,
    ) -> bool:
        async def more_chunks() -> bool:
            chunks = await self._chunks(session_id, event_id)
            if chunks is None:
                return True
            return len(chunks) > last_known_chunk_count or bool(chunks and chunks[-1] is None)

        return await self._wait_until(session_id, timeout, more_chunks)
