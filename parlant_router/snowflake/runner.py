"""Runs one database operation: borrow a connection, run its statements in a worker thread,
retry transient failures, count every statement sent, and name the operation and table in
any error.

An operation is a plain function of a ``Statements`` object; it must be safe to run again
after a failure at any point (the collection's operations are written that way: they check
what a lost attempt may already have done).

Cancelling an operation (``asyncio.wait_for``, a cancelled task) cancels its statement on the
server, as the connector does on a query timeout, waits briefly for its thread, closes its
connection (its state is unknown) and only then lets ``CancelledError`` through.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from parlant.core.loggers import Logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from parlant_router.errors import describe_exception
from parlant_router.snowflake.errors import SnowflakeBackendError, SnowflakeOperationError
from parlant_router.snowflake.pool import ConnectionPool, Lease
from parlant_router.snowflake.retry import Recovery, RetryPolicy, recovery_for

T = TypeVar("T")

#: How long a cancelled operation waits for its thread after cancelling its statement.
CANCEL_GRACE_SECONDS = 1.0


class StatementCounter:
    """A thread-safe count of statements sent to Snowflake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    def increment(self) -> None:
        with self._lock:
            self._value += 1


class Statements:
    """The borrowed connection as an operation sees it: every call is one statement.

    ``params`` are the statement's values, bound server-side by position (``:1`` is
    ``params[0]``): the connection is opened in the ``numeric`` paramstyle (see ``sql.py``).
    """

    def __init__(self, connection: Any, counter: StatementCounter, attempt: int) -> None:
        self._connection = connection
        self._counter = counter
        #: 1 on the first try; higher when retrying after a failure.
        self.attempt = attempt
        self._lock = threading.Lock()
        #: The statement being sent: its text and its cursor.
        self._running: tuple[str, Any] | None = None
        self._cancelled = False

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a statement; return the number of rows it affected."""
        cursor = self._run(sql, params)
        try:
            return int(cursor.rowcount or 0)
        finally:
            cursor.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query; return all its rows."""
        cursor = self._run(sql, params)
        try:
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def cancel(self) -> None:
        """From another thread: start no further statement, and cancel the running one on the
        server (its ``execute`` then fails). Failures to reach the server are ignored: the
        caller closes the connection anyway."""
        with self._lock:
            self._cancelled = True
            running = self._running
        if running is None:
            return
        sql, cursor = running
        # What the connector's query timeout does: an abort-request naming the request id the
        # cursor sent the statement with. Both are private to the connector (stable across
        # the versions we accept; the emulator tests exercise them). No id yet: the statement
        # is not sent yet either, and it then runs; the caller closes the connection anyway.
        request_id = getattr(cursor, "_request_id", None)
        if request_id is not None:
            with contextlib.suppress(Exception):
                self._connection._cancel_query(sql, request_id)

    def _run(self, sql: str, params: Sequence[Any] | None) -> Any:
        cursor = self._connection.cursor()
        with self._lock:
            cancelled = self._cancelled
            self._running = None if cancelled else (sql, cursor)
        if cancelled:
            cursor.close()
            raise SnowflakeOperationError("the operation was cancelled")
        self._counter.increment()
        try:
            cursor.execute(sql, list(params) if params else None)
        except BaseException:
            with contextlib.suppress(Exception):
                cursor.close()
            raise
        finally:
            with self._lock:
                self._running = None
        return cursor


class StatementRunner:
    """Runs operations on a connection pool with a retry policy."""

    def __init__(
        self,
        pool: ConnectionPool,
        policy: RetryPolicy,
        logger: Logger,
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._logger = logger
        self.counter = StatementCounter()
        # Our own threads: parallelism up to the pool size, whatever else uses the loop's
        # default executor; twice that, so threads of cancelled operations still ending
        # (their connections already given up) do not hold back the next operations.
        self._executor = ThreadPoolExecutor(
            max_workers=2 * pool.size, thread_name_prefix="snowflake-statements"
        )

    async def run(self, operation: str, table: str, work: Callable[[Statements], T]) -> T:
        """Run ``work`` with retries; errors become ``SnowflakeOperationError``.

        Waiting for a free connection fails with ``ConnectionWaitTimeout`` after the pool's
        wait timeout, and is not retried; on a closed database, ``DatabaseClosedError``.
        """
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.attempts),
            wait=wait_exponential(multiplier=self._policy.initial_delay, max=self._policy.max_delay)
            + wait_random(0, self._policy.jitter),
            retry=retry_if_exception(lambda error: recovery_for(error) is not Recovery.FAIL),
            before_sleep=lambda state: self._log_retry(operation, table, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(
                        f"{operation} on {table}", work, attempt.retry_state.attempt_number
                    )
        except SnowflakeBackendError:
            raise
        except Exception as error:
            # Connector errors, and whatever else the work raised (a row that is not JSON,
            # a type the connector cannot bind): callers see the adapter's one error type.
            raise SnowflakeOperationError(
                f"{operation} on {table} failed: {describe_error(error)}"
            ) from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(self, purpose: str, work: Callable[[Statements], T], attempt: int) -> T:
        loop = asyncio.get_running_loop()
        async with self._pool.lease(purpose) as lease:
            statements = Statements(lease.connection, self.counter, attempt)
            future = loop.run_in_executor(self._executor, work, statements)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                await self._abandon(purpose, lease, statements, future)
                raise
            except Exception as error:
                if recovery_for(error) is Recovery.RECONNECT:
                    lease.discard()
                raise

    async def _abandon(
        self, purpose: str, lease: Lease, statements: Statements, future: asyncio.Future[Any]
    ) -> None:
        """Cancel the statement of a cancelled operation and give its connection up."""
        # Whatever happens next, the connection is closed: a statement may have been
        # interrupted half-way, in a transaction or not.
        lease.discard()
        # Its outcome is of no use now; retrieved so asyncio does not log it as lost.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        # The abort is an HTTP request, sent from a thread of its own: a daemon, because with
        # Snowflake unreachable the connector may retry it for as long as network_timeout
        # allows (no bound by default), which must not hold up the process's exit.
        threading.Thread(target=statements.cancel, name="snowflake-cancel", daemon=True).start()
        done, _ = await asyncio.wait({future}, timeout=CANCEL_GRACE_SECONDS)
        if not done:
            self._logger.warning(
                f"Snowflake {purpose}: cancelled; its statement did not stop within "
                f"{CANCEL_GRACE_SECONDS:g} s, closing its connection"
            )

    def _log_retry(self, operation: str, table: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._logger.warning(
            f"Snowflake {operation} on {table}: attempt {state.attempt_number} failed "
            f"({describe_error(error) if error else 'unknown error'}); retrying in {delay:.2f}s"
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False)


def describe_error(error: BaseException) -> str:
    """One line about ``error``: its Snowflake code and message, shortened."""
    return describe_exception(error, limit=240)


__all__ = ["StatementCounter", "StatementRunner", "Statements", "describe_error"]
