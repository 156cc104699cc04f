"""Exceptions raised by the Snowflake backend.

Every message is one line and never carries a credential: callers print them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from parlant_router.errors import UnstorableInputError


class SnowflakeBackendError(Exception):
    """Base class of every error raised by ``parlant_router.snowflake``."""


class SnowflakeEmulatorError(SnowflakeBackendError):
    """The embedded emulator could not start (missing extra, unwritable directory, ...)."""


class SnowflakeConfigurationError(SnowflakeBackendError):
    """Credentials or connection settings are missing or contradictory.

    When the problem is about particular settings, ``field`` names the one at fault (a
    ``SnowflakeCredentials`` field, or ``options.<name>`` for an entry of ``options``) and
    ``conflicts`` the settings it contradicts. ``reason`` is the message without ``subject``
    and ``field``, for a caller that names the setting its own way (parlant.yaml points at
    the key's line).
    """

    def __init__(
        self,
        reason: str,
        *,
        subject: str | None = None,
        field: str | None = None,
        conflicts: Iterable[str] = (),
    ) -> None:
        self.reason = reason
        self.field = field
        self.conflicts = tuple(conflicts)
        super().__init__(": ".join(part for part in (subject, field, reason) if part))


class SnowflakeOperationError(SnowflakeBackendError):
    """A database operation failed; the message names the operation and the table."""


class DuplicateDocumentError(SnowflakeOperationError):
    """insert_one was given an id that the collection already holds."""


class ConnectionWaitTimeout(SnowflakeOperationError):
    """Every pooled connection stayed busy for the whole connection wait timeout.

    Not retried: the wait already lasted as long as the caller allowed.
    """


class DatabaseClosedError(SnowflakeOperationError):
    """An operation was started on (or was waiting for a connection of) a closed database."""


class InvalidDocumentError(SnowflakeOperationError, UnstorableInputError):
    """A document that Snowflake cannot store as it is (a string that is not valid Unicode,
    JSON too large for one statement, nesting too deep): refused before any statement."""


class InvalidFilterError(SnowflakeOperationError, UnstorableInputError):
    """A filter or sort that cannot be sent as it is (a string that is not valid Unicode,
    nesting, a list or a whole statement beyond the limits): refused before any statement."""
