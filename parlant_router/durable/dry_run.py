"""Databases that let a Parlant store open as it would, to see what its loaders do.

`RecordingDocumentDatabase` delegates everything and tells an observer the outcome of
each document the store's loaders load (for databases that run the loader on every
stored document, as Parlant's JSON and MongoDB adapters do).

`DryRunDocumentDatabase` writes nothing where the data lives. Each collection a store
opens is first planned by a `PlanSource` (which runs the store's loader on the stored
documents and tells the observer, without writing), then handed to the store as an
in-memory collection of Parlant's TransientDocumentDatabase: the store's open proceeds
(its metadata check, its indexes, its metadata update) and every write lands in memory.
The in-memory `metadata` collection holds the stored metadata documents, so that Parlant's
version check sees the real store version; the other collections start empty, which a
store's open does not read.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.persistence.document_database import (
    BaseDocument,
    DocumentCollection,
    DocumentDatabase,
    TDocument,
    identity_loader,
)

from parlant_router.durable.passthrough import Loader, PassThroughDocumentDatabase
from parlant_router.snowflake.database import SnowflakeDocumentDatabase
from parlant_router.snowflake.migration_report import (
    FAILED,
    MigrationObserver,
    outcome_of,
    version_key,
)

METADATA = "metadata"
"""The collection in which Parlant's DocumentStoreMigrationHelper keeps a store's version."""


def recording_loader(
    observer: MigrationObserver, collection: str, loader: Loader[TDocument]
) -> Loader[TDocument]:
    """`loader`, telling `observer` the outcome of each document it loads."""

    async def load(document: BaseDocument) -> TDocument | None:
        version = version_key(document)
        try:
            loaded = await loader(document)
        except Exception:
            observer.counted(collection, version, FAILED, 1)
            raise
        observer.counted(collection, version, outcome_of(document, loaded), 1)
        return loaded

    return load


class RecordingDocumentDatabase(PassThroughDocumentDatabase):
    """Delegates to `inner`; every loader it is given reports to `observer`."""

    def __init__(self, inner: DocumentDatabase, observer: MigrationObserver) -> None:
        super().__init__(inner)
        self._observer = observer

    def wrap_loader(self, loader: Loader[TDocument], collection: str) -> Loader[TDocument]:
        return recording_loader(self._observer, collection, loader)


class PlanSource(Protocol):
    """Where a dry run reads the stored documents of a store, writing nothing."""

    async def plan(self, name: str, loader: Loader[Any]) -> bool:
        """Tell the observer what `loader` would do to the documents of collection `name`;
        False when the collection does not exist."""
        ...

    async def documents(self, name: str) -> list[BaseDocument]:
        """The stored documents of an existing collection (read for `metadata` only)."""
        ...


class SnowflakeSource:
    """Plans with `SnowflakeDocumentDatabase.plan_migration` (its observer is told)."""

    def __init__(self, database: SnowflakeDocumentDatabase) -> None:
        self._database = database

    async def plan(self, name: str, loader: Loader[Any]) -> bool:
        if name == METADATA:
            # Parlant's metadata loader keeps every document as it is, so opening the
            # collection migrates nothing and writes nothing; it also tells the observer.
            try:
                await self._database.get_collection(name, BaseDocument, loader)
            except ValueError:
                return False
            return True
        return await self._database.plan_migration(name, loader)

    async def documents(self, name: str) -> list[BaseDocument]:
        collection = await self._database.get_collection(name, BaseDocument, identity_loader)
        return list(await collection.find({}))


class StoredDocumentsSource:
    """Plans over documents held in memory (a store file's collections), loader by loader."""

    def __init__(
        self, collections: Mapping[str, Sequence[BaseDocument]], observer: MigrationObserver
    ) -> None:
        self._collections = collections
        self._observer = observer

    async def plan(self, name: str, loader: Loader[Any]) -> bool:
        if name not in self._collections:
            return False
        load = recording_loader(self._observer, name, loader)
        for document in self._collections[name]:
            # A failed document raises after recording_loader has counted it. A copy: a
            # loader may edit its argument, and the stored one stays as read.
            with contextlib.suppress(Exception):
                await load(copy.deepcopy(document))
        return True

    async def documents(self, name: str) -> list[BaseDocument]:
        return copy.deepcopy(list(self._collections.get(name, [])))


class DryRunDocumentDatabase(DocumentDatabase):
    """Plans every collection a store opens from `source`; the store gets memory only."""

    def __init__(self, source: PlanSource) -> None:
        self._source = source
        self._memory = TransientDocumentDatabase()
        self._opened: dict[str, bool] = {}

    async def _open(self, name: str, schema: type[TDocument], loader: Loader[TDocument]) -> bool:
        """Plan `name` once (a store may open a collection twice, as Parlant's metadata
        helper does), and make its in-memory collection; whether it is stored."""
        if name in self._opened:
            return self._opened[name]
        stored = self._opened[name] = await self._source.plan(name, loader)
        collection: DocumentCollection[Any] = await self._memory.create_collection(name, schema)
        if stored and name == METADATA:
            for document in await self._source.documents(name):
                await collection.insert_one(document)
        return stored

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> DocumentCollection[TDocument]:
        self._opened[name] = False
        return await self._memory.create_collection(name, schema)

    async def get_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> DocumentCollection[TDocument]:
        if not await self._open(name, schema, document_loader):
            raise ValueError(f'Collection "{name}" does not exist')
        return await self._memory.get_collection(name, schema, document_loader)

    async def get_or_create_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> DocumentCollection[TDocument]:
        await self._open(name, schema, document_loader)
        return await self._memory.get_collection(name, schema, document_loader)

    async def delete_collection(self, name: str) -> None:
        self._opened.pop(name, None)
        await self._memory.delete_collection(name)
