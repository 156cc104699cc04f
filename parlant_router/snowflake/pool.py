"""A small pool of Snowflake connections for asyncio code.

Up to ``size`` connections are opened lazily; each operation borrows one for its duration and
runs its statements in a worker thread, so independent operations proceed in parallel. A
connection that failed in a way that leaves it unusable is discarded and replaced by a fresh
one (built from freshly computed credentials) at the next borrow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any


class Lease:
    """One borrowed connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.discarded = False

    def discard(self) -> None:
        """Do not return this connection to the pool: close it instead."""
        self.discarded = True


class ConnectionPool:
    """At most ``size`` connections, created on demand by ``connect`` (called in a thread)."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        if size < 1:
            raise ValueError("pool_size must be at least 1")
        self._connect = connect
        self.size = size
        self._idle: list[Any] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        """Borrow a connection for the duration of the ``async with`` block."""
        if self._closed:
            raise RuntimeError("the Snowflake connection pool is closed")
        if self._slots is None:
            # Created here, inside the running loop that uses the pool.
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            connection = self._idle.pop() if self._idle else await asyncio.to_thread(self._connect)
            lease = Lease(connection)
            try:
                yield lease
            except BaseException:
                if not lease.discarded and _unusable(connection):
                    lease.discard()
                raise
            finally:
                if lease.discarded or self._closed or _unusable(connection):
                    await asyncio.to_thread(_close_quietly, connection)
                else:
                    self._idle.append(connection)

    async def close(self) -> None:
        """Close every idle connection; borrowed ones are closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await asyncio.to_thread(_close_quietly, connection)


def _unusable(connection: Any) -> bool:
    # `expired` is set by the connector when the master token expired (390114).
    if getattr(connection, "expired", False):
        return True
    is_closed = getattr(connection, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.close()


__all__ = ["ConnectionPool", "Lease"]
