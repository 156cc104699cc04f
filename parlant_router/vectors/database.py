"""`StoredVectorDatabase`: a Parlant `VectorDatabase` kept in the store's own document database.

Each vector collection's rows (vector documents with their embeddings, see `rows`) live in
the collection `vectors_<collection>` of the document database, and the vector database's
metadata (Parlant's vector-store versions) in `vector_metadata`. On Snowflake these are the
tables `<PREFIX>VECTORS_<COLLECTION>` and `<PREFIX>VECTOR_METADATA`: a vector store routed
to Snowflake keeps everything in Snowflake.

With `keep_embeddings` (``vector: snowflake``) a restart embeds nothing that is stored;
without it (``vector: transient`` over a durable backend) the rows hold the documents only
and every start embeds them again, as Parlant's transient database would need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, cast

from parlant.core.common import JSONSerializable, Version
from parlant.core.loggers import Logger
from parlant.core.nlp.embedding import Embedder, EmbedderFactory
from parlant.core.persistence.common import ObjectId
from parlant.core.persistence.document_database import (
    BaseDocument as StoredDocument,
)
from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
)
from parlant.core.persistence.vector_database import (
    BaseDocument,
    TDocument,
    VectorCollection,
    VectorDatabase,
)
from parlant.core.tracer import Tracer

from parlant_router.vectors.collection import ChangeAnnouncements, StoredVectorCollection
from parlant_router.vectors.naming import VECTOR_METADATA_COLLECTION as METADATA_COLLECTION
from parlant_router.vectors.naming import VECTOR_ROWS_PREFIX as ROWS_PREFIX
from parlant_router.vectors.rows import StoredRow, row_loader


class _MetadataDocument(StoredDocument, total=False):
    value: JSONSerializable


class StoredVectorDatabase(VectorDatabase):
    """Vector collections whose rows live in `documents` (see the module docstring).

    Args:
        documents: the store's document database (durable).
        store: the store's name: the scope of its announcements on the change feed.
        keep_embeddings: store embeddings with the rows (else re-embed at each start).
        announcements: the backend's change feed under `server.replicas: many`, else None.
    """

    def __init__(
        self,
        documents: DocumentDatabase,
        *,
        logger: Logger,
        tracer: Tracer,
        embedder_factory: EmbedderFactory,
        store: str,
        keep_embeddings: bool,
        announcements: ChangeAnnouncements | None = None,
    ) -> None:
        self._documents = documents
        self._logger = logger
        self._tracer = tracer
        self._embedder_factory = embedder_factory
        self._store = store
        self._keep_embeddings = keep_embeddings
        self._announcements = announcements
        self._collections: dict[str, StoredVectorCollection[Any]] = {}
        self._open_lock = asyncio.Lock()
        self._metadata: DocumentCollection[_MetadataDocument] | None = None
        # What this process read or wrote last: a value written again unchanged (Parlant
        # writes its store version at every start) is not sent.
        self._metadata_seen: dict[str, JSONSerializable] = {}

    async def _open(
        self,
        name: str,
        schema: type[TDocument],
        embedder_type: type[Embedder],
        loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
        *,
        create: bool,
    ) -> StoredVectorCollection[TDocument]:
        async with self._open_lock:
            if (existing := self._collections.get(name)) is not None:
                return cast(StoredVectorCollection[TDocument], existing)
            rows_loader = cast(
                Callable[[StoredDocument], Awaitable[Any]],
                row_loader(
                    cast(Callable[[BaseDocument], Awaitable[BaseDocument | None]], loader),
                    keep_embedding=self._keep_embeddings,
                ),
            )
            if create:
                rows = await self._documents.get_or_create_collection(
                    ROWS_PREFIX + name, cast(Any, StoredRow), rows_loader
                )
            else:
                rows = await self._documents.get_collection(
                    ROWS_PREFIX + name, cast(Any, StoredRow), rows_loader
                )
            collection: StoredVectorCollection[TDocument] = StoredVectorCollection(
                name=name,
                schema=schema,
                rows=rows,
                embedder=self._embedder_factory.create_embedder(embedder_type),
                keep_embeddings=self._keep_embeddings,
                logger=self._logger,
                tracer=self._tracer,
            )
            await collection.load()
            if self._announcements is not None:
                collection.follow(self._announcements, f"{self._store}.{ROWS_PREFIX}{name}")
            self._collections[name] = collection
            return collection

    async def create_collection(
        self, name: str, schema: type[TDocument], embedder_type: type[Embedder]
    ) -> VectorCollection[TDocument]:
        if name in self._collections:
            raise ValueError(f'Collection "{name}" already exists.')

        async def identity(document: BaseDocument) -> TDocument | None:
            return cast(TDocument, document)

        return await self._open(name, schema, embedder_type, identity, create=True)

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        embedder_type: type[Embedder],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> VectorCollection[TDocument]:
        return await self._open(name, schema, embedder_type, document_loader, create=False)

    async def get_or_create_collection(
        self,
        name: str,
        schema: type[TDocument],
        embedder_type: type[Embedder],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> VectorCollection[TDocument]:
        return await self._open(name, schema, embedder_type, document_loader, create=True)

    async def delete_collection(self, name: str) -> None:
        async with self._open_lock:
            self._collections.pop(name, None)
            await self._documents.delete_collection(ROWS_PREFIX + name)

    # Metadata: one document per key -------------------------------------------------------

    async def _metadata_collection(self) -> DocumentCollection[_MetadataDocument]:
        if self._metadata is None:

            async def keep(document: StoredDocument) -> _MetadataDocument | None:
                return cast(_MetadataDocument, document)

            self._metadata = await self._documents.get_or_create_collection(
                METADATA_COLLECTION, _MetadataDocument, keep
            )
        return self._metadata

    async def upsert_metadata(self, key: str, value: JSONSerializable) -> None:
        if key in self._metadata_seen and self._metadata_seen[key] == value:
            return
        metadata = await self._metadata_collection()
        document: _MetadataDocument = {
            "id": ObjectId(key),
            "creation_utc": datetime.now(timezone.utc).isoformat(),
            "version": Version.String("1"),
            "value": value,
        }
        try:
            await metadata.update_one({"id": {"$eq": key}}, document, upsert=True)
        except Exception:
            # Replicas starting together both insert the key; the later one updates it.
            if await metadata.find_one({"id": {"$eq": key}}) is None:
                raise
            await metadata.update_one({"id": {"$eq": key}}, document)
        self._metadata_seen[key] = value

    async def remove_metadata(self, key: str) -> None:
        metadata = await self._metadata_collection()
        result = await metadata.delete_one({"id": {"$eq": key}})
        self._metadata_seen.pop(key, None)
        if result.deleted_count == 0:
            raise KeyError(key)

    async def read_metadata(self) -> Mapping[str, JSONSerializable]:
        metadata = await self._metadata_collection()
        read = {str(d["id"]): d.get("value") for d in await metadata.find({})}
        self._metadata_seen = dict(read)
        return read
