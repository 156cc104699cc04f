"""Snowflake backend of parlant-router: a DocumentDatabase, its credentials and an emulator.

``SnowflakeDocumentDatabase`` is a drop-in for Parlant's
``parlant.adapters.db.snowflake_db.SnowflakeDocumentDatabase`` (same constructor, same tables).
"""

from __future__ import annotations

from parlant_router.snowflake.collection import SnowflakeDocumentCollection
from parlant_router.snowflake.counting import CountingConnectionFactory
from parlant_router.snowflake.credentials import SPCS_TOKEN_PATH, SnowflakeCredentials
from parlant_router.snowflake.database import SnowflakeDocumentDatabase
from parlant_router.snowflake.emulator import SnowflakeEmulator
from parlant_router.snowflake.errors import (
    DuplicateDocumentError,
    SnowflakeBackendError,
    SnowflakeConfigurationError,
    SnowflakeEmulatorError,
    SnowflakeOperationError,
)
from parlant_router.snowflake.retry import RetryPolicy

__all__ = [
    "SPCS_TOKEN_PATH",
    "CountingConnectionFactory",
    "DuplicateDocumentError",
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
