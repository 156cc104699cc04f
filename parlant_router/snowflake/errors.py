"""Exceptions raised by the Snowflake backend.

Every message is one line and never carries a credential: callers print them as they are.
"""

from __future__ import annotations


class SnowflakeBackendError(Exception):
    """Base class of every error raised by ``parlant_router.snowflake``."""


class SnowflakeEmulatorError(SnowflakeBackendError):
    """The embedded emulator could not start (missing extra, unwritable directory, ...)."""


class SnowflakeConfigurationError(SnowflakeBackendError):
    """Credentials or connection settings are missing or contradictory."""


class SnowflakeOperationError(SnowflakeBackendError):
    """A database operation failed; the message names the operation and the table."""


class DuplicateDocumentError(SnowflakeOperationError):
    """insert_one was given an id that the collection already holds."""
