"""The one base for wrapping a DocumentDatabase and its collections.

A wrapper changes one thing (how inserts of known ids behave, which loader runs, what a
call counts or waits for) and delegates the rest. `PassThroughDocumentDatabase` delegates
every database call and offers two hooks, `wrap_collection` and `wrap_loader`;
`PassThroughCollection` delegates every collection call after awaiting `before(operation,
argument)`, a no-op unless a subclass needs to observe calls. Subclasses override only
what they change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic

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

from parlant_router.durable.conditional_writes import (
    Change,
    insert_unless,
    update_with,
)

Loader = Callable[[BaseDocument], Awaitable[TDocument | None]]
"""A collection's document loader (Parlant's migration hook per document)."""


class PassThroughDocumentDatabase(DocumentDatabase):
    """Delegates to `inner`; collections and loaders go through the hooks on the way."""

    def __init__(self, inner: DocumentDatabase) -> None:
        self.inner = inner

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        """The collection handed to callers (default: `collection` itself)."""
        return collection

    def wrap_loader(self, loader: Loader[TDocument], collection: str) -> Loader[TDocument]:
        """The loader handed to `inner` for `collection` (default: `loader` itself)."""
        return loader

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> DocumentCollection[TDocument]:
        return self.wrap_collection(name, await self.inner.create_collection(name, schema))

    async def get_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> DocumentCollection[TDocument]:
        return await self._open(self.inner.get_collection, name, schema, document_loader)

    async def get_or_create_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> DocumentCollection[TDocument]:
        return await self._open(self.inner.get_or_create_collection, name, schema, document_loader)

    async def _open(
        self,
        opener: Callable[
            [str, type[TDocument], Loader[TDocument]], Awaitable[DocumentCollection[TDocument]]
        ],
        name: str,
        schema: type[TDocument],
        document_loader: Loader[TDocument],
    ) -> DocumentCollection[TDocument]:
        """Open through `opener` (one of `inner`'s methods), with both hooks applied."""
        collection = await opener(name, schema, self.wrap_loader(document_loader, name))
        return self.wrap_collection(name, collection)

    async def delete_collection(self, name: str) -> None:
        await self.inner.delete_collection(name)


class PassThroughCollection(DocumentCollection[TDocument], Generic[TDocument]):
    """Delegates to `inner`, awaiting `before(operation, argument)` ahead of each call."""

    def __init__(self, inner: DocumentCollection[TDocument], name: str) -> None:
        self.inner = inner
        self.name = name

    async def before(self, operation: str, argument: Any) -> None:
        """Runs ahead of every call: `argument` is the filters, or the inserted document."""

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        await self.before("find", filters)
        return await self.inner.find(filters, limit, cursor, sort_direction)

    async def find_one(
        self, filters: Where, sort: CollectionSort | None = None
    ) -> TDocument | None:
        await self.before("find_one", filters)
        return await self.inner.find_one(filters, sort)

    async def ensure_indexes(self, indexes: Sequence[CollectionIndex]) -> None:
        await self.before("ensure_indexes", indexes)
        await self.inner.ensure_indexes(indexes)

    async def insert_one(self, document: TDocument) -> InsertResult:
        await self.before("insert_one", document)
        return await self.inner.insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        await self.before("update_one", filters)
        return await self.inner.update_one(filters, params, upsert)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        await self.before("delete_one", filters)
        return await self.inner.delete_one(filters)

    # Conditional writes (durable/conditional_writes.py): forwarded, so that a wrapper never
    # hides what the database underneath can do.

    async def update_with(self, filters: Where, change: Change) -> UpdateResult[TDocument]:
        await self.before("update_one", filters)
        return await update_with(self.inner, filters, change)

    async def insert_unless(self, document: TDocument, conflict: Where) -> bool:
        await self.before("insert_one", document)
        return await insert_unless(self.inner, document, conflict)
