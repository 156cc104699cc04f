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

from parlant.core.loggers import Logger
from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
    InsertResult,
    TDocument,
)

from parlant_router.durable.passthrough import PassThroughCollection, PassThroughDocumentDatabase


class CreateOnceDocumentDatabase(PassThroughDocumentDatabase):
    """Delegates to `inner`; inserts of an already-stored id are kept as they are."""

    def __init__(self, inner: DocumentDatabase, *, store: str, logger: Logger) -> None:
        super().__init__(inner)
        self._store = store
        self._logger = logger
        self.kept = 0
        """How many inserts found their id already stored (created by an earlier start)."""

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        return CreateOnceCollection(collection, owner=self, name=name)

    def note_kept(self, collection: str, document_id: str) -> None:
        self.kept += 1
        self._logger.info(
            f"{self._store}: '{document_id}' in '{collection}' already exists (created by an "
            "earlier start); kept the stored one"
        )


class CreateOnceCollection(PassThroughCollection[TDocument]):
    """A collection whose insert_one is a no-op for an id that is already stored."""

    def __init__(
        self, inner: DocumentCollection[TDocument], *, owner: CreateOnceDocumentDatabase, name: str
    ) -> None:
        super().__init__(inner, name)
        self._owner = owner

    async def insert_one(self, document: TDocument) -> InsertResult:
        document_id = document.get("id")
        if (
            document_id is not None
            and self.name != "metadata"
            and await self.inner.find_one({"id": {"$eq": str(document_id)}}) is not None
        ):
            self._owner.note_kept(self.name, str(document_id))
            return InsertResult(acknowledged=True)
        return await self.inner.insert_one(document)
