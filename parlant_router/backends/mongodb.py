"""`type: mongodb`: Parlant's MongoDocumentDatabase on one pymongo async client per backend.

pymongo is an optional extra (`pip install 'parlant-router[mongodb]'`), imported only
when a mongodb backend is in use. Stores share the backend's database; each store's
collections carry the route's table prefix (`PARLANT_SESSIONS_sessions`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parlant_router.backends.base import Backend
from parlant_router.errors import RouterError

if TYPE_CHECKING:
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.config.models import MongoBackendConfig
    from parlant_router.config.routes import ResolvedRoute

MISSING_PYMONGO = "the mongodb backend needs pymongo: pip install 'parlant-router[mongodb]'"


class MongoBackend(Backend):
    """One AsyncMongoClient per backend, one prefixed MongoDocumentDatabase per store."""

    _client: Any = None

    @property
    def _config(self) -> MongoBackendConfig:
        return self.config  # type: ignore[return-value]

    async def open(self) -> None:
        try:
            from pymongo import AsyncMongoClient
        except ImportError:
            raise RouterError(f"backends.{self.name}: {MISSING_PYMONGO}") from None
        url = self._config.url.get_secret_value()
        # Fail in seconds, not pymongo's 30, unless the URL chooses its own timeout.
        options: dict[str, Any] = (
            {}
            if "serverselectiontimeoutms" in url.lower()
            else {"serverSelectionTimeoutMS": 10_000}
        )
        try:
            client: Any = AsyncMongoClient(url, **options)
        except Exception as error:
            # Only the exception type: pymongo's message may quote the URL, password included.
            raise RouterError(
                f"backends.{self.name}.url: not a usable MongoDB url ({type(error).__name__})"
            ) from None
        self._client = await self.context.stack.enter_async_context(client)

    async def database(self, route: ResolvedRoute) -> DocumentDatabase:
        from parlant_router.backends.mongo_prefixed import PrefixedMongoDocumentDatabase

        database = PrefixedMongoDocumentDatabase(
            mongo_client=self._client,
            database_name=self._config.database,
            logger=self.context.logger,
            prefix=route.table_prefix or "",
        )
        return await self.context.stack.enter_async_context(database)

    def describe(self) -> str:
        return f"MongoDB database '{self._config.database}'"
