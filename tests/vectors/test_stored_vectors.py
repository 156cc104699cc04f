"""`StoredVectorDatabase` on the Snowflake emulator and on a JSON file, against Parlant's
`TransientVectorDatabase`: the same documents, filters, orders and distances, bit for bit;
restarts that embed nothing; an embedder change that embeds once; several vector documents
under one id; two processes' collections following each other through the change feed."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypedDict

import pytest
from lagom import Container
from parlant.adapters.db.json_file import JSONFileDocumentDatabase
from parlant.adapters.vector_db.transient import TransientVectorDatabase
from parlant.core.nlp.embedding import (
    Embedder,
    EmbedderFactory,
    EmbeddingResult,
    NullEmbeddingCache,
)
from parlant.core.nlp.tokenization import EstimatingTokenizer, ZeroEstimatingTokenizer
from parlant.core.persistence.common import ObjectId, Where
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.persistence.vector_database import BaseDocument, VectorCollection
from parlant.core.tracer import LocalTracer

from parlant_router.snowflake.change_feed import ChangeFeed
from parlant_router.vectors.database import StoredVectorDatabase
from tests.support.databases import OpenDatabase
from tests.support.logger import RecordingLogger

pytestmark = pytest.mark.asyncio


class Term(TypedDict, total=False):
    id: ObjectId
    version: str
    content: str
    checksum: str
    group: str
    rank: int


class GridEmbedder(Embedder):
    """Small vectors of small integers taken from the text's hash: equal texts tie, and so
    do some different ones (colinear vectors), which exercises the order of ties."""

    def __init__(self, model: str = "grid-1", dimensions: int = 4) -> None:
        self.model = model
        self._dimensions = dimensions
        self.texts: list[str] = []

    async def embed(self, texts: list[str], hints: Mapping[str, Any] = {}) -> EmbeddingResult:
        self.texts.extend(texts)
        return EmbeddingResult(vectors=[self.vector(t) for t in texts])

    def vector(self, text: str) -> list[float]:
        digest = hashlib.sha256(f"{self.model}:{text}".encode()).digest()
        return [float(digest[i] % 3 + 1) for i in range(self._dimensions)]

    @property
    def id(self) -> str:
        return self.model

    @property
    def max_tokens(self) -> int:
        return 8192

    @property
    def tokenizer(self) -> EstimatingTokenizer:
        return ZeroEstimatingTokenizer()

    @property
    def dimensions(self) -> int:
        return self._dimensions


def factory(embedder: GridEmbedder) -> EmbedderFactory:
    container = Container()
    container[GridEmbedder] = embedder
    return EmbedderFactory(container)


async def keep(document: BaseDocument) -> Term | None:
    return document  # type: ignore[return-value]


def term(identifier: str, content: str, group: str, rank: int) -> Term:
    return Term(
        id=ObjectId(identifier),
        version="0.1.0",
        content=content,
        checksum=hashlib.md5(content.encode()).hexdigest(),
        group=group,
        rank=rank,
    )


async def open_stored(
    documents: DocumentDatabase,
    embedder: GridEmbedder,
    logger: RecordingLogger,
    *,
    keep_embeddings: bool = True,
    announcements: ChangeFeed | None = None,
) -> VectorCollection[Term]:
    database = StoredVectorDatabase(
        documents,
        logger=logger,
        tracer=LocalTracer(),
        embedder_factory=factory(embedder),
        store="glossary",
        keep_embeddings=keep_embeddings,
        announcements=announcements,
    )
    return await database.get_or_create_collection("terms", Term, GridEmbedder, keep)


async def open_transient(embedder: GridEmbedder, logger: RecordingLogger) -> VectorCollection[Term]:
    database = TransientVectorDatabase(
        logger, LocalTracer(), factory(embedder), lambda: NullEmbeddingCache()
    )
    return await database.get_or_create_collection("terms", Term, GridEmbedder, keep)


def random_filters(rng: random.Random) -> Where:
    choice = rng.randrange(5)
    if choice == 0:
        return {}
    if choice == 1:
        return {"group": {"$eq": rng.choice("abc")}}
    if choice == 2:
        return {"id": {"$in": [f"t{rng.randrange(40)}" for _ in range(rng.randrange(1, 8))]}}
    if choice == 3:
        return {"rank": {"$gte": rng.randrange(10)}}
    return {"$or": [{"group": {"$eq": "a"}}, {"rank": {"$lt": 3}}]}


WORDS = ["refund", "card", "loan", "fee", "limit", "card fee", "refund card"]


async def apply_random_writes(
    rng: random.Random,
    collections: Sequence[VectorCollection[Term]],
    count: int,
    next_id: list[int],
) -> None:
    """The same random inserts, updates and deletes on each collection."""
    for _ in range(count):
        action = rng.random()
        if action < 0.6:
            new = term(f"t{next_id[0]}", rng.choice(WORDS), rng.choice("abc"), rng.randrange(10))
            next_id[0] += 1
            for c in collections:
                await c.insert_one(dict(new))  # type: ignore[arg-type]
        elif action < 0.8:
            target: Where = {"id": {"$eq": f"t{rng.randrange(next_id[0] + 1)}"}}
            found = await collections[0].find_one(target)
            if found is None:
                continue
            # Parlant's stores update with whole documents.
            changed = term(str(found["id"]), rng.choice(WORDS), rng.choice("abc"), 5)
            for c in collections:
                await c.update_one(target, dict(changed))  # type: ignore[arg-type]
        else:
            target = {"id": {"$eq": f"t{rng.randrange(next_id[0] + 1)}"}}
            for c in collections:
                await c.delete_one(target)


async def assert_same_answers(
    rng: random.Random, ours: VectorCollection[Term], theirs: VectorCollection[Term]
) -> None:
    for _ in range(12):
        filters = random_filters(rng)
        assert await ours.find(filters) == await theirs.find(filters), filters
        query = rng.choice([*WORDS, "anything else"])
        k = rng.randrange(1, 12)
        mine = await ours.find_similar_documents(filters, query, k)
        expected = await theirs.find_similar_documents(filters, query, k)
        assert [(r.document, r.distance) for r in mine] == [
            (r.document, r.distance) for r in expected
        ], (filters, query, k)


@asynccontextmanager
async def json_database(path: Path, logger: RecordingLogger) -> AsyncIterator[DocumentDatabase]:
    async with JSONFileDocumentDatabase(logger, path) as database:
        yield database


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_searches_match_parlants_transient_database_on_the_emulator(
    open_database: OpenDatabase, logger: RecordingLogger, seed: int
) -> None:
    rng = random.Random(seed)
    embedder = GridEmbedder()
    next_id = [0]
    async with open_database() as documents:
        ours = await open_stored(documents, embedder, logger)
        theirs = await open_transient(GridEmbedder(), logger)
        for _ in range(4):
            await apply_random_writes(rng, [ours, theirs], 15, next_id)
            await assert_same_answers(rng, ours, theirs)
        assert len(await ours.find({})) > 5

    # A restart reads what was stored: the same answers, and nothing embedded.
    embedded_before = len(embedder.texts)
    async with open_database() as documents:
        reopened = await open_stored(documents, embedder, logger)
        assert len(embedder.texts) == embedded_before
        await assert_same_answers(rng, reopened, theirs)
        await apply_random_writes(rng, [reopened, theirs], 10, next_id)
        await assert_same_answers(rng, reopened, theirs)


async def test_searches_match_on_a_json_file_and_a_rebuilt_mirror(
    tmp_path: Path, logger: RecordingLogger
) -> None:
    rng = random.Random(7)
    next_id = [0]
    theirs = await open_transient(GridEmbedder(), logger)
    for keep_embeddings in (True, False):
        path = tmp_path / f"vectors-{keep_embeddings}.json"
        embedder = GridEmbedder()
        async with json_database(path, logger) as documents:
            ours = await open_stored(documents, embedder, logger, keep_embeddings=keep_embeddings)
            if keep_embeddings:
                await apply_random_writes(rng, [ours, theirs], 30, next_id)
            else:
                for document in await theirs.find({}):
                    await ours.insert_one(dict(document))  # type: ignore[arg-type]
            await assert_same_answers(rng, ours, theirs)
        embedder.texts.clear()
        async with json_database(path, logger) as documents:
            reopened = await open_stored(
                documents, embedder, logger, keep_embeddings=keep_embeddings
            )
            embedded_at_open = sorted(embedder.texts)
            await assert_same_answers(rng, reopened, theirs)
        # Stored embeddings: nothing embedded again; a mirror: every distinct text, once.
        distinct = {d["content"] for d in await theirs.find({})}
        assert embedded_at_open == ([] if keep_embeddings else sorted(distinct))


async def test_a_new_embedder_embeds_each_text_once_and_says_so(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    contents = ["refund", "card", "refund", "loan fee"]
    async with open_database() as documents:
        first = await open_stored(documents, GridEmbedder("grid-1"), logger)
        for i, content in enumerate(contents):
            await first.insert_one(term(f"t{i}", content, "a", i))

    changed = GridEmbedder("grid-2", dimensions=6)
    async with open_database() as documents:
        ours = await open_stored(documents, changed, logger)
        assert sorted(changed.texts) == sorted(set(contents))
        lines = [m for level, m in logger.records if m.startswith("Embedded ")]
        assert lines[-1] == (
            "Embedded 4 vector(s) of 'terms' (3 text(s) sent to the embedder; stored from "
            "GridEmbedder:grid-1, now GridEmbedder:grid-2 (6 dimensions))"
        )
        theirs = await open_transient(GridEmbedder("grid-2", dimensions=6), logger)
        for i, content in enumerate(contents):
            await theirs.insert_one(term(f"t{i}", content, "a", i))
        await assert_same_answers(random.Random(3), ours, theirs)

    changed.texts.clear()
    async with open_database() as documents:
        await open_stored(documents, changed, logger)
        assert changed.texts == []


async def test_every_vector_document_under_one_id_is_kept_searched_and_deleted(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    # A canned response writes its value and each signal under the response's id.
    contents = ["your refund is on its way", "where is my refund", "refund status"]
    async with open_database() as documents:
        ours = await open_stored(documents, GridEmbedder(), logger)
        for content in contents:
            await ours.insert_one(term("r1", content, "a", 1))
        await ours.insert_one(term("r2", "card fee", "b", 1))
        # The same document again (an SDK program's startup): stored once.
        await ours.insert_one(term("r1", contents[0], "a", 1))
        assert sorted(d["content"] for d in await ours.find({"id": {"$eq": "r1"}})) == sorted(
            contents
        )
        found = await ours.find_similar_documents({"id": {"$eq": "r1"}}, "refund status", 10)
        assert sorted(r.document["content"] for r in found) == sorted(contents)
        assert found[0].document["content"] == "refund status"
        assert found[0].distance == pytest.approx(0.0, abs=1e-6)

    async with open_database() as documents:
        reopened = await open_stored(documents, GridEmbedder(), logger)
        assert len(await reopened.find({"id": {"$eq": "r1"}})) == 3
        # As Parlant deletes a canned response: one delete_one per vector document it found.
        for _ in await reopened.find({"id": {"$eq": "r1"}}):
            assert (await reopened.delete_one({"id": {"$eq": "r1"}})).deleted_count == 1
        assert await reopened.find({"id": {"$eq": "r1"}}) == []

    async with open_database() as documents:
        again = await open_stored(documents, GridEmbedder(), logger)
        assert [d["id"] for d in await again.find({})] == ["r2"]


async def test_rows_of_the_earlier_mirror_are_embedded_once_and_kept(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    async with open_database() as documents:
        mirror = await documents.get_or_create_collection("vectors_terms", Term, keep)  # type: ignore[arg-type]
        await mirror.insert_one(term("t1", "refund", "a", 1))  # type: ignore[arg-type]
        await mirror.insert_one(term("t2", "card fee", "b", 2))  # type: ignore[arg-type]
    embedder = GridEmbedder()
    async with open_database() as documents:
        ours = await open_stored(documents, embedder, logger)
        assert sorted(embedder.texts) == ["card fee", "refund"]
        assert [d["id"] for d in await ours.find({})] == ["t1", "t2"]
        await ours.delete_one({"id": {"$eq": "t1"}})
    embedder.texts.clear()
    async with open_database() as documents:
        ours = await open_stored(documents, embedder, logger)
        assert embedder.texts == []
        assert [d["content"] for d in await ours.find({})] == ["card fee"]


@asynccontextmanager
async def two_processes(
    open_database: OpenDatabase, logger: RecordingLogger
) -> AsyncIterator[
    tuple[Any, ChangeFeed, VectorCollection[Term], Any, ChangeFeed, VectorCollection[Term]]
]:
    """Two processes' databases, change feeds and collections on one emulator schema:
    (database, feed, collection) of a, then of b."""
    async with open_database() as documents_a, open_database() as documents_b:
        feed_a = ChangeFeed(documents_a, logger, max_staleness=60)
        feed_b = ChangeFeed(documents_b, logger, max_staleness=60)
        async with feed_a, feed_b:
            a = await open_stored(documents_a, GridEmbedder(), logger, announcements=feed_a)
            b = await open_stored(documents_b, GridEmbedder(), logger, announcements=feed_b)
            yield documents_a, feed_a, a, documents_b, feed_b, b


async def test_collections_of_two_processes_follow_each_other_through_the_feed(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    async with two_processes(open_database, logger) as (
        documents_a,
        feed_a,
        a,
        documents_b,
        feed_b,
        b,
    ):
        await a.insert_one(term("t1", "refund", "a", 1))
        await a.insert_one(term("t2", "card", "a", 2))
        # Searches and listings answer from memory, without a statement: until the feed
        # tells b, it has nothing to rank or list.
        sent = documents_b.statements_sent
        assert await b.find_similar_documents({}, "refund", 10) == []
        assert await b.find({"$or": [{"group": {"$eq": "a"}}, {"rank": {"$lt": 3}}]}) == []
        assert documents_b.statements_sent == sent
        await feed_a.tick()
        await feed_b.tick()
        found = await b.find_similar_documents({}, "refund", 10)
        assert sorted(r.document["id"] for r in found) == ["t1", "t2"]

        await b.update_one({"id": {"$eq": "t1"}}, term("t1", "loan", "c", 9))
        await b.delete_one({"id": {"$eq": "t2"}})
        await feed_b.tick()
        await feed_a.tick()
        statements = documents_a.statements_sent
        found = await a.find_similar_documents({}, "loan", 10)
        assert [(r.document["content"], r.document["group"]) for r in found] == [("loan", "c")]
        # One read of the rows the feed named; a search after it sends nothing.
        assert documents_a.statements_sent - statements == 1
        await a.find_similar_documents({}, "loan", 10)
        assert documents_a.statements_sent - statements == 1


async def test_finds_and_writes_read_the_table_before_the_feed_tells(
    open_database: OpenDatabase, logger: RecordingLogger
) -> None:
    # Parlant updates a canned response by finding its vector documents, deleting each and
    # inserting new ones: b must find what a wrote, even before the feed tells b of it, or
    # a's rows would stay behind for good.
    async with two_processes(open_database, logger) as (
        _documents_a,
        feed_a,
        a,
        _documents_b,
        feed_b,
        b,
    ):
        assert await b.find({}) == []
        for content in ("ships tomorrow", "shipping time"):
            await a.insert_one(term("r1", content, "a", 1))
        old = await b.find({"id": {"$eq": "r1"}})
        assert sorted(d["content"] for d in old) == ["shipping time", "ships tomorrow"]
        for _ in old:
            assert (await b.delete_one({"id": {"$eq": "r1"}})).deleted_count == 1
        await b.insert_one(term("r1", "ships within two days", "a", 1))
        await a.insert_one(term("r1", "ships within two days", "a", 1))  # stored already
        async with open_database() as documents:
            fresh = await open_stored(documents, GridEmbedder(), logger)
            assert [d["content"] for d in await fresh.find({})] == ["ships within two days"]
        await feed_b.tick()
        await feed_a.tick()
        found = await a.find_similar_documents({}, "shipping", 10)
        assert [r.document["content"] for r in found] == ["ships within two days"]


async def test_a_write_that_does_not_return_leaves_memory_to_be_read_again(
    open_database: OpenDatabase, logger: RecordingLogger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The row reached the table but its answer was lost (or the task was cancelled after):
    # memory must not miss it, or the same document inserted again would be stored twice.
    async with open_database() as documents:
        ours = await open_stored(documents, GridEmbedder(), logger)
        rows = await documents.get_collection("vectors_terms", dict, keep)  # type: ignore[arg-type]
        insert = rows.insert_one

        async def lost_answer(document: Any) -> Any:
            await insert(document)
            raise ConnectionError("the answer was lost")

        monkeypatch.setattr(rows, "insert_one", lost_answer)
        with pytest.raises(ConnectionError):
            await ours.insert_one(term("t1", "refund", "a", 1))
        monkeypatch.undo()
        assert [d["id"] for d in await ours.find({})] == ["t1"]
        await ours.insert_one(term("t1", "refund", "a", 1))
        assert [d["id"] for d in await ours.find({})] == ["t1"]
        found = await ours.find_similar_documents({}, "refund", 10)
        assert [r.document["id"] for r in found] == ["t1"]


def test_grid_embedder_makes_ties() -> None:
    # The differential tests are only as strong as their ties: check that they have some.
    embedder = GridEmbedder()
    vectors = [tuple(embedder.vector(w)) for w in WORDS * 2]
    assert len(set(vectors)) < len(vectors)
