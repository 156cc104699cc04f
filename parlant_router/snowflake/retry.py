"""Which Snowflake failures are worth another attempt, and how long to wait before it.

The connector already retries HTTP-level hiccups inside one request. What it does not absorb:

- the connection is gone (closed, or requests keep failing): reconnect, then retry;
- the session cannot be renewed: master token expired (390114) and friends, or an OAuth
  token expired/rotated (390318/390303, e.g. SPCS rewrote its token file): reconnect with
  freshly built credentials (token files are re-read), then retry;
- ``000625``: more than 20 statements wait for the same table lock: back off, then retry on
  the same connection.

Everything else (SQL errors, permissions, duplicates, the adapter's own errors such as a
connection wait that timed out) fails at once.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass

from parlant_router.snowflake.errors import SnowflakeBackendError

#: Connector/GS error numbers after which the connection must be replaced.
RECONNECT_ERRNOS = frozenset(
    {
        250001,  # failed to connect to DB
        250002,  # connection is closed
        250003,  # failed to execute request (network)
        250005,  # failed to get a response from the server
        251011,  # connection timeout
        390104,  # session no longer known to the server: log in again
        390112,  # session expired and could not be renewed
        390113,  # master token not found
        390114,  # master token expired
        390115,  # master token invalid
        390303,  # OAuth access token invalid (rotated)
        390318,  # OAuth access token expired
    }
)

#: Error numbers worth a retry on the same connection after a pause.
BACKOFF_ERRNOS = frozenset(
    {
        625,  # lock wait queue full: "waiters for this lock exceeds the 20 statements limit"
    }
)


class Recovery(enum.Enum):
    """What to do about a failure."""

    FAIL = "fail"
    BACKOFF = "backoff"
    RECONNECT = "reconnect"


def recovery_for(error: BaseException) -> Recovery:
    """Classify ``error`` raised by the connector (or by the network under it)."""
    if isinstance(error, SnowflakeBackendError):
        # Ours, and final: a duplicate, a bad filter, a connection wait that timed out.
        return Recovery.FAIL
    if getattr(error, "sqlstate", None) == "28000":
        # Credentials rejected (wrong password, bad key): another attempt cannot help.
        return Recovery.FAIL
    errno = getattr(error, "errno", None)
    if isinstance(errno, int):
        if errno in RECONNECT_ERRNOS:
            return Recovery.RECONNECT
        if errno in BACKOFF_ERRNOS:
            return Recovery.BACKOFF
    if isinstance(error, (ConnectionError, socket.timeout, TimeoutError)):
        return Recovery.RECONNECT
    try:
        from snowflake.connector.errors import InterfaceError, OperationalError
    except ImportError:  # pragma: no cover - the connector is a dependency
        return Recovery.FAIL
    if isinstance(error, (OperationalError, InterfaceError)):
        cause = error.__cause__ or error.__context__
        if isinstance(cause, (ConnectionError, socket.timeout, TimeoutError, OSError)):
            return Recovery.RECONNECT
    return Recovery.FAIL


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    ``attempts`` counts the first try: 5 means up to 4 retries. The wait before retry *n*
    is ``initial_delay * 2**(n-1)`` (plus up to ``jitter`` seconds), capped at ``max_delay``.
    """

    attempts: int = 5
    initial_delay: float = 0.1
    max_delay: float = 5.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ValueError("RetryPolicy delays must not be negative")


__all__ = ["BACKOFF_ERRNOS", "RECONNECT_ERRNOS", "Recovery", "RetryPolicy", "recovery_for"]
