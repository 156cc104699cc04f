"""Parlant's MongoDocumentDatabase with a prefix in front of every collection name.

Imported only when pymongo is installed (Parlant's adapter imports it at module level).
Every Parlant store opens a `metadata` collection, so stores sharing one MongoDB database
need distinct names: the route's table prefix provides them, as on Snowflake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from parlant.adapters.db.mongo_db import MongoDocumentDatabase
from parlant.core.loggers import Logger
from parlant.core.persistence.document_database import (
    BaseDocument,
    DocumentCollection,
    TDocument,
)


class PrefixedMongoDocumentDatabase(MongoDocumentDatabase):
    """MongoDocumentDatabase whose collections are named `<prefix><name>`."""

    def __init__(self, mongo_client: Any, database_name: str, logger: Logger, prefix: str) -> None:
        super().__init__(mongo_client=mongo_client, database_name=database_name, logger=logger)
        self.prefix = prefix

    def _name(self, name: str) -> str:
        # Parlant's get_collection calls create/delete_collection for its own bookkeeping
        # collections with names it built from ours: prefix once.
        return name if name.startswith(self.prefix) else self.prefix + name

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> DocumentCollection[TDocument]:
        return await super().create_collection(self._name(name), schema)

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> DocumentCollection[TDocument]:
        return await super().get_collection(self._name(name), schema, document_loader)

    async def delete_collection(self, name: str) -> None:
        await super().delete_collection(self._name(name))
