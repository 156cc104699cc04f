"""Count what a DocumentDatabase sends to Snowflake, for any adapter that takes a
``connection_factory`` (ours and Parlant's upstream one both do).

    counter = CountingConnectionFactory()
    async with SnowflakeDocumentDatabase(logger, params, connection_factory=counter) as db:
        ...
    counter.statements, counter.rows_returned

Statements are counted as the connector's ``cursor.execute`` calls: each is one round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any


class CountingConnectionFactory:
    """A ``connection_factory`` whose connections count statements and the rows they return."""

    def __init__(self, connect: Callable[..., Any] | None = None) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self.statements = 0
        #: Rows returned by queries (what the client had to download and decode).
        self.rows_returned = 0
        self.connections = 0
        #: SQL text of every statement, whitespace collapsed, in order.
        self.log: list[str] = []

    def __call__(self, params: Mapping[str, Any]) -> _CountingConnection:
        if self._connect is not None:
            connection = self._connect(**params)
        else:
            import snowflake.connector

            connection = snowflake.connector.connect(**params)
        with self._lock:
            self.connections += 1
        return _CountingConnection(connection, self)

    def reset(self) -> None:
        """Start counting from zero (connections stay open)."""
        with self._lock:
            self.statements = 0
            self.rows_returned = 0
            self.log.clear()

    def _sent(self, sql: str) -> None:
        with self._lock:
            self.statements += 1
            self.log.append(" ".join(sql.split()))

    def _returned(self, rows: int) -> None:
        with self._lock:
            self.rows_returned += rows


class _CountingConnection:
    def __init__(self, connection: Any, counter: CountingConnectionFactory) -> None:
        self._connection = connection
        self._counter = counter

    def cursor(self, *args: Any, **kwargs: Any) -> _CountingCursor:
        return _CountingCursor(self._connection.cursor(*args, **kwargs), self._counter)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _CountingCursor:
    def __init__(self, cursor: Any, counter: CountingConnectionFactory) -> None:
        self._cursor = cursor
        self._counter = counter

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._counter._sent(sql)
        result = self._cursor.execute(sql, *args, **kwargs)
        if self._cursor.description is not None and sql.lstrip()[:6].upper() == "SELECT":
            self._counter._returned(int(self._cursor.rowcount or 0))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


__all__ = ["CountingConnectionFactory"]
