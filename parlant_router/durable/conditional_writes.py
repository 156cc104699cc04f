"""Writes that depend on what is stored: the two that several server processes need.

Parlant's `DocumentCollection` has no compare-and-set: a store reads a document, computes
the new one and writes it back, and relies on its in-process lock for the read and the write
to see the same document. That holds with one server process; with several on one database
(`server.replicas: many`) another process can write in between, and its write is lost
(metadata keys, labels) or duplicated (two events with one offset).

A collection that can do better offers these methods (duck-typed, see `ConditionalWrites`):

- `update_with(filters, change)`: apply `change(current_document)` (the fields to set) to the
  first document matching `filters`, atomically: if another writer changes the document
  between the read and the write, read again and apply `change` to what is there now;
- `insert_unless(document, conflict)`: insert `document` unless a document matching
  `conflict` exists, as one atomic step; False when one does (nothing written).

`SnowflakeDocumentCollection` implements both in SQL (a guarded UPDATE, a MERGE); the
pass-through wrappers forward them. For any other collection the functions below fall back
to a read and a write, which is exact only under the caller's own lock in one process (what
`server.replicas: one` promises). `server.replicas: many` needs the sessions store on a
snowflake backend (checked at load), so its writes always reach the SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast, runtime_checkable

from parlant.core.persistence.common import Where
from parlant.core.persistence.document_database import (
    DocumentCollection,
    TDocument,
    UpdateResult,
)

Change = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Given the current document, the fields to set on it."""


@runtime_checkable
class ConditionalWrites(Protocol):
    """What a collection offers when it can write conditionally (see the module docstring)."""

    async def update_with(self, filters: Where, change: Change) -> UpdateResult[Any]: ...

    async def insert_unless(self, document: Any, conflict: Where) -> bool: ...


async def update_with(
    collection: DocumentCollection[TDocument], filters: Where, change: Change
) -> UpdateResult[TDocument]:
    """`collection.update_with(filters, change)`, or a read and a write where it has none."""
    if isinstance(collection, ConditionalWrites):
        return cast(UpdateResult[TDocument], await collection.update_with(filters, change))
    current = await collection.find_one(filters)
    if current is None:
        return UpdateResult(True, 0, 0, None)
    return await collection.update_one(filters, cast(TDocument, dict(change(current))))


async def insert_unless(
    collection: DocumentCollection[TDocument], document: TDocument, conflict: Where
) -> bool:
    """`collection.insert_unless(document, conflict)`, or a read and an insert."""
    if isinstance(collection, ConditionalWrites):
        return await collection.insert_unless(document, conflict)
    if await collection.find_one(conflict) is not None:
        return False
    await collection.insert_one(document)
    return True


__all__ = [
    "Change",
    "ConditionalWrites",
    "insert_unless",
    "update_with",
]
