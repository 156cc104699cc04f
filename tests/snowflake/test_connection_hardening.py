"""The connection pool under cancellation, contention and shutdown: a connection opened for a
cancelled borrower is kept or closed, a cancelled operation cancels its statement on the
server, waiting for a connection is bounded, a closed database fails with the adapter's own
error. Everything runs through the real connector against the emulator."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import pytest
import snowflake.connector
from parlant.core.persistence.document_database import BaseDocument
from snowflake.connector.errors import ProgrammingError

from parlant_router.snowflake import (
    SnowflakeBackendError,
    SnowflakeConfigurationError,
    SnowflakeDocumentDatabase,
    SnowflakeOperationError,
)
from parlant_router.snowflake.errors import ConnectionWaitTimeout, DatabaseClosedError
from parlant_router.snowflake.pool import ConnectionPool

if TYPE_CHECKING:
    from parlant_router.snowflake.runner import Statements
    from tests.support.logger import RecordingLogger

#: Counts 10^11 rows of a cross join: 3 s to 20 s on the emulator, depending on the machine
#: and its load; every test below that runs it ends it within about a second.
SLOW = (
    "SELECT COUNT(*) FROM TABLE(GENERATOR(ROWCOUNT => 1000000)) A, "
    "TABLE(GENERATOR(ROWCOUNT => 100000)) B"
)
#: Far below what SLOW takes, far above what a cancellation should.
PROMPTLY = 2.5


class Connections:
    """A ``connection_factory`` of real connections that counts opens and closes, can hold a
    connect until released, and records every statement and the error it ended with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.opened = 0
        self.closed = 0
        self.statements: list[str] = []
        self.errors: list[BaseException] = []
        #: Set when a connect starts; a connect waits for ``release_connect`` when held.
        self.connecting = threading.Event()
        self.release_connect = threading.Event()
        self.release_connect.set()

    def __call__(self, params: Mapping[str, Any]) -> _Connection:
        self.connecting.set()
        self.release_connect.wait(30)
        connection = snowflake.connector.connect(**params)
        with self._lock:
            self.opened += 1
        return _Connection(connection, self)

    @property
    def open(self) -> int:
        with self._lock:
            return self.opened - self.closed


class _Connection:
    def __init__(self, connection: Any, log: Connections) -> None:
        self._connection = connection
        self._log = log

    def cursor(self) -> _Cursor:
        return _Cursor(self._connection.cursor(), self._log)

    def close(self) -> None:
        if not self._connection.is_closed():
            with self._log._lock:
                self._log.closed += 1
        self._connection.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _Cursor:
    def __init__(self, cursor: Any, log: Connections) -> None:
        self._cursor = cursor
        self._log = log

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._log.statements.append(sql)
        try:
            return self._cursor.execute(sql, *args, **kwargs)
        except BaseException as error:
            self._log.errors.append(error)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def database(
    connection_params: dict[str, Any],
    table_prefix: str,
    logger: RecordingLogger,
    connections: Connections,
    **options: Any,
) -> SnowflakeDocumentDatabase:
    return SnowflakeDocumentDatabase(
        logger,
        connection_params,
        table_prefix=table_prefix,
        connection_factory=connections,
        **options,
    )


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.01)


def select_one(statements: Statements) -> list[tuple[Any, ...]]:
    return statements.query("SELECT 1")


# 1. A borrower cancelled while its connection is opened --------------------------------------


async def test_a_connection_opened_for_a_cancelled_borrower_is_pooled_not_leaked(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    connections = Connections()
    connections.release_connect.clear()
    db = database(connection_params, table_prefix, logger, connections, pool_size=1)
    try:
        borrower = asyncio.create_task(db.run("probe", "T", select_one))
        await asyncio.to_thread(connections.connecting.wait, 30)
        borrower.cancel()
        with pytest.raises(asyncio.CancelledError):
            await borrower
        connections.release_connect.set()
        await eventually(lambda: connections.opened == 1)

        # The next operation is served by that connection: none other is opened.
        assert await db.run("probe", "T", select_one) == [(1,)]
        assert connections.opened == 1
    finally:
        await db.__aexit__(None, None, None)
    assert (connections.opened, connections.closed) == (1, 1)


async def test_a_connection_opened_for_a_cancelled_borrower_after_close_is_closed(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    connections = Connections()
    connections.release_connect.clear()
    db = database(connection_params, table_prefix, logger, connections, pool_size=1)
    borrower = asyncio.create_task(db.run("probe", "T", select_one))
    await asyncio.to_thread(connections.connecting.wait, 30)
    borrower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await borrower
    await db.__aexit__(None, None, None)
    connections.release_connect.set()
    await eventually(lambda: connections.opened == 1 and connections.open == 0)


# 2. A cancelled operation cancels its statement -----------------------------------------------


async def test_the_emulator_aborts_a_statement_as_the_connector_asks(
    connection_params: dict[str, Any],
) -> None:
    """The connector's own statement timeout posts an abort-request; the emulator honours it."""
    connection = await asyncio.to_thread(snowflake.connector.connect, **connection_params)
    try:
        started = time.monotonic()
        with pytest.raises(ProgrammingError) as raised:
            await asyncio.to_thread(connection.cursor().execute, SLOW, timeout=1)
        assert time.monotonic() - started < 1 + PROMPTLY
        assert raised.value.errno == 604
        assert "SQL execution canceled" in str(raised.value)
        # The session is usable afterwards: the interrupt ended with the statement.
        cursor = connection.cursor()
        cursor.execute("SELECT 2")
        assert cursor.fetchall() == [(2,)]
    finally:
        await asyncio.to_thread(connection.close)


async def test_a_timed_out_operation_cancels_its_statement_and_gives_up_its_connection(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    connections = Connections()
    async with database(connection_params, table_prefix, logger, connections, pool_size=1) as db:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(db.run("slow", "T", lambda s: s.query(SLOW)), 0.2)
        assert time.monotonic() - started < PROMPTLY

        # Cancelled on the server (Snowflake's 000604), not left to run to its end.
        [error] = connections.errors
        assert isinstance(error, ProgrammingError) and error.errno == 604
        # Its connection, in an unknown state, was closed; the next operation opens another.
        assert (connections.opened, connections.closed) == (1, 1)
        assert await db.run("probe", "T", select_one) == [(1,)]
        assert connections.opened == 2
        assert not logger.messages("warning")
    assert connections.open == 0


async def test_a_cancelled_operation_sends_no_further_statement(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    """Cancelled between two statements (its thread busy elsewhere past the grace period):
    the second one is never sent."""
    connections = Connections()
    between = threading.Event()
    resume = threading.Event()

    def work(statements: Statements) -> None:
        statements.query("SELECT 1")
        between.set()
        resume.wait(30)
        statements.execute(f'CREATE TABLE "{table_prefix}NEVER" (ID STRING)')

    async with database(connection_params, table_prefix, logger, connections, pool_size=1) as db:
        operation = asyncio.create_task(db.run("two", "T", work))
        await asyncio.to_thread(between.wait, 30)
        operation.cancel()
        with pytest.raises(asyncio.CancelledError):
            await operation
        resume.set()
        assert any("did not stop within" in m for m in logger.messages("warning"))
        catalog = await db.run(
            "probe",
            "T",
            lambda s: s.query(
                "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = :1",
                (f"{table_prefix}NEVER",),
            ),
        )
        assert catalog == [(0,)]
    assert not any("NEVER" in sql for sql in connections.statements)


# 3. Waiting for a connection ------------------------------------------------------------------


async def test_waiting_for_a_connection_is_bounded_and_not_retried(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    connections = Connections()
    release = threading.Event()
    async with database(
        connection_params,
        table_prefix,
        logger,
        connections,
        pool_size=1,
        connection_wait_timeout=0.3,
    ) as db:
        docs = await db.create_collection("docs", BaseDocument)
        holder = asyncio.create_task(db.run("hold", "T", lambda s: release.wait(30)))
        await asyncio.sleep(0.05)
        try:
            with pytest.raises(ConnectionWaitTimeout) as raised:
                await docs.find({})
        finally:
            release.set()
            await holder
        assert str(raised.value) == (
            f"find on {table_prefix}DOCS: no connection free within 0.3 s (pool_size 1, all busy)"
        )
        assert isinstance(raised.value, SnowflakeOperationError)
        assert not any("retrying" in m for m in logger.messages("warning"))
        assert list(await docs.find({})) == []


# 4. Errors after close, and the adapter's own error types -------------------------------------


async def test_operations_on_a_closed_database_raise_the_adapters_error(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    connections = Connections()
    release = threading.Event()
    async with database(connection_params, table_prefix, logger, connections, pool_size=1) as db:
        docs = await db.create_collection("docs", BaseDocument)
        holder = asyncio.create_task(db.run("hold", "T", lambda s: release.wait(30)))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(docs.find({}))
        await asyncio.sleep(0.05)
    # Closed while the waiter waited for the connection the holder has.
    release.set()
    await holder
    with pytest.raises(DatabaseClosedError) as waited:
        await waiter
    assert str(waited.value) == f"find on {table_prefix}DOCS: the Snowflake database is closed"

    with pytest.raises(DatabaseClosedError) as raised:
        await docs.insert_one(cast(BaseDocument, {"id": "a", "version": "1", "creation_utc": "0"}))
    assert str(raised.value) == (
        f"insert_one on {table_prefix}DOCS: the Snowflake database is closed"
    )
    assert isinstance(raised.value, SnowflakeBackendError)
    assert connections.open == 0


async def test_whatever_an_operation_raises_becomes_the_adapters_error(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    connections = Connections()
    async with database(connection_params, table_prefix, logger, connections) as db:
        with pytest.raises(SnowflakeOperationError) as raised:
            await db.run("find", "T", lambda s: json.loads(s.query("SELECT 'not json'")[0][0]))
    assert str(raised.value).startswith("find on T failed: JSONDecodeError")
    assert isinstance(raised.value.__cause__, json.JSONDecodeError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool_size": 0}, "pool_size must be at least 1"),
        ({"connection_wait_timeout": 0}, "connection_wait_timeout must be positive"),
    ],
)
def test_pool_settings_are_checked_with_the_adapters_error(
    connection_params: dict[str, Any],
    logger: RecordingLogger,
    options: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(SnowflakeConfigurationError, match=message):
        SnowflakeDocumentDatabase(logger, connection_params, **options)


async def test_a_cancellation_that_arrives_as_a_connection_is_granted_is_not_lost(
    connection_params: dict[str, Any],
) -> None:
    # asyncio.wait_for (before Python 3.12) returns the slot instead of the cancellation when
    # both arrive in one turn of the loop: a server told to stop during startup kept serving.
    # The cancellation lands 0 to 5 loop turns after the slot is freed, to hit that window.
    pool = ConnectionPool(lambda: snowflake.connector.connect(**connection_params), 1, 5.0)
    try:
        for turns in range(6):
            holding, release = asyncio.Event(), asyncio.Event()

            async def hold(holding: asyncio.Event, release: asyncio.Event) -> None:
                async with pool.lease("hold on T"):
                    holding.set()
                    await release.wait()

            async def wait_then_stay() -> None:
                async with pool.lease("wait on T"):
                    await asyncio.Event().wait()  # only a cancellation ends this

            holder = asyncio.create_task(hold(holding, release))
            await holding.wait()
            waiter = asyncio.create_task(wait_then_stay())
            await asyncio.sleep(0.01)  # the waiter waits for the slot
            release.set()
            for _ in range(turns):
                await asyncio.sleep(0)
            waiter.cancel()
            done, _ = await asyncio.wait({waiter}, timeout=2)
            assert waiter in done, f"the cancellation was lost ({turns} turns)"
            assert waiter.cancelled()
            await holder
            # And the slot was given back: the next borrower gets it at once.
            async with pool.lease("next on T"):
                pass
    finally:
        await pool.close()
