"""Types of the shared database fixtures (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from parlant_router.snowflake import SnowflakeDocumentDatabase

OpenDatabase = Callable[..., AbstractAsyncContextManager[SnowflakeDocumentDatabase]]
"""The `open_database` fixture: our database on the session's emulator; keyword arguments go
to its constructor."""
