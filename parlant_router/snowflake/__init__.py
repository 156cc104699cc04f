"""Snowflake backend of parlant-router: a DocumentDatabase, its credentials and an emulator.

``SnowflakeDocumentDatabase`` is a drop-in for Parlant's
``parlant.adapters.db.snowflake_db.SnowflakeDocumentDatabase`` (same constructor, same tables).

The public names are imported on first use: the config layer imports the light modules of
this package (`identifiers`, `credentials`) without pulling in the connector or Parlant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parlant_router.snowflake.collection import SnowflakeDocumentCollection
    from parlant_router.snowflake.counting import CountingConnectionFactory
    from parlant_router.snowflake.credentials import SPCS_TOKEN_PATH, SnowflakeCredentials
    from parlant_router.snowflake.database import SnowflakeDocumentDatabase
    from parlant_router.snowflake.emulator import SnowflakeEmulator
    from parlant_router.snowflake.errors import (
        ConnectionWaitTimeout,
        DatabaseClosedError,
        DuplicateDocumentError,
        InvalidDocumentError,
        InvalidFilterError,
        SnowflakeBackendError,
        SnowflakeConfigurationError,
        SnowflakeEmulatorError,
        SnowflakeOperationError,
    )
    from parlant_router.snowflake.retry import RetryPolicy

_HOMES: dict[str, str] = {
    "SPCS_TOKEN_PATH": "credentials",
    "ConnectionWaitTimeout": "errors",
    "CountingConnectionFactory": "counting",
    "DatabaseClosedError": "errors",
    "DuplicateDocumentError": "errors",
    "InvalidDocumentError": "errors",
    "InvalidFilterError": "errors",
    "RetryPolicy": "retry",
    "SnowflakeBackendError": "errors",
    "SnowflakeConfigurationError": "errors",
    "SnowflakeCredentials": "credentials",
    "SnowflakeDocumentCollection": "collection",
    "SnowflakeDocumentDatabase": "database",
    "SnowflakeEmulator": "emulator",
    "SnowflakeEmulatorError": "errors",
    "SnowflakeOperationError": "errors",
}

__all__ = [
    "SPCS_TOKEN_PATH",
    "ConnectionWaitTimeout",
    "CountingConnectionFactory",
    "DatabaseClosedError",
    "DuplicateDocumentError",
    "InvalidDocumentError",
    "InvalidFilterError",
    "RetryPolicy",
    "SnowflakeBackendError",
    "SnowflakeConfigurationError",
    "SnowflakeCredentials",
    "SnowflakeDocumentCollection",
    "SnowflakeDocumentDatabase",
    "SnowflakeEmulator",
    "SnowflakeEmulatorError",
    "SnowflakeOperationError",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'parlant_router.snowflake' has no attribute {name!r}")
    return getattr(importlib.import_module(f"parlant_router.snowflake.{home}"), name)
