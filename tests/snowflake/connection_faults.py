"""Wrappers around real connector connections, passed as ``connection_factory``.

They are test instruments, not fakes: every statement still runs through the real connector
against the emulator. ``faulty_factory`` injects the failures a network, a session expiry or a
lock queue would cause, at chosen statements; ``rewriting_factory`` lets a test see (and hold,
or swap) each statement before it is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import snowflake.connector
from snowflake.connector.errors import DatabaseError, OperationalError


class StatementLog:
    """SQL text of every statement sent through the wrapped connections, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statements: list[str] = []

    def add(self, sql: str) -> int:
        with self._lock:
            self.statements.append(" ".join(sql.split()))
            return len(self.statements)

    def __len__(self) -> int:
        return len(self.statements)

    def since(self, mark: int) -> list[str]:
        return self.statements[mark:]


class _Cursor:
    """A real cursor; ``before(sql)`` gives the statement to run, ``after(sql)`` follows it."""

    def __init__(self, cursor: Any, before: Callable[[str], str], after: Callable[[str], None]):
        self._cursor = cursor
        self._before = before
        self._after = after

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        sql = self._before(sql)
        result = self._cursor.execute(sql, *args, **kwargs)
        self._after(sql)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@dataclass
class FaultPlan:
    """Failures keyed by the 1-based number of the statement (over all connections).

    - ``drop_before``: the connection is closed just before the statement (a drop between
      statements): the connector then fails with 250002 "Connection is closed".
    - ``drop_after``: the statement runs on the server, then the connection drops before the
      answer arrives (250003): the client cannot know whether it was applied.
    - ``expire_at``: the session expired: master token (390114) or, with ``expire_errno``
      390318, the OAuth token (as when SPCS has rotated it).
    - ``lock_queue_full_at``: Snowflake's 000625 lock-queue error.
    """

    drop_before: set[int] = field(default_factory=set)
    drop_after: set[int] = field(default_factory=set)
    expire_at: set[int] = field(default_factory=set)
    lock_queue_full_at: set[int] = field(default_factory=set)
    expire_errno: int = 390114
    log: StatementLog = field(default_factory=StatementLog)
    connects: list[dict[str, Any]] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)


class FaultyConnection:
    def __init__(self, connection: Any, plan: FaultPlan) -> None:
        self._connection = connection
        self._plan = plan
        self.expired = False

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _Cursor(self._connection.cursor(*args, **kwargs), self._before, self._after)

    def _before(self, sql: str) -> str:
        number = self._plan.log.add(sql)
        self._current = number
        if number in self._plan.drop_before:
            self._plan.injected.append(f"drop before #{number}")
            self._connection.close()
            # Raised here rather than left to the connector: on the emulator a cursor made
            # before the close still sends its statement, which a dropped link never would.
            raise DatabaseError(msg="Connection is closed", errno=250002)
        if number in self._plan.expire_at:
            self._plan.injected.append(f"{self._plan.expire_errno} at #{number}")
            self.expired = True
            raise DatabaseError(
                msg="Authentication token has expired. The user must authenticate again.",
                errno=self._plan.expire_errno,
                sqlstate="08001",
            )
        if number in self._plan.lock_queue_full_at:
            self._plan.injected.append(f"000625 at #{number}")
            raise OperationalError(
                msg="Statement was aborted because the number of waiters for this lock "
                "exceeds the 20 statements limit.",
                errno=625,
                sqlstate="57014",
            )
        return sql

    def _after(self, sql: str) -> None:
        if self._current in self._plan.drop_after:
            self._plan.injected.append(f"drop after #{self._current}")
            self._connection.close()
            raise OperationalError(msg="Failed to execute request: connection reset", errno=250003)

    def close(self) -> None:
        self._connection.close()

    def is_closed(self) -> bool:
        return bool(self._connection.is_closed())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def faulty_factory(plan: FaultPlan) -> Callable[[Mapping[str, Any]], Any]:
    def connect(params: Mapping[str, Any]) -> FaultyConnection:
        plan.connects.append(dict(params))
        return FaultyConnection(snowflake.connector.connect(**params), plan)

    return connect


class RewritingConnection:
    """A real connection whose statements pass through ``rewrite(sql) -> sql`` first."""

    def __init__(self, connection: Any, rewrite: Callable[[str], str]) -> None:
        self._connection = connection
        self._rewrite = rewrite

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _Cursor(self._connection.cursor(*args, **kwargs), self._rewrite, _nothing_after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _nothing_after(sql: str) -> None:
    pass


def rewriting_factory(rewrite: Callable[[str], str]) -> Callable[[Mapping[str, Any]], Any]:
    """Real connections whose every statement is ``rewrite(sql)`` (which may also wait)."""

    def connect(params: Mapping[str, Any]) -> RewritingConnection:
        return RewritingConnection(snowflake.connector.connect(**params), rewrite)

    return connect
