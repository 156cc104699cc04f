"""A small pool of Snowflake connections for asyncio code.

Up to ``size`` connections are opened lazily; each operation borrows one for its duration and
runs its statements in a worker thread, so independent operations proceed in parallel. A
connection that failed in a way that leaves it unusable is discarded and replaced by a fresh
one (built from freshly computed credentials) at the next borrow.

An operation waits at most ``wait_timeout`` seconds for a free connection. A borrower
cancelled while its connection is being opened does not leak it: the connection joins the
idle ones when it arrives (or is closed, when the pool is closed or full by then).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from parlant_router.snowflake.errors import (
    ConnectionWaitTimeout,
    DatabaseClosedError,
    SnowflakeConfigurationError,
)


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

    def __init__(self, connect: Callable[[], Any], size: int, wait_timeout: float = 30.0) -> None:
        if size < 1:
            raise SnowflakeConfigurationError("pool_size must be at least 1")
        if not wait_timeout > 0:
            raise SnowflakeConfigurationError("connection_wait_timeout must be positive")
        self._connect = connect
        self.size = size
        self.wait_timeout = wait_timeout
        self._idle: list[Any] = []
        #: Connections open now: idle, borrowed, or opened for a borrower that was cancelled.
        self._open = 0
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    @contextlib.asynccontextmanager
    async def lease(self, purpose: str) -> AsyncIterator[Lease]:
        """Borrow a connection for the duration of the ``async with`` block.

        ``purpose`` ("find on PARLANT_SESSIONS") starts the message of the
        ``DatabaseClosedError`` or ``ConnectionWaitTimeout`` raised when none can be had.
        """
        self._check_open(purpose)
        if self._slots is None:
            # Created here, inside the running loop that uses the pool.
            self._slots = asyncio.Semaphore(self.size)
        await self._take_slot(self._slots, purpose)
        try:
            # The pool may have been closed while this borrower waited.
            self._check_open(purpose)
            connection = self._idle.pop() if self._idle else await self._open_connection()
            lease = Lease(connection)
            try:
                # Or while its connection was being opened.
                self._check_open(purpose)
                yield lease
            except BaseException:
                if not lease.discarded and _unusable(connection):
                    lease.discard()
                raise
            finally:
                # Over size after adopting a cancelled borrower's connection: shrink back.
                if (
                    lease.discarded
                    or self._closed
                    or _unusable(connection)
                    or self._open > self.size
                ):
                    await self._close(connection)
                else:
                    self._idle.append(connection)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Close every idle connection; borrowed ones are closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._close(connection)

    async def _take_slot(self, slots: asyncio.Semaphore, purpose: str) -> None:
        """Take one of `slots` within the wait timeout, or raise ConnectionWaitTimeout.

        Not `asyncio.wait_for`: before Python 3.12 it swallows a cancellation that arrives as
        the slot is granted, and a server told to stop during startup then went on serving.
        """
        if not slots.locked():
            await slots.acquire()  # free: granted without suspending
            return
        taking = asyncio.ensure_future(slots.acquire())
        try:
            done, _ = await asyncio.wait({taking}, timeout=self.wait_timeout)
        except BaseException:
            _give_up(taking, slots)
            raise
        if not done:
            _give_up(taking, slots)
            raise ConnectionWaitTimeout(
                f"{purpose}: no connection free within {self.wait_timeout:g} s "
                f"(pool_size {self.size}, all busy)"
            )
        taking.result()

    def _check_open(self, purpose: str) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{purpose}: the Snowflake database is closed")

    async def _open_connection(self) -> Any:
        future = asyncio.get_running_loop().run_in_executor(None, self._connect)
        try:
            connection = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The login goes on in its thread: keep (or close) what it opens.
            future.add_done_callback(self._adopt)
            raise
        self._open += 1
        return connection

    def _adopt(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        connection = future.result()
        if self._closed or self._open >= self.size:
            # Closed, or no room: other borrowers opened connections in the meantime.
            asyncio.get_running_loop().run_in_executor(None, _close_quietly, connection)
        else:
            self._open += 1
            self._idle.append(connection)

    async def _close(self, connection: Any) -> None:
        # Counted first: a borrower cancelled during the close must not leave it counted.
        self._open -= 1
        await asyncio.to_thread(_close_quietly, connection)


def _give_up(taking: asyncio.Future[Any], slots: asyncio.Semaphore) -> None:
    """Stop waiting for a slot; one granted all the same is given back."""
    taking.cancel()

    def give_back(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            slots.release()

    taking.add_done_callback(give_back)


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
