"""A DocumentDatabase wrapper that runs a hook before every collection call.

Tests use the hook to make calls meet at a barrier (proving they overlap) or to yield to the
event loop (so that unlocked read-then-write sequences would interleave).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionIndex,
    CollectionSort,
    DeleteResult,
    DocumentCollection,
    DocumentDatabase,
    FindResult,
    InsertResult,
    TDocument,
    UpdateResult,
)

#: ``hook(collection_name, operation, filters_or_document)``, awaited before each call.
Hook = Callable[[str, str, Any], Awaitable[None]]


async def no_hook(collection: str, operation: str, argument: Any) -> None:
    """The hook that does nothing."""


class GatedDatabase(DocumentDatabase):
    """Delegates to ``inner``; every collection it hands out awaits ``self.hook`` first."""

    def __init__(self, inner: DocumentDatabase) -> None:
        self._inner = inner
        self.hook: Hook = no_hook

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> DocumentCollection[TDocument]:
        return GatedCollection(self, name, await self._inner.create_collection(name, schema))

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> DocumentCollection[TDocument]:
        inner = await self._inner.get_collection(name, schema, document_loader)
        return GatedCollection(self, name, inner)

    async def get_or_create_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> DocumentCollection[TDocument]:
        inner = await self._inner.get_or_create_collection(name, schema, document_loader)
        return GatedCollection(self, name, inner)

    async def delete_collection(self, name: str) -> None:
        await self._inner.delete_collection(name)


class GatedCollection(DocumentCollection[TDocument]):
    """One collection of a ``GatedDatabase``."""

    def __init__(
        self, database: GatedDatabase, name: str, inner: DocumentCollection[TDocument]
    ) -> None:
        self._database = database
        self._name = name
        self._inner = inner

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        await self._database.hook(self._name, "find", filters)
        return await self._inner.find(filters, limit, cursor, sort_direction)

    async def find_one(
        self, filters: Where, sort: CollectionSort | None = None
    ) -> TDocument | None:
        await self._database.hook(self._name, "find_one", filters)
        return await self._inner.find_one(filters, sort)

    async def ensure_indexes(self, indexes: Sequence[CollectionIndex]) -> None:
        await self._inner.ensure_indexes(indexes)

    async def insert_one(self, document: TDocument) -> InsertResult:
        await self._database.hook(self._name, "insert_one", document)
        return await self._inner.insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        await self._database.hook(self._name, "update_one", filters)
        return await self._inner.update_one(filters, params, upsert)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        await self._database.hook(self._name, "delete_one", filters)
        return await self._inner.delete_one(filters)
