"""Idempotent creation for the stores that code fills at startup.

SDK programs create their agents, guidelines and journeys at every start
(`server.create_agent(...)`, `agent.create_guideline(...)`, ...). With those stores on a
durable backend, each start would add another copy. Parlant's ids for such entities are
deterministic: a checksum of the content plus the count of identical creations in the
process. So the same startup code yields the same ids at every start, and an insert whose
id is already stored means "created by an earlier start": `CreateOnceDocumentDatabase`
keeps the stored document and acknowledges the insert instead of writing a duplicate.
The key is the id, so an entity whose content changed gets a new id and is created.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from parlant.core.loggers import Logger
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


class CreateOnceDocumentDatabase(DocumentDatabase):
    """Delegates to `inner`; inserts of an already-stored id are kept as they are."""

    def __init__(self, inner: DocumentDatabase, *, store: str, logger: Logger) -> None:
        self._inner = inner
        self._store = store
        self._logger = logger
        self.kept = 0
        """How many inserts found their id already stored (created by an earlier start)."""

    def _wrap(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> CreateOnceCollection[TDocument]:
        return CreateOnceCollection(collection, owner=self, name=name)

    def note_kept(self, collection: str, document_id: str) -> None:
        self.kept += 1
        self._logger.info(
            f"{self._store}: '{document_id}' in '{collection}' already exists (created by an "
            "earlier start); kept the stored one"
        )

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> DocumentCollection[TDocument]:
        return self._wrap(name, await self._inner.create_collection(name, schema))

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> DocumentCollection[TDocument]:
        return self._wrap(name, await self._inner.get_collection(name, schema, document_loader))

    async def get_or_create_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> DocumentCollection[TDocument]:
        return self._wrap(
            name, await self._inner.get_or_create_collection(name, schema, document_loader)
        )

    async def delete_collection(self, name: str) -> None:
        await self._inner.delete_collection(name)


class CreateOnceCollection(DocumentCollection[TDocument]):
    """A collection whose insert_one is a no-op for an id that is already stored."""

    def __init__(
        self, inner: DocumentCollection[TDocument], *, owner: CreateOnceDocumentDatabase, name: str
    ) -> None:
        self._inner = inner
        self._owner = owner
        self._name = name

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        return await self._inner.find(filters, limit, cursor, sort_direction)

    async def find_one(
        self, filters: Where, sort: CollectionSort | None = None
    ) -> TDocument | None:
        return await self._inner.find_one(filters, sort)

    async def ensure_indexes(self, indexes: Sequence[CollectionIndex]) -> None:
        await self._inner.ensure_indexes(indexes)

    async def insert_one(self, document: TDocument) -> InsertResult:
        document_id = document.get("id")
        if (
            document_id is not None
            and self._name != "metadata"
            and await self._inner.find_one({"id": {"$eq": str(document_id)}}) is not None
        ):
            self._owner.note_kept(self._name, str(document_id))
            return InsertResult(acknowledged=True)
        return await self._inner.insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        return await self._inner.update_one(filters, params, upsert)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        return await self._inner.delete_one(filters)
