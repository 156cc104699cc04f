"""One vector collection: rows kept in a document collection, searched in process.

Reads, filters and similarity are answered from memory (no statement per search); every
write goes to the rows collection first, then to memory, so a failed write changes
nothing. Results are Parlant's transient database's for the same embeddings (see
`similarity`), with one difference on purpose: several vector documents under one id (a
canned response's value and its signals) are all kept and all searched, where the
transient database keeps the last one written for each id; and a vector document equal to
one stored is not stored twice (an SDK program creates its entities again at every start).

Other processes (`server.replicas: many`): each write is announced on the backend's change
feed under the scope `<store>.vectors_<collection>`, partition the row's key; a process
told of a row reads it again (one statement for all the rows told since) before its next
read, so searches and listings lag another process's writes by at most `max_staleness`,
and send no statement (the engine lists glossary terms at every turn). Lookups of one
entity (a `find` or `find_one` whose filter is one field's `$eq`: what Parlant's stores do
before they update or delete an entity's vector documents) and every write read the rows
their filters match from the table first (one statement; Parlant's filters run on the rows
as they are, see `rows`), so an entity's vector documents are found, replaced and deleted
as they are stored, whichever process wrote them last. A process that missed
announcements (told "everything") reads the whole collection again.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, Protocol, cast

from parlant.core.loggers import Logger
from parlant.core.nlp.embedding import Embedder
from parlant.core.persistence.common import Where, ensure_is_total, matches_filters
from parlant.core.persistence.document_database import DocumentCollection
from parlant.core.persistence.vector_database import (
    BaseVectorCollection,
    DeleteResult,
    InsertResult,
    SimilarDocumentResult,
    TDocument,
    UpdateResult,
)
from parlant.core.tracer import Tracer

from parlant_router.vectors.rows import (
    EmbeddingKey,
    Vector,
    VectorRow,
    content_hash,
    embedder_identity,
    read_row,
    row_filters,
)
from parlant_router.vectors.similarity import SimilarityMatrix

#: Texts per call to the embedder when a collection embeds what it has not (at open).
EMBED_BATCH = 64
#: Rows written back at once after such an embedding (the connection pool queues the rest).
WRITES_AT_ONCE = 16
#: More rows announced than this are read again with the whole collection (one statement
#: either way; this keeps the statement's id list far under Snowflake's 1 MB text limit).
MAX_KEYS_READ_AGAIN = 1000


class ChangeAnnouncements(Protocol):
    """What a collection needs of the change feed (`snowflake.change_feed.ChangeFeed`)."""

    def record(self, scope: str, partition: str | None) -> None: ...
    def subscribe(self, scope: str, subscriber: Callable[[str | None], None]) -> None: ...


class StoredVectorCollection(BaseVectorCollection[TDocument], Generic[TDocument]):
    """A Parlant `VectorCollection` over a rows collection (see `rows`)."""

    def __init__(
        self,
        *,
        name: str,
        schema: type[TDocument],
        rows: DocumentCollection[Any],
        embedder: Embedder,
        keep_embeddings: bool,
        logger: Logger,
        tracer: Tracer,
    ) -> None:
        super().__init__(tracer)
        self.name = name
        self._schema = schema
        self._rows = rows
        self._embedder = embedder
        self._keep_embeddings = keep_embeddings
        self._logger = logger
        self._lock = asyncio.Lock()
        self._identity = embedder_identity(embedder)
        self._memory: list[VectorRow] = []
        self._matrix = SimilarityMatrix(embedder.dimensions)
        # Embeddings computed or read in this process, by what they were computed from:
        # a content written again (an update deletes and re-inserts) is not embedded again.
        self._known: dict[EmbeddingKey, Vector] = {}
        self._last_seq = 0
        self._stale_keys: set[str] = set()
        self._stale_all = False
        self._announce: Callable[[str], None] | None = None

    # Opening and following other processes ------------------------------------------------

    async def load(self) -> None:
        """Read every row; embed, once, those whose embedding is missing or stale."""
        stored = await self._rows.find({})
        self._memory = sorted((read_row(s) for s in stored), key=_order)
        self._last_seq = max((r.seq for r in self._memory), default=self._last_seq)
        await self._embed_missing()
        self._matrix.reset([cast(Vector, r.embedding) for r in self._memory])

    def follow(self, announcements: ChangeAnnouncements, scope: str) -> None:
        """Announce this process's writes on `scope` and read again what others announce."""
        announcements.subscribe(scope, self._told)
        self._announce = lambda key: announcements.record(scope, key)

    def _told(self, key: str | None) -> None:
        if key is None:
            self._stale_all = True
        else:
            self._stale_keys.add(key)

    async def _catch_up(self) -> None:
        if not (self._stale_all or self._stale_keys):
            return
        async with self._lock:
            if self._stale_all or len(self._stale_keys) > MAX_KEYS_READ_AGAIN:
                self._stale_all = False
                self._stale_keys.clear()
                await self.load()
                return
            keys, self._stale_keys = self._stale_keys, set()
            stored = await self._rows.find({"id": {"$in": sorted(keys)}})
            for key in keys:
                position = self._position_of(key)
                if position is not None:
                    self._remove(position)
            for row in (read_row(s) for s in stored):
                embedded = await self._embedded(row)
                self._place(embedded)

    # Embedding ------------------------------------------------------------------------------

    def _key(self, content: str) -> EmbeddingKey:
        return EmbeddingKey(content_hash(content), self._identity, self._embedder.dimensions)

    async def _embedded(self, row: VectorRow) -> VectorRow:
        key = self._key(row.content)
        if not row.wants(key):
            assert row.embedding is not None
            self._known.setdefault(key, row.embedding)
            return row
        vector = self._known.get(key)
        if vector is None:
            result = await self._embedder.embed([row.content])
            vector = self._known[key] = _as_vector(result.vectors[0])
        return row.with_embedding(key, vector)

    async def _embed_missing(self) -> None:
        """Embed the rows of memory whose embedding is missing or stale, in batches, and
        store what was embedded (one write per row: this happens once per content and model)."""
        wanting: list[tuple[int, VectorRow, EmbeddingKey]] = []
        for position, row in enumerate(self._memory):
            key = self._key(row.content)
            if row.wants(key):
                wanting.append((position, row, key))
            elif row.embedding is not None:
                self._known.setdefault(key, row.embedding)
        earlier = [p for p, row in enumerate(self._memory) if row.earlier_layout]
        if not wanting and not earlier:
            return
        texts = sorted({row.content for _, row, key in wanting if key not in self._known})
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start : start + EMBED_BATCH]
            result = await self._embedder.embed(batch)
            for text, vector in zip(batch, result.vectors, strict=True):
                self._known[self._key(text)] = _as_vector(vector)
        stale = [row for _, row, _ in wanting if row.embedding is not None]
        for position, row, key in wanting:
            self._memory[position] = row.with_embedding(key, self._known[key])
        # What was embedded is stored (kept embeddings), and rows of the earlier layout are
        # written in this one either way.
        to_write = [p for p, _, _ in wanting] if self._keep_embeddings else earlier
        writes = [
            self._rows.update_one(
                {"id": {"$eq": self._memory[p].key}},
                self._memory[p].stored(keep_embedding=self._keep_embeddings),
                upsert=True,
            )
            for p in to_write
        ]
        for start in range(0, len(writes), WRITES_AT_ONCE):
            await asyncio.gather(*writes[start : start + WRITES_AT_ONCE])
        for p in to_write:
            self._memory[p] = replace(self._memory[p], earlier_layout=False)
        if not wanting:
            return
        if not self._keep_embeddings:
            reason = "vectors are kept in memory only, rebuilt at each start"
        elif stale:
            models = sorted({str(r.embedded_as.embedder) for r in stale if r.embedded_as})
            reason = (
                f"stored from {', '.join(models) or 'other content'}, now "
                f"{self._identity} ({self._embedder.dimensions} dimensions)"
            )
        else:
            reason = "stored without an embedding"
        self._logger.info(
            f"Embedded {len(wanting)} vector(s) of '{self.name}' ({len(texts)} text(s) sent "
            f"to the embedder; {reason})"
        )

    # Memory ---------------------------------------------------------------------------------

    def _position_of(self, key: str) -> int | None:
        return next((i for i, r in enumerate(self._memory) if r.key == key), None)

    def _first_match(self, filters: Where) -> int | None:
        return next(
            (i for i, r in enumerate(self._memory) if matches_filters(filters, r.document)),
            None,
        )

    def _place(self, row: VectorRow) -> None:
        assert row.embedding is not None
        position = bisect.bisect(self._memory, _order(row), key=_order)
        self._memory.insert(position, row)
        self._matrix.insert(position, row.embedding)
        self._last_seq = max(self._last_seq, row.seq)

    def _remove(self, position: int) -> VectorRow:
        self._matrix.delete(position)
        return self._memory.pop(position)

    async def _store(self, write: Awaitable[object], key: str) -> None:
        """Run one write of the rows collection. When it does not return (it failed, or the
        task was cancelled), whether it reached the table is unknown: memory is read again
        before its next use, and other processes are told of the row all the same."""
        try:
            await write
        except BaseException:
            self._stale_all = True
            self._written(key)
            raise

    def _written(self, key: str) -> None:
        if self._announce is not None:
            self._announce(key)

    def _new_row(self, document: Mapping[str, Any]) -> VectorRow:
        row = VectorRow.new(document)
        # Insertion order even when the clock does not move between two writes.
        seq = max(row.seq, self._last_seq + 1)
        self._last_seq = seq
        return VectorRow(row.key, seq, row.document, None, None)

    # Parlant's VectorCollection -------------------------------------------------------------

    async def _read_through(self, filters: Where) -> None:
        """Under `replicas: many`, replace what memory holds of the rows `filters` match by
        what the table holds (call under the lock)."""
        if self._announce is None:
            return
        fetched = [
            await self._embedded(read_row(s)) for s in await self._rows.find(row_filters(filters))
        ]
        keys = {r.key for r in fetched}
        for position in reversed(range(len(self._memory))):
            row = self._memory[position]
            if row.key in keys or matches_filters(filters, row.document):
                self._remove(position)
        for row in fetched:
            self._place(row)

    async def find(self, filters: Where) -> Sequence[TDocument]:
        await self._catch_up()
        if _entity_lookup(filters):
            async with self._lock:
                await self._read_through(filters)
        return [
            cast(TDocument, dict(r.document))
            for r in self._memory
            if matches_filters(filters, r.document)
        ]

    async def find_one(self, filters: Where) -> TDocument | None:
        await self._catch_up()
        if _entity_lookup(filters):
            async with self._lock:
                await self._read_through(filters)
        position = self._first_match(filters)
        if position is None:
            return None
        return cast(TDocument, dict(self._memory[position].document))

    async def insert_one(self, document: TDocument) -> InsertResult:
        ensure_is_total(document, self._schema)
        await self._catch_up()
        async with self._lock:
            await self._read_through({"id": {"$eq": document["id"]}})
            if any(r.document == document for r in self._memory):
                # An SDK program creates its entities again at every start, with the same
                # (content-derived) ids: their vector documents are stored already.
                return InsertResult(acknowledged=True)
            row = await self._embedded(self._new_row(document))
            await self._store(
                self._rows.insert_one(row.stored(keep_embedding=self._keep_embeddings)), row.key
            )
            self._place(row)
            self._written(row.key)
        return InsertResult(acknowledged=True)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        await self._catch_up()
        async with self._lock:
            await self._read_through(filters)
            position = self._first_match(filters)
            if position is not None:
                before = self._memory[position]
                row = await self._embedded(before.with_document({**before.document, **params}))
                await self._store(
                    self._rows.update_one(
                        {"id": {"$eq": row.key}}, row.stored(keep_embedding=self._keep_embeddings)
                    ),
                    row.key,
                )
                self._memory[position] = row
                assert row.embedding is not None
                self._matrix.replace(position, row.embedding)
                self._written(row.key)
                return UpdateResult(
                    acknowledged=True,
                    matched_count=1,
                    modified_count=1,
                    updated_document=cast(TDocument, dict(row.document)),
                )
        if upsert:
            ensure_is_total(params, self._schema)
            await self.insert_one(params)
            return UpdateResult(
                acknowledged=True, matched_count=0, modified_count=0, updated_document=params
            )
        return UpdateResult(
            acknowledged=True, matched_count=0, modified_count=0, updated_document=None
        )

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        await self._catch_up()
        async with self._lock:
            await self._read_through(filters)
            position = self._first_match(filters)
            if position is None:
                return DeleteResult(acknowledged=True, deleted_count=0, deleted_document=None)
            key = self._memory[position].key
            await self._store(self._rows.delete_one({"id": {"$eq": key}}), key)
            row = self._remove(position)
            self._written(row.key)
        return DeleteResult(
            acknowledged=True,
            deleted_count=1,
            deleted_document=cast(TDocument, dict(row.document)),
        )

    async def do_find_similar_documents(
        self,
        filters: Where,
        query: str,
        k: int,
        hints: Mapping[str, Any] = {},
    ) -> Sequence[SimilarDocumentResult[TDocument]]:
        # As Parlant's transient database: every match, best first; `k` does not cut (the
        # stores cut after merging the results of a message's query chunks).
        await self._catch_up()
        if not self._memory:
            return []
        result = await self._embedder.embed([query], hints)
        vector = _as_vector(result.vectors[0])
        memory = self._memory
        candidates = [i for i, r in enumerate(memory) if matches_filters(filters, r.document)]
        return [
            SimilarDocumentResult(
                document=cast(TDocument, dict(memory[i].document)),
                distance=1 - score,
            )
            for i, score in self._matrix.ranked(candidates, vector)
        ]


def _entity_lookup(filters: Where) -> bool:
    """Whether `filters` pin one entity: a single field compared with `$eq` (a listing's
    filters are empty, or `$and`/`$or`/`$ne`/`$in` combinations)."""
    if len(filters) != 1:
        return False
    field, condition = next(iter(filters.items()))
    return not field.startswith("$") and isinstance(condition, dict) and list(condition) == ["$eq"]


def _order(row: VectorRow) -> tuple[int, str]:
    return (row.seq, row.key)


def _as_vector(values: Sequence[float]) -> Vector:
    import numpy as np

    return np.array(values, dtype=np.float32)
