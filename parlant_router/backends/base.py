"""What every backend type provides: DocumentDatabases for the stores routed to it.

A `Backend` is opened once per backend name of parlant.yaml and shared by every store
routed to it, so that shared resources (the Snowflake emulator and connection pool, a
MongoDB client) exist once. Everything it opens is entered into the owner's
`AsyncExitStack` and closed with it, in reverse order, whether startup succeeded or not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from parlant.core.loggers import Logger
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.config.models import BackendConfig
    from parlant_router.config.routes import ResolvedRoute
    from parlant_router.snowflake.change_feed import ChangeFeed
    from parlant_router.snowflake.lease import Lease


@dataclass(frozen=True)
class BackendContext:
    """What a backend needs from its owner (a Router or a check run)."""

    logger: Logger
    stack: AsyncExitStack
    """Every resource a backend opens is entered here; the owner closes it."""


class Backend(ABC):
    """One backend of parlant.yaml, opened once and shared by the stores routed to it."""

    durable: ClassVar[bool] = True
    """Whether data outlives the process (False only for `transient`)."""

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        self.name = name
        self.config = config
        self.context = context

    async def open(self) -> None:  # noqa: B027 - optional hook, most backends share nothing
        """Acquire the resources shared by every database of this backend (default: none)."""

    @abstractmethod
    async def database(self, route: ResolvedRoute) -> DocumentDatabase:
        """An entered DocumentDatabase for `route`, registered in the context's exit stack."""

    async def change_feed(self, max_staleness: float) -> ChangeFeed | None:
        """The table through which server processes sharing this backend learn of each
        other's writes (`server.replicas: many`); None where the backend has none."""
        return None

    async def lease(self, name: str, ttl: float) -> Lease | None:
        """A lease through which server processes sharing this backend take turns at the
        job `name` (`server.replicas: many`); None where the backend has none."""
        return None

    def describe(self) -> str:
        """A one-line, secret-free description of where this backend keeps its data."""
        return f"{self.config.type} backend '{self.name}'"
