"""Runs one database operation: borrow a connection, run its statements in a worker thread,
retry transient failures, count every statement sent, and name the operation and table in
any error.

An operation is a plain function of a ``Statements`` object; it must be safe to run again
after a failure at any point (the collection's operations are written that way: they check
what a lost attempt may already have done).
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
from parlant_router.snowflake.pool import ConnectionPool
from parlant_router.snowflake.retry import Recovery, RetryPolicy, recovery_for

T = TypeVar("T")


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

    def _run(self, sql: str, params: Sequence[Any] | None) -> Any:
        cursor = self._connection.cursor()
        self._counter.increment()
        try:
            cursor.execute(sql, list(params) if params else None)
        except BaseException:
            with contextlib.suppress(Exception):
                cursor.close()
            raise
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
        # default executor.
        self._executor = ThreadPoolExecutor(
            max_workers=pool.size, thread_name_prefix="snowflake-statements"
        )

    async def run(self, operation: str, table: str, work: Callable[[Statements], T]) -> T:
        """Run ``work`` with retries; errors become ``SnowflakeOperationError``."""
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
                    return await self._attempt(work, attempt.retry_state.attempt_number)
        except SnowflakeBackendError:
            raise
        except Exception as error:
            if _is_connector_error(error) or recovery_for(error) is not Recovery.FAIL:
                raise SnowflakeOperationError(
                    f"{operation} on {table} failed: {describe_error(error)}"
                ) from error
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(self, work: Callable[[Statements], T], attempt: int) -> T:
        loop = asyncio.get_running_loop()
        async with self._pool.lease() as lease:
            future = loop.run_in_executor(
                self._executor, work, Statements(lease.connection, self.counter, attempt)
            )
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # The thread still uses the connection: wait for it before giving it back,
                # and do not trust its state afterwards.
                lease.discard()
                with contextlib.suppress(BaseException):
                    await future
                raise
            except Exception as error:
                if recovery_for(error) is Recovery.RECONNECT:
                    lease.discard()
                raise

    def _log_retry(self, operation: str, table: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._logger.warning(
            f"Snowflake {operation} on {table}: attempt {state.attempt_number} failed "
            f"({describe_error(error) if error else 'unknown error'}); retrying in {delay:.2f}s"
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False)


def _is_connector_error(error: BaseException) -> bool:
    try:
        from snowflake.connector.errors import Error
    except ImportError:  # pragma: no cover - the connector is a dependency
        return False
    return isinstance(error, Error)


def describe_error(error: BaseException) -> str:
    """One line about ``error``: its Snowflake code and message, shortened."""
    return describe_exception(error, limit=240)


__all__ = ["StatementCounter", "StatementRunner", "Statements", "describe_error"]
