"""A vector database whose documents are kept durably and whose embeddings are rebuilt.

Parlant's vector-backed stores (journeys, glossary, canned responses, capabilities) write
each entity twice: its documents into a DocumentDatabase and a "vector document" (the text
to embed, plus ids) into a VectorDatabase. With durable documents and the in-memory vector
database, a restart would keep the journeys but lose every vector, so vector queries would
silently stop finding them.

`MirroredVectorDatabase` closes that gap: every vector document is also written, without
its embedding, to a `vectors_<collection>` collection of the store's own (durable)
DocumentDatabase; when a collection is opened, the in-memory index is rebuilt from that
mirror (re-embedding the texts, through Parlant's embedding cache when one is set). The
mirror is written first, so an interruption between the two writes leaves at worst a vector
that the next start rebuilds, never a vector without its record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, cast

from parlant.core.common import JSONSerializable
from parlant.core.loggers import Logger
from parlant.core.nlp.embedding import Embedder
from parlant.core.persistence.common import Where
from parlant.core.persistence.document_database import DocumentCollection, DocumentDatabase
from parlant.core.persistence.vector_database import (
    BaseDocument,
    DeleteResult,
    InsertResult,
    SimilarDocumentResult,
    TDocument,
    UpdateResult,
    VectorCollection,
    VectorDatabase,
)

MIRROR_PREFIX = "vectors_"


class MirroredVectorDatabase(VectorDatabase):
    """`inner` for embeddings and similarity, `documents` for the durable copy of its documents."""

    def __init__(self, inner: VectorDatabase, documents: DocumentDatabase, logger: Logger) -> None:
        self._inner = inner
        self._documents = documents
        self._logger = logger

    async def _mirror(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> DocumentCollection[Any]:
        # Vector documents are plain dicts with an id: any document collection holds them.
        collection: DocumentCollection[Any] = await self._documents.get_or_create_collection(
            MIRROR_PREFIX + name,
            cast(Any, schema),
            cast(Any, document_loader),
        )
        return collection

    async def _rebuilt(
        self,
        name: str,
        inner: VectorCollection[TDocument],
        mirror: DocumentCollection[Any],
    ) -> MirroredVectorCollection[TDocument]:
        indexed = {str(d["id"]) for d in await inner.find({})}
        missing = [d for d in await mirror.find({}) if str(d["id"]) not in indexed]
        for document in missing:
            await inner.insert_one(document)
        if missing:
            self._logger.info(
                f"Rebuilt {len(missing)} vector(s) of '{name}' from their durable documents"
            )
        return MirroredVectorCollection(inner, mirror)

    async def create_collection(
        self, name: str, schema: type[TDocument], embedder_type: type[Embedder]
    ) -> VectorCollection[TDocument]:
        inner = await self._inner.create_collection(name, schema, embedder_type)

        async def identity(doc: BaseDocument) -> TDocument | None:
            return cast(TDocument, doc)

        return await self._rebuilt(name, inner, await self._mirror(name, schema, identity))

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        embedder_type: type[Embedder],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> VectorCollection[TDocument]:
        inner = await self._inner.get_collection(name, schema, embedder_type, document_loader)
        return await self._rebuilt(name, inner, await self._mirror(name, schema, document_loader))

    async def get_or_create_collection(
        self,
        name: str,
        schema: type[TDocument],
        embedder_type: type[Embedder],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> VectorCollection[TDocument]:
        inner = await self._inner.get_or_create_collection(
            name, schema, embedder_type, document_loader
        )
        return await self._rebuilt(name, inner, await self._mirror(name, schema, document_loader))

    async def delete_collection(self, name: str) -> None:
        await self._inner.delete_collection(name)
        await self._documents.delete_collection(MIRROR_PREFIX + name)

    async def upsert_metadata(self, key: str, value: JSONSerializable) -> None:
        await self._inner.upsert_metadata(key, value)

    async def remove_metadata(self, key: str) -> None:
        await self._inner.remove_metadata(key)

    async def read_metadata(self) -> Mapping[str, JSONSerializable]:
        return await self._inner.read_metadata()


class MirroredVectorCollection(VectorCollection[TDocument], Generic[TDocument]):
    """Reads and similarity from the index; every write to the durable mirror first."""

    def __init__(self, inner: VectorCollection[TDocument], mirror: DocumentCollection[Any]) -> None:
        self._inner = inner
        self._mirror = mirror

    async def find(self, filters: Where) -> Sequence[TDocument]:
        return await self._inner.find(filters)

    async def find_one(self, filters: Where) -> TDocument | None:
        return await self._inner.find_one(filters)

    async def insert_one(self, document: TDocument) -> InsertResult:
        await self._mirror.insert_one(document)
        if await self._inner.find_one({"id": {"$eq": document["id"]}}) is not None:
            # Rebuilt at startup and inserted again by startup code: one vector per id.
            return InsertResult(acknowledged=True)
        return await self._inner.insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        before = await self._inner.find_one(filters)
        if before is None and not upsert:
            return await self._inner.update_one(filters, params, upsert)
        # The mirror gets the whole document, whatever the adapter's update semantics.
        merged = cast(TDocument, {**(before or {}), **params})
        await self._mirror.update_one({"id": {"$eq": merged["id"]}}, merged, upsert=True)
        return await self._inner.update_one(filters, params, upsert)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        result = await self._inner.delete_one(filters)
        if result.deleted_document is not None:
            await self._mirror.delete_one({"id": {"$eq": result.deleted_document["id"]}})
        return result

    async def find_similar_documents(
        self, filters: Where, query: str, k: int, hints: Mapping[str, Any] = {}
    ) -> Sequence[SimilarDocumentResult[TDocument]]:
        return await self._inner.find_similar_documents(filters, query, k, hints)
