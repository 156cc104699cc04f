"""Snowflake backend of parlant-router: a DocumentDatabase, its credentials and an emulator."""

from __future__ import annotations

from parlant_router.snowflake.emulator import SnowflakeEmulator
from parlant_router.snowflake.errors import (
    DuplicateDocumentError,
    SnowflakeBackendError,
    SnowflakeConfigurationError,
    SnowflakeEmulatorError,
    SnowflakeOperationError,
)

__all__ = [
    "DuplicateDocumentError",
    "SnowflakeBackendError",
    "SnowflakeConfigurationError",
    "SnowflakeEmulator",
    "SnowflakeEmulatorError",
    "SnowflakeOperationError",
]
