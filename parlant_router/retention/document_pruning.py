"""Pruning a store through Parlant's `DocumentCollection` API: json, mongodb, transient and
custom backends.

A pass reads the expiring collection and its activity collection whole (a json store holds
them in memory already; on mongodb this reads them over the network) and decides in Python,
parsing each `creation_utc`. Deletions go a batch at a time, in the order of the SQL path
(`sql_pruning`): the expiring documents first, each only if nothing active names it now,
then their dependents, then, at the end of the pass, dependents older than the cutoff left
without a parent. A collection offering `delete_where_in(field, values)` (our json
collections: one save per batch instead of one per document) deletes a batch at once;
any other one document by document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from parlant.core.persistence.common import Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    DocumentCollection,
    DocumentDatabase,
    identity_loader,
)

from parlant_router.retention.rules import Deleted, collections_of, parse_utc, utc_text
from parlant_router.stores.catalog import RetentionRule

#: Expiring documents deleted per batch.
BATCH = 1_000

Document = Mapping[str, Any]


def _older(document: Document, before: datetime) -> bool:
    created = parse_utc(document.get("creation_utc"))
    return created is not None and created < before


class DocumentPruning:
    """Finds and deletes what `rule` lets go in `database`'s collections."""

    def __init__(self, database: DocumentDatabase, rule: RetentionRule) -> None:
        self.rule = rule
        self._database = database
        self._fields = dict(rule.dependents)

    async def _collection(self, name: str) -> DocumentCollection[BaseDocument] | None:
        try:
            return await self._database.get_collection(name, BaseDocument, identity_loader)
        except ValueError:
            return None  # Parlant's adapters: a collection the store never created

    async def _all(self, name: str) -> list[Document]:
        collection = await self._collection(name)
        return [] if collection is None else list(await collection.find({}))

    async def _expired(self, before: datetime) -> tuple[list[str], set[str]]:
        """The ids of the expired documents, and of every document of the collection."""
        last: dict[str, datetime] = {}
        if self.rule.activity is not None:
            field = self._fields[self.rule.activity]
            for document in await self._all(self.rule.activity):
                parent, created = document.get(field), parse_utc(document.get("creation_utc"))
                if isinstance(parent, str) and created is not None:
                    last[parent] = max(created, last.get(parent, created))
        parents = {
            str(document["id"]): document for document in await self._all(self.rule.collection)
        }
        expired = sorted(
            identifier
            for identifier, document in parents.items()
            if _older(document, before) and (identifier not in last or last[identifier] < before)
        )
        return expired, set(parents)

    def _orphans(
        self, documents: Sequence[Document], field: str, parents: set[str], before: datetime
    ) -> list[str]:
        """Ids of the `documents` older than `before` whose parent is not in `parents`."""
        return [
            str(document["id"])
            for document in documents
            if isinstance(document.get(field), str)
            and document[field] not in parents
            and _older(document, before)
        ]

    async def count(self, before: datetime) -> dict[str, int]:
        """Documents of each collection a prune at `before` would delete now (nothing is)."""
        expired, parents = await self._expired(before)
        counts = {self.rule.collection: len(expired)}
        doomed = set(expired)
        for collection, field in self.rule.dependents:
            documents = await self._all(collection)
            named = sum(1 for d in documents if d.get(field) in doomed)
            counts[collection] = named + len(self._orphans(documents, field, parents, before))
        return counts

    async def prune(self, before: datetime, deleted: Deleted | None = None) -> dict[str, int]:
        """Delete what expired `before`; the documents deleted per collection."""
        counts = dict.fromkeys(collections_of(self.rule), 0)
        expired, _ = await self._expired(before)
        for start in range(0, len(expired), BATCH):
            batch = await self._still_expired(expired[start : start + BATCH], before)
            counts[self.rule.collection] += await self._delete(self.rule.collection, "id", batch)
            if deleted is not None:
                deleted(self.rule.collection, batch)
            for collection, field in self.rule.dependents:
                counts[collection] += await self._delete(collection, field, batch)
                if deleted is not None:
                    deleted(collection, batch)
        # Read after the deletions above: the sweep sees what they left.
        parents = {str(d["id"]) for d in await self._all(self.rule.collection)}
        for collection, field in self.rule.dependents:
            orphans = self._orphans(await self._all(collection), field, parents, before)
            counts[collection] += await self._delete(collection, "id", orphans)
        return counts

    async def _still_expired(self, ids: Sequence[str], before: datetime) -> list[str]:
        """`ids` less those that became active since they were found."""
        if self.rule.activity is None or not ids:
            return list(ids)
        collection = await self._collection(self.rule.activity)
        if collection is None:
            return list(ids)
        field = self._fields[self.rule.activity]
        active = await collection.find(
            cast(
                Where,
                {
                    "$and": [
                        {field: {"$in": list(ids)}},
                        {"creation_utc": {"$gte": utc_text(before)}},
                    ]
                },
            )
        )
        revived = {document.get(field) for document in active}
        return [identifier for identifier in ids if identifier not in revived]

    async def _delete(self, name: str, field: str, values: Iterable[str]) -> int:
        wanted = list(values)
        collection = await self._collection(name)
        if collection is None or not wanted:
            return 0
        bulk = getattr(collection, "delete_where_in", None)
        if bulk is not None:
            return int(await bulk(field, wanted))
        deleted = 0
        for document in await collection.find(cast(Where, {field: {"$in": wanted}})):
            result = await collection.delete_one({"id": {"$eq": document["id"]}})
            deleted += result.deleted_count
        return deleted
