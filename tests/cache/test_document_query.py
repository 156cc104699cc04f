"""document_query against the database: random documents, filters and sorts evaluated in memory
(`compile_filter`, `in_find_order`, `first_by`) and by our SnowflakeDocumentDatabase on the
emulator must select the same documents, in the same order.

The read cache answers from memory with these functions, so every difference here is a wrong
answer the cache would give. Documents mix strings, integers, floats, booleans, null, missing
fields, lists and objects; filters use every operator, bare values and nested `$and`/`$or`;
`creation_utc` is sometimes missing or null (the first in `find`'s order).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypedDict, cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from parlant.core.persistence.common import ObjectId, SortDirection, Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionSort,
    DocumentCollection,
)

from parlant_router.snowflake import (
    SnowflakeDocumentDatabase,
    SnowflakeEmulator,
    SnowflakeOperationError,
)
from parlant_router.stores.document_query import compile_filter, first_by, in_find_order
from tests.cache.helpers import assert_same, ids, new_prefix
from tests.support.logger import RecordingLogger
from tests.support.loop_thread import LoopThread

ASC, DESC = SortDirection.ASC, SortDirection.DESC


class _IdOnly(TypedDict, total=False):
    id: ObjectId


#: The tables' schema: only `id` is required (`creation_utc` may be missing, as the
#: semantics allow).
SCHEMA = cast(type[BaseDocument], _IdOnly)


Document = dict[str, Any]

# Strategies --------------------------------------------------------------------------------

STRINGS = st.sampled_from(["", "a", "ab", "b", "B", "é", "1", "10", "2", "true", "null", 'q"t'])
NUMBERS = st.one_of(
    st.integers(-2, 3),
    st.sampled_from([-1.5, 0.0, 0.5, 1.0, 2.5]),
    st.booleans(),
)
SCALARS = st.one_of(STRINGS, NUMBERS, st.none())
NESTED = st.one_of(
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.sampled_from(["a", "n"]), SCALARS, max_size=1),
)
MISSING = object()
FIELD_VALUES = {
    "s": st.one_of(STRINGS, st.none()),
    "n": st.one_of(NUMBERS, st.none()),
    "m": st.one_of(SCALARS, NESTED),
}
FILTER_FIELDS = st.sampled_from(["s", "n", "m", "id", "version", "creation_utc", "absent"])
SORT_FIELDS = st.sampled_from(["s", "n", "m", "id", "version", "creation_utc", "absent"])
OPERANDS = st.one_of(SCALARS, st.sampled_from(["d01", "d03", "2024-01", "2024-02", "1.0.0"]))
COMPARISONS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]


@st.composite
def documents(draw: st.DrawFn) -> list[Document]:
    """Up to 7 documents; creation times non-decreasing with ties, sometimes missing or null."""
    result: list[Document] = []
    creation = 0
    for index in range(draw(st.integers(0, 7))):
        creation += draw(st.integers(0, 1))
        document: Document = {
            "id": f"d{index:02d}",
            "version": draw(st.sampled_from(["1.0.0", "2"])),
        }
        when = draw(st.sampled_from(["set"] * 6 + ["missing", "null"]))
        if when != "missing":
            document["creation_utc"] = None if when == "null" else f"2024-{creation:02d}"
        for field, values in FIELD_VALUES.items():
            value = draw(st.one_of(st.just(MISSING), values))
            if value is not MISSING:
                document[field] = value
        result.append(document)
    return result


def leaves() -> st.SearchStrategy[dict[str, Any]]:
    comparison = st.builds(
        lambda field, op, value: {field: {op: value}},
        FILTER_FIELDS,
        st.sampled_from(COMPARISONS),
        OPERANDS,
    )
    shorthand = st.builds(lambda field, value: {field: value}, FILTER_FIELDS, OPERANDS)
    membership = st.builds(
        lambda field, op, values: {field: {op: values}},
        FILTER_FIELDS,
        st.sampled_from(["$in", "$nin"]),
        st.lists(OPERANDS, max_size=3),
    )
    two_operators = st.builds(
        lambda field, low, high: {field: {"$gte": low, "$lt": high}},
        FILTER_FIELDS,
        OPERANDS,
        OPERANDS,
    )
    two_fields = st.builds(
        lambda a, b: {**a, **b} if not set(a) & set(b) else a, comparison, membership
    )
    return st.one_of(comparison, shorthand, membership, two_operators, two_fields, st.just({}))


FILTERS = st.recursive(
    leaves(),
    lambda children: st.builds(
        lambda op, operands: {op: operands},
        st.sampled_from(["$and", "$or"]),
        st.lists(children, max_size=3),
    ),
    max_leaves=6,
)
SORTS = st.lists(
    st.tuples(SORT_FIELDS, st.sampled_from([ASC, DESC])),
    min_size=1,
    max_size=2,
    unique_by=lambda pair: pair[0],
)

# Fixtures and the comparison ---------------------------------------------------------------


@pytest.fixture(scope="module")
def database(
    loop_thread: LoopThread, emulator: SnowflakeEmulator
) -> Iterator[SnowflakeDocumentDatabase]:
    database = SnowflakeDocumentDatabase(
        RecordingLogger(), emulator.connect_kwargs(), table_prefix=new_prefix("Q")
    )
    loop_thread.run(database.__aenter__())
    yield database
    loop_thread.run(database.__aexit__(None, None, None))


async def stored(
    database: SnowflakeDocumentDatabase, docs: Sequence[Document]
) -> tuple[str, DocumentCollection[BaseDocument]]:
    name = f"q{uuid.uuid4().hex[:8]}"
    collection = await database.create_collection(name, SCHEMA)
    for document in docs:
        await collection.insert_one(cast(BaseDocument, document))
    return name, collection


def selected(docs: Sequence[Document], where: Any) -> list[Document]:
    predicate = compile_filter(where)
    assert predicate is not None, f"compile_filter gave up on a valid filter: {where!r}"
    return [d for d in docs if predicate(d)]


async def compare(
    database: SnowflakeDocumentDatabase,
    docs: Sequence[Document],
    filters: Sequence[Any],
    sorted_queries: Sequence[tuple[Any, CollectionSort]],
) -> None:
    name, collection = await stored(database, docs)
    try:
        for where in filters:
            context = f"filter {where!r} on {docs!r}"
            expected = in_find_order(selected(docs, where))
            assert_same(list(await collection.find(where)), expected, context)
            descending = list(await collection.find(where, sort_direction=DESC))
            assert_same(descending, list(reversed(expected)), f"DESC {context}")
        for where, sort in sorted_queries:
            context = f"find_one({where!r}, sort={sort!r}) on {docs!r}"
            expected_one = first_by(selected(docs, where), sort)
            assert_same(await collection.find_one(where, sort=sort), expected_one, context)
    finally:
        await database.delete_collection(name)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
@given(
    docs=documents(),
    # Many queries per set of documents: a query costs a statement, the documents a table.
    filters=st.lists(FILTERS, min_size=3, max_size=8),
    sorted_queries=st.lists(st.tuples(FILTERS, SORTS), min_size=2, max_size=6),
)
def test_memory_answers_as_the_database(
    loop_thread: LoopThread,
    database: SnowflakeDocumentDatabase,
    docs: list[Document],
    filters: list[Where],
    sorted_queries: list[tuple[Where, CollectionSort]],
) -> None:
    loop_thread.run(compare(database, docs, filters, sorted_queries))


# The tricky points, spelled out ------------------------------------------------------------


def doc(identifier: str, creation: str | None, **fields: Any) -> Document:
    document: Document = {"id": identifier, "version": "1.0.0"}
    if creation is not None:
        document["creation_utc"] = creation
    document.update(fields)
    return document


#: d7 has no `n`; creation order is id order.
EQUALITY_DOCS = [
    doc("d0", "2024-00", n=True),
    doc("d1", "2024-01", n=1),
    doc("d2", "2024-02", n=1.0),
    doc("d3", "2024-03", n="1"),
    doc("d4", "2024-04", n=0),
    doc("d5", "2024-05", n=False),
    doc("d6", "2024-06", n=None),
    doc("d7", "2024-07"),
    doc("d8", "2024-08", n=[1]),
    doc("d9", "2024-09", n="true"),
]
ALL = [f"d{i}" for i in range(10)]

#: Filters as Parlant's `Where` type cannot spell all of them (None operands, bare values).
EQUALITY_CASES: list[tuple[Any, list[str]]] = [
    # True == 1 == 1.0; a string never equals a number.
    ({"n": 1}, ["d0", "d1", "d2"]),
    ({"n": {"$eq": True}}, ["d0", "d1", "d2"]),
    ({"n": {"$eq": 1.0}}, ["d0", "d1", "d2"]),
    ({"n": {"$in": [True]}}, ["d0", "d1", "d2"]),
    ({"n": "1"}, ["d3"]),
    ({"n": {"$in": [0, "true"]}}, ["d4", "d5", "d9"]),
    # A missing field matches $ne and $nin, nothing else; None equals only null.
    ({"n": {"$ne": 1}}, ["d3", "d4", "d5", "d6", "d7", "d8", "d9"]),
    ({"n": {"$nin": [True, None]}}, ["d3", "d4", "d5", "d7", "d8", "d9"]),
    ({"n": None}, ["d6"]),
    ({"n": {"$ne": None}}, [i for i in ALL if i != "d6"]),
    ({"absent": {"$ne": "x"}}, ALL),
    ({"absent": {"$nin": []}}, ALL),
    ({"absent": {"$nin": [None]}}, ALL),
    ({"absent": {"$in": []}}, []),
    ({"absent": {"$eq": None}}, []),
    # None is ordered against nothing; a missing field is ordered against nothing.
    ({"n": {"$gt": None}}, []),
    ({"n": {"$lte": None}}, []),
    ({"absent": {"$gte": 0}}, []),
    # Comparisons within a type bracket: booleans are numbers, strings only with strings.
    ({"n": {"$gte": 1}}, ["d0", "d1", "d2"]),
    ({"n": {"$lt": 1}}, ["d4", "d5"]),
    ({"n": {"$gte": False}}, ["d0", "d1", "d2", "d4", "d5"]),
    ({"n": {"$gt": "0"}}, ["d3", "d9"]),
    # A list is neither equal to nor ordered against a scalar.
    ({"n": {"$gt": 0}}, ["d0", "d1", "d2"]),
    # Logic.
    ({}, ALL),
    ({"$and": []}, ALL),
    ({"$or": []}, []),
    ({"$and": [{"n": {"$gte": 0}}, {"$or": [{"n": {"$lt": 1}}, {"n": "1"}]}]}, ["d4", "d5"]),
    (
        {"$or": [{"n": "1"}, {"$and": [{"n": {"$ne": None}}, {"n": {"$lt": 0.5}}]}]},
        ["d3", "d4", "d5"],
    ),
]


@pytest.mark.parametrize(
    ("where", "expected"), EQUALITY_CASES, ids=[repr(c[0]) for c in EQUALITY_CASES]
)
def test_equality_and_missing_fields(
    loop_thread: LoopThread,
    database: SnowflakeDocumentDatabase,
    where: Where,
    expected: list[str],
) -> None:
    assert ids(in_find_order(selected(EQUALITY_DOCS, where))) == expected
    loop_thread.run(compare(database, EQUALITY_DOCS, [where], []))


#: Values of `k` across the brackets; ties (e0/e8 on "b", e5/e9 on True/1) are created out of
#: id order (e8 before e0) or at the same time (e5 with e9: then by id).
MIXED_DOCS = [
    doc("e0", "2024-05", k="b"),
    doc("e1", "2024-01", k=2),
    doc("e2", "2024-03"),
    doc("e3", "2024-02", k=None),
    doc("e4", "2024-04", k="a"),
    doc("e5", "2024-06", k=True),
    doc("e6", "2024-07", k=-1.5),
    doc("e7", "2024-01", k=[3]),
    doc("e8", "2024-00", k="b"),
    doc("e9", "2024-06", k=1),
]
#: creation_utc itself: missing (f0), null (f1), ties (f2, f4).
CREATION_DOCS = [
    doc("f0", None),
    doc("f1", None, creation_utc=None),
    doc("f2", "2024-02"),
    doc("f3", "2024-01"),
    doc("f4", "2024-02"),
]

ORDER_CASES: list[tuple[str, list[Document], CollectionSort, list[str]]] = [
    (
        "mixed ASC: missing/null/other < numbers < strings; ties by creation, then id",
        MIXED_DOCS,
        [("k", ASC)],
        ["e7", "e3", "e2", "e6", "e5", "e9", "e1", "e4", "e8", "e0"],
    ),
    (
        "mixed DESC: strings > numbers > missing/null/other; ties still by creation ASC, id",
        MIXED_DOCS,
        [("k", DESC)],
        ["e8", "e0", "e4", "e1", "e5", "e9", "e6", "e7", "e3", "e2"],
    ),
    (
        "a field nobody has: creation order",
        MIXED_DOCS,
        [("absent", DESC)],
        ["e8", "e1", "e7", "e3", "e2", "e4", "e0", "e5", "e9", "e6"],
    ),
    (
        "two keys: version (all equal) then k DESC",
        MIXED_DOCS,
        [("version", DESC), ("k", DESC)],
        ["e8", "e0", "e4", "e1", "e5", "e9", "e6", "e7", "e3", "e2"],
    ),
    (
        "creation_utc ASC: missing and null first",
        CREATION_DOCS,
        [("creation_utc", ASC)],
        ["f0", "f1", "f3", "f2", "f4"],
    ),
    (
        "creation_utc DESC: missing and null last",
        CREATION_DOCS,
        [("creation_utc", DESC)],
        ["f2", "f4", "f3", "f0", "f1"],
    ),
    ("id DESC", CREATION_DOCS, [("id", DESC)], ["f4", "f3", "f2", "f1", "f0"]),
]


async def full_order(
    database: SnowflakeDocumentDatabase, docs: Sequence[Document], sort: CollectionSort
) -> tuple[list[str], list[str]]:
    """The whole order, one find_one at a time (excluding those already taken): (db, memory)."""
    name, collection = await stored(database, docs)
    try:
        from_database: list[str] = []
        from_memory: list[str] = []
        for _ in docs:
            where = cast(Where, {"id": {"$nin": list(from_database)}})
            found = await collection.find_one(where, sort=sort)
            assert found is not None
            from_database.append(str(found["id"]))
            first = first_by(selected(docs, {"id": {"$nin": from_memory}}), sort)
            assert first is not None
            from_memory.append(str(first["id"]))
        nothing_left = cast(Where, {"id": {"$nin": from_database}})
        assert await collection.find_one(nothing_left, sort=sort) is None
        return from_database, from_memory
    finally:
        await database.delete_collection(name)


@pytest.mark.parametrize(
    ("label", "docs", "sort", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES]
)
def test_sort_orders(
    loop_thread: LoopThread,
    database: SnowflakeDocumentDatabase,
    label: str,
    docs: list[Document],
    sort: CollectionSort,
    expected: list[str],
) -> None:
    from_database, from_memory = loop_thread.run(full_order(database, docs, sort))
    assert from_memory == expected, label
    assert from_database == expected, label


def test_find_order_puts_missing_creation_first(
    loop_thread: LoopThread, database: SnowflakeDocumentDatabase
) -> None:
    assert ids(in_find_order(list(reversed(CREATION_DOCS)))) == ["f0", "f1", "f3", "f2", "f4"]
    loop_thread.run(compare(database, CREATION_DOCS, [{}], []))


UNSUPPORTED: list[Any] = [
    {"n": {"$eq": [1]}},
    {"n": {"$in": "abc"}},
    {"n": {"$in": [[1]]}},
    {"n": {"$regex": "a"}},
    {"n": {"$gt": float("inf")}},
    {"$and": [{"n": 1}], "s": "a"},
    {"$not": {"n": 1}},
    {"$or": {"n": 1}},
]


@pytest.mark.parametrize("where", UNSUPPORTED, ids=[repr(w) for w in UNSUPPORTED])
def test_what_memory_cannot_evaluate_the_database_refuses(
    loop_thread: LoopThread, database: SnowflakeDocumentDatabase, where: Any
) -> None:
    # compile_filter gives up (the cache then asks the database), and the database reports the
    # problem: no filter is silently evaluated differently.
    assert compile_filter(where) is None

    async def attempt() -> None:
        name, collection = await stored(database, EQUALITY_DOCS[:2])
        try:
            with pytest.raises(SnowflakeOperationError):
                await collection.find(where)
        finally:
            await database.delete_collection(name)

    loop_thread.run(attempt())
