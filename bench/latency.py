"""Connections that model Snowflake's round trip and count every statement they send.

The connector's own ``SnowflakeConnection`` is kept (the adapters talk to the real thing);
only its ``cursor()`` is replaced on the instance, so that every cursor it hands out --
to an adapter, or internally to ``execute_string``/``executemany``/``commit`` -- sleeps
``latency_ms`` in the executing thread and counts one statement per ``execute``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import snowflake.connector
from snowflake.connector.cursor import SnowflakeCursor


class StatementMeter:
    """Counts statements sent and injects ``latency_ms`` per statement.

    One meter serves every connection of one adapter, so that latency can be switched
    between phases of a run without reconnecting, and counts are per adapter.
    """

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self._count = 0
        self._connections = 0
        self._busy = 0.0
        self._lock = threading.Lock()

    @property
    def statements(self) -> int:
        """Statements sent so far by every connection made through this meter."""
        with self._lock:
            return self._count

    @property
    def execute_seconds(self) -> float:
        """Seconds spent inside ``execute`` (injected latency excluded): the emulator's share."""
        with self._lock:
            return self._busy

    @property
    def connections(self) -> int:
        """Connections opened so far through this meter."""
        with self._lock:
            return self._connections

    def connection_factory(
        self, params: Mapping[str, Any]
    ) -> snowflake.connector.SnowflakeConnection:
        """A ``connection_factory`` for both adapters: connect, then meter the connection."""
        connection = snowflake.connector.connect(**dict(params))
        self._instrument(connection)
        with self._lock:
            self._connections += 1
        return connection

    def _statement_sent(self) -> None:
        with self._lock:
            self._count += 1
        if self.latency_ms > 0:
            # Sleeping in the executing thread holds the connection exactly as a network
            # round trip would, and releases the GIL as waiting on a socket does.
            time.sleep(self.latency_ms / 1000.0)

    def _executed(self, seconds: float) -> None:
        with self._lock:
            self._busy += seconds

    def _instrument(self, connection: snowflake.connector.SnowflakeConnection) -> None:
        make_cursor: Callable[..., SnowflakeCursor] = connection.cursor
        meter = self

        def cursor(*args: Any, **kwargs: Any) -> SnowflakeCursor:
            real = make_cursor(*args, **kwargs)
            execute: Callable[..., Any] = real.execute

            def metered_execute(*e_args: Any, **e_kwargs: Any) -> Any:
                meter._statement_sent()
                started = time.perf_counter()
                try:
                    return execute(*e_args, **e_kwargs)
                finally:
                    meter._executed(time.perf_counter() - started)

            # On the instance, so the connector's own internal calls are metered too.
            setattr(real, "execute", metered_execute)  # noqa: B010
            return real

        setattr(connection, "cursor", cursor)  # noqa: B010
