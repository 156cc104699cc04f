"""The two adapters under test, opened the same way over the same emulator."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, cast

from parlant.core.loggers import Logger, LogLevel, StdoutLogger
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.tracer import LocalTracer

from bench.latency import StatementMeter
from parlant_router.import_paths import ImportPathError, import_object

UPSTREAM = "upstream"
OURS = "ours"

_CLASSES = {
    UPSTREAM: "parlant.adapters.db.snowflake_db:SnowflakeDocumentDatabase",
    OURS: "parlant_router.snowflake:SnowflakeDocumentDatabase",
}


def quiet_logger() -> Logger:
    """Parlant's stdout logger at WARNING: the adapters' debug chatter is not the subject."""
    return StdoutLogger(LocalTracer(), log_level=LogLevel.WARNING, logger_id="bench")


@dataclass
class Adapter:
    """One adapter: its class, the emulator's connection parameters and its statement meter."""

    name: str
    connection_params: Mapping[str, Any]
    pool_size: int | None = None
    """Our adapter's pool size (None: its default); upstream has one connection, no pool."""
    meter: StatementMeter = field(default_factory=StatementMeter)

    def database(self, table_prefix: str) -> AbstractAsyncContextManager[DocumentDatabase]:
        """A DocumentDatabase whose tables are ``<table_prefix><NAME>``, metered by ``meter``."""
        cls = import_object(_CLASSES[self.name])
        extra: dict[str, Any] = {}
        if self.name == OURS and self.pool_size is not None:
            extra["pool_size"] = self.pool_size
        return cast(
            AbstractAsyncContextManager[DocumentDatabase],
            cls(
                quiet_logger(),
                dict(self.connection_params),
                table_prefix=table_prefix,
                connection_factory=self.meter.connection_factory,
                **extra,
            ),
        )


def default_pool_size() -> int | None:
    """Our adapter's default ``pool_size`` (None when it is not importable)."""
    if not available(OURS):
        return None
    cls = import_object(_CLASSES[OURS])
    default = inspect.signature(cls).parameters["pool_size"].default
    return default if isinstance(default, int) else None


def available(name: str) -> bool:
    """Whether the adapter's class imports (ours lands late in development)."""
    try:
        import_object(_CLASSES[name])
    except ImportPathError:
        return False
    return True
