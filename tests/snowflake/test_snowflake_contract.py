"""The DocumentDatabase contract, run against Parlant's TransientDocumentDatabase (the
reference) and against ours on the emulator: both must give the same, hand-checked answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypedDict, cast

import pytest
import pytest_asyncio
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.common import Version
from parlant.core.persistence.common import Cursor, ObjectId, SortDirection, Where
from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
    identity_loader,
)

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from tests.support.logger import RecordingLogger

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase


class Item(TypedDict, total=False):
    id: ObjectId
    version: Version.String
    creation_utc: str
    name: str
    n: int


def item(identifier: str, creation_utc: str, name: str, n: int) -> Item:
    return Item(
        id=ObjectId(identifier),
        version=Version.String("1.0.0"),
        creation_utc=creation_utc,
        name=name,
        n=n,
    )


# Equal creation times on purpose: the id breaks the tie, in both directions.
ITEMS = [
    item("a1", "2024-01-01", "alpha", 5),
    item("b2", "2024-01-02", "beta", 10),
    item("b1", "2024-01-02", "Beta", -3),
    item("c1", "2024-01-03", "gamma", 7),
    item("d1", "2024-01-04", "delta", 10),
    item("d2", "2024-01-04", "epsilon", 0),
    item("e1", "2024-01-05", "zeta", 2),
]


@pytest.fixture(params=["transient", "snowflake"])
async def database(
    request: pytest.FixtureRequest, open_database: OpenDatabase
) -> AsyncIterator[DocumentDatabase]:
    if request.param == "transient":
        yield TransientDocumentDatabase()
        return
    async with open_database() as database:
        yield database


async def fill(database: DocumentDatabase) -> DocumentCollection[Item]:
    collection = await database.get_or_create_collection("items", Item, identity_loader)
    for document in ITEMS:
        await collection.insert_one(document)
    return collection


@pytest.fixture
async def items(database: DocumentDatabase) -> DocumentCollection[Item]:
    """A fresh collection, for tests that write."""
    return await fill(database)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["transient", "snowflake"])
async def shared_items(
    request: pytest.FixtureRequest, emulator: SnowflakeEmulator
) -> AsyncIterator[DocumentCollection[Item]]:
    """One filled collection per backend for the read-only tests of this module."""
    if request.param == "transient":
        yield await fill(TransientDocumentDatabase())
        return
    async with SnowflakeDocumentDatabase(
        RecordingLogger(),
        emulator.connect_kwargs(),
        table_prefix=f"T{uuid.uuid4().hex[:10].upper()}_",
    ) as database:
        yield await fill(database)


read_only = pytest.mark.asyncio(loop_scope="module")


def ids(documents: Any) -> list[str]:
    return [document["id"] for document in documents]


@read_only
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a1", "b1", "b2", "c1", "d1", "d2", "e1"]),
        ({"n": {"$eq": 10}}, ["b2", "d1"]),
        ({"n": {"$ne": 10}}, ["a1", "b1", "c1", "d2", "e1"]),
        ({"n": {"$gt": 5}}, ["b2", "c1", "d1"]),
        ({"n": {"$gte": 5}}, ["a1", "b2", "c1", "d1"]),
        ({"n": {"$lt": 2}}, ["b1", "d2"]),
        ({"n": {"$lte": 2}}, ["b1", "d2", "e1"]),
        ({"n": {"$gt": 0, "$lt": 10}}, ["a1", "c1", "e1"]),
        ({"name": {"$in": ["beta", "zeta", "nope"]}}, ["b2", "e1"]),
        ({"name": {"$nin": ["beta", "zeta"]}}, ["a1", "b1", "c1", "d1", "d2"]),
        # Strings order by code point: "Beta" < "alpha".
        ({"name": {"$lt": "alpha"}}, ["b1"]),
        ({"name": {"$gte": "gamma"}}, ["c1", "e1"]),
        ({"id": {"$in": ["d2", "a1"]}}, ["a1", "d2"]),
        ({"creation_utc": {"$gt": "2024-01-03"}}, ["d1", "d2", "e1"]),
        ({"$or": [{"n": {"$eq": 0}}, {"name": {"$eq": "alpha"}}]}, ["a1", "d2"]),
        ({"$and": [{"n": {"$gte": 0}}, {"n": {"$lte": 5}}]}, ["a1", "d2", "e1"]),
        (
            {"$or": [{"$and": [{"n": {"$gt": 6}}, {"n": {"$lt": 10}}]}, {"id": {"$eq": "b1"}}]},
            ["b1", "c1"],
        ),
        ({"$or": []}, []),
        ({"$and": []}, ["a1", "b1", "b2", "c1", "d1", "d2", "e1"]),
        ({"$or": [{}]}, ["a1", "b1", "b2", "c1", "d1", "d2", "e1"]),
        # A float operand against int fields, and a bool one (True == 1 in the reference).
        ({"n": {"$lt": 2.5}}, ["b1", "d2", "e1"]),
        ({"n": {"$in": [True, 7.0]}}, ["c1"]),
    ],
)
async def test_find_filters(
    shared_items: DocumentCollection[Item], filters: Where, expected: list[str]
) -> None:
    result = await shared_items.find(filters)
    assert ids(result) == expected
    assert result.total_count == len(expected)
    assert result.has_more is False and result.next_cursor is None


@read_only
@pytest.mark.parametrize(
    ("direction", "pages"),
    [
        (SortDirection.ASC, [["a1", "b1", "b2"], ["c1", "d1", "d2"], ["e1"]]),
        (SortDirection.DESC, [["e1", "d2", "d1"], ["c1", "b2", "b1"], ["a1"]]),
    ],
)
async def test_find_pages_with_cursor(
    shared_items: DocumentCollection[Item], direction: SortDirection, pages: list[list[str]]
) -> None:
    cursor: Cursor | None = None
    remaining = len(ITEMS)
    for number, expected in enumerate(pages):
        page = await shared_items.find({}, limit=3, cursor=cursor, sort_direction=direction)
        assert ids(page) == expected
        # Matches after the cursor, before the limit (the reference's count).
        assert page.total_count == remaining
        last_page = number == len(pages) - 1
        assert page.has_more is not last_page
        if last_page:
            assert page.next_cursor is None
        else:
            assert page.next_cursor == Cursor(
                creation_utc=next(d["creation_utc"] for d in ITEMS if d["id"] == expected[-1]),
                id=ObjectId(expected[-1]),
            )
        cursor = page.next_cursor
        remaining -= len(expected)


@read_only
async def test_cursor_is_anded_with_the_filters(shared_items: DocumentCollection[Item]) -> None:
    first = await shared_items.find({"n": {"$gte": 5}}, limit=2)
    assert ids(first) == ["a1", "b2"]
    second = await shared_items.find({"n": {"$gte": 5}}, limit=2, cursor=first.next_cursor)
    assert ids(second) == ["c1", "d1"]
    assert second.total_count == 2 and second.has_more is False


@read_only
async def test_find_with_zero_limit_counts(shared_items: DocumentCollection[Item]) -> None:
    result = await shared_items.find({"n": {"$gt": 0}}, limit=0)
    assert list(result) == [] and result.total_count == 5 and result.has_more is True


@read_only
async def test_find_one(shared_items: DocumentCollection[Item]) -> None:
    assert (await shared_items.find_one({"n": {"$eq": 10}})) == ITEMS[1]
    assert await shared_items.find_one({"name": {"$eq": "missing"}}) is None
    assert (await shared_items.find_one({}, sort=[("n", SortDirection.DESC)]))["id"] == "b2"  # type: ignore[index]
    assert (await shared_items.find_one({}, sort=[("n", SortDirection.ASC)]))["id"] == "b1"  # type: ignore[index]
    by_name = await shared_items.find_one({"n": {"$gte": 0}}, sort=[("name", SortDirection.DESC)])
    assert by_name is not None and by_name["id"] == "e1"
    tie = await shared_items.find_one(
        {}, sort=[("n", SortDirection.DESC), ("creation_utc", SortDirection.DESC)]
    )
    assert tie is not None and tie["id"] == "d1"


async def test_update_one(items: DocumentCollection[Item]) -> None:
    result = await items.update_one({"n": {"$eq": 10}}, cast(Item, {"name": "renamed"}))
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert result.updated_document == {**ITEMS[1], "name": "renamed"}
    assert (await items.find_one({"id": {"$eq": "b2"}})) == {**ITEMS[1], "name": "renamed"}
    assert (await items.find_one({"id": {"$eq": "d1"}})) == ITEMS[4]

    missing = await items.update_one({"n": {"$eq": 99}}, cast(Item, {"name": "x"}))
    assert (missing.matched_count, missing.updated_document) == (0, None)

    new = item("f1", "2024-01-06", "eta", 99)
    upserted = await items.update_one({"n": {"$eq": 99}}, new, upsert=True)
    assert (upserted.matched_count, upserted.modified_count) == (0, 0)
    assert upserted.updated_document == new
    assert ids(await items.find({"n": {"$eq": 99}})) == ["f1"]


async def test_delete_one(items: DocumentCollection[Item]) -> None:
    result = await items.delete_one({"n": {"$eq": 10}})
    assert result.deleted_count == 1 and result.deleted_document == ITEMS[1]
    assert ids(await items.find({"n": {"$eq": 10}})) == ["d1"]

    none = await items.delete_one({"n": {"$eq": 10}, "name": {"$eq": "nope"}})
    assert none.deleted_count == 0 and none.deleted_document is None
    assert len(list(await items.find({}))) == len(ITEMS) - 1


#: Strings whose JSON text needs escaping, or looks like another type's text.
AWKWARD = ["é", "\x01", '"', "\\", "/", "\u2028", "😀", "a\nb", "", "5", "true", "null", "'"]


async def test_string_equality_on_awkward_strings(database: DocumentDatabase) -> None:
    """String equality compares JSON texts: exact for every string, never equal to a
    number, boolean or null whose text looks alike; the reference decides."""
    collection = await database.get_or_create_collection("awkward", Item, identity_loader)
    values: list[Any] = [*AWKWARD, 5, True, None]
    for index, value in enumerate(values):
        document = item(f"w{index:02d}", f"2024-02-{index + 1:02d}", "x", index)
        await collection.insert_one(cast(Item, {**document, "name": value}))
    for value in AWKWARD:
        equal = await collection.find(cast(Where, {"name": {"$eq": value}}))
        assert ids(equal) == [f"w{values.index(value):02d}"], repr(value)
        others = await collection.find(cast(Where, {"name": {"$nin": [value, "é"]}}))
        expected = {f"w{i:02d}" for i, v in enumerate(values) if v not in (value, "é")}
        assert set(ids(others)) == expected, repr(value)
    both = await collection.find(cast(Where, {"name": {"$in": ["\\", "5", 5]}}))
    assert ids(both) == ["w03", "w09", "w13"]
