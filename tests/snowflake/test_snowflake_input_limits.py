"""What Snowflake cannot take is refused by the adapter before any statement, with one line.

Over the real connector on the emulator: strings that are not valid Unicode (lone surrogates,
which JSON's ``\\ud800`` escape lets through Parlant's API), filters nested or listed beyond
the translator's limits, documents larger than one statement carries. Each refusal names
the operation and the table, never echoes the document, and comes before any statement:
none is sent and the answer is immediate (a lone surrogate used to cost ~25 s of the
connector retrying the emulator's HTTP 500 on a pooled connection).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest
from parlant.core.persistence.common import Cursor, ObjectId, SortDirection, Where
from parlant.core.persistence.document_database import BaseDocument

from parlant_router.snowflake import SnowflakeOperationError
from parlant_router.snowflake.collection import (
    _SEEN_BYTES,
    _SEEN_DOCUMENT_BYTES,
    MAX_DOCUMENT_BYTES,
    SnowflakeDocumentCollection,
)
from parlant_router.snowflake.errors import InvalidDocumentError, InvalidFilterError
from parlant_router.snowflake.sql import (
    MAX_FILTER_DEPTH,
    MAX_LIST_VALUES,
    MAX_STATEMENT_BYTES,
    Params,
    where_sql,
)

if TYPE_CHECKING:
    from parlant_router.snowflake import SnowflakeDocumentDatabase
    from tests.support.databases import OpenDatabase

LONE = "\ud800"


def document(identifier: str, **fields: Any) -> BaseDocument:
    return cast(
        BaseDocument,
        {"id": identifier, "version": "1", "creation_utc": "2024-01-01T00:00:00", **fields},
    )


async def refused(
    database: SnowflakeDocumentDatabase,
    error: type[SnowflakeOperationError],
    call: Callable[[], Awaitable[Any]],
) -> str:
    """The one-line message of ``call``'s refusal, checked to have sent nothing, at once."""
    before = database.statements_sent
    started = time.monotonic()
    with pytest.raises(error) as raised:
        await call()
    assert database.statements_sent == before
    assert time.monotonic() - started < 1.0
    message = str(raised.value)
    assert "\n" not in message
    message.encode("utf-8")  # printable: the surrogate itself is escaped
    return message


async def test_lone_surrogates_are_refused_naming_the_field(open_database: OpenDatabase) -> None:
    async with open_database(pool_size=1) as database:
        messages = await database.create_collection("messages", BaseDocument)
        table = messages.table
        await messages.insert_one(document("kept", message="hello"))

        cases: list[tuple[type[SnowflakeOperationError], Callable[[], Awaitable[Any]], str]] = [
            (
                InvalidDocumentError,
                lambda: messages.insert_one(
                    document("d1", message="fine", meta={"tags": ["ok", f"a{LONE}b"]})
                ),
                f"insert_one on {table}: document 'd1': the string at 'meta.tags[1]' is not "
                "valid Unicode (it holds a lone surrogate); Snowflake cannot store it",
            ),
            (
                InvalidDocumentError,
                lambda: messages.insert_one(document("d2", **{f"k{LONE}": 1})),
                f"insert_one on {table}: document 'd2': the string at 'k\\ud800' is not valid",
            ),
            (
                InvalidDocumentError,
                lambda: messages.insert_one(document(f"id{LONE}")),
                f"insert_one on {table}: document 'id\\ud800': the string at 'id' is not valid",
            ),
            (
                InvalidDocumentError,
                lambda: messages.update_one(where({"id": "kept"}), document("kept", message=LONE)),
                f"update_one on {table}: document 'kept': the string at 'message' is not valid",
            ),
            (
                InvalidDocumentError,
                lambda: messages.insert_unless(document("d3", text=LONE), where({"id": "d3"})),
                f"insert_unless on {table}: document 'd3': the string at 'text' is not valid",
            ),
            (
                InvalidFilterError,
                lambda: messages.find(where({"message": {"$eq": f"x{LONE}"}})),
                f"find on {table}: filter on 'message': the $eq value is not valid Unicode",
            ),
            (
                InvalidFilterError,
                lambda: messages.find_one(
                    where({"$or": [{"id": "a"}, {"id": {"$in": ["b", LONE]}}]})
                ),
                f"find_one on {table}: filter on 'id': the $in value is not valid Unicode",
            ),
            (
                InvalidFilterError,
                lambda: messages.delete_one(where({f"field{LONE}": "x"})),
                f"delete_one on {table}: filter: the field name 'field\\ud800' is not valid",
            ),
            (
                InvalidFilterError,
                lambda: messages.find_one({}, sort=[(f"s{LONE}", SortDirection.ASC)]),
                f"find_one on {table}: sort: the field name 's\\ud800' is not valid Unicode",
            ),
            (
                InvalidFilterError,
                lambda: messages.find(
                    {}, limit=1, cursor=Cursor(creation_utc="x", id=ObjectId(LONE))
                ),
                f"find on {table}: the cursor's id is not valid Unicode",
            ),
        ]
        for error, call, expected in cases:
            assert (await refused(database, error, call)).startswith(expected)

        # A change computed from the stored document is refused once it is known: after the
        # read, before the write; the document stays as it was.
        with pytest.raises(InvalidDocumentError, match="the string at 'message' is not valid"):
            await messages.update_with(where({"id": "kept"}), lambda current: {"message": LONE})
        assert [d["id"] for d in await messages.find({})] == ["kept"]
        assert (await messages.find_one(where({"id": "kept"}))) == document("kept", message="hello")


def where(filters: Any) -> Where:
    """``filters`` as a ``Where``: these tests build filters Parlant's types do not describe."""
    return cast(Where, filters)


def nested(depth: int) -> Any:
    """``depth`` levels of $and/$or around a leaf that matches ``{"n": 1}``."""
    filters: dict[str, Any] = {"n": 1}
    for level in range(depth):
        filters = {"$and" if level % 2 else "$or": [filters, {"n": {"$ne": -level}}]}
    return filters


async def test_filters_beyond_the_limits_are_refused(open_database: OpenDatabase) -> None:
    async with open_database(pool_size=1) as database:
        items = await database.create_collection("items", BaseDocument)
        table = items.table
        await items.insert_one(document("one", n=1))
        await items.insert_one(document("two", n=2))

        # The deepest accepted filter runs on the emulator, with the reference's answer.
        assert [d["id"] for d in await items.find(nested(MAX_FILTER_DEPTH))] == ["one", "two"]
        assert [
            d["id"] for d in await items.find(where({"$and": [nested(MAX_FILTER_DEPTH - 1)]}))
        ] == [
            "one",
            "two",
        ]
        message = await refused(
            database, InvalidFilterError, lambda: items.find(nested(MAX_FILTER_DEPTH + 1))
        )
        assert message == (
            f"find on {table}: filter nests $and/$or more than {MAX_FILTER_DEPTH} levels deep"
        )
        # Far deeper than Python's recursion limit: still the adapter's one line.
        for call in (
            lambda: items.find(nested(5_000)),
            lambda: items.update_one(nested(5_000), document("one")),
            lambda: items.insert_unless(document("three"), nested(5_000)),
        ):
            await refused(database, InvalidFilterError, call)

        too_many = list(range(MAX_LIST_VALUES + 1))
        assert await refused(
            database, InvalidFilterError, lambda: items.find(where({"n": {"$nin": too_many}}))
        ) == (
            f"find on {table}: filter on 'n': $nin lists 16,385 values; "
            "Snowflake takes at most 16,384"
        )
        found = await items.find(where({"n": {"$in": list(range(MAX_LIST_VALUES))}}))
        assert [d["id"] for d in found] == ["one", "two"]

        # Within every list limit, yet more than one statement carries.
        wide = {"$or": [{"id": f"{n:08d}" * 10} for n in range(12_000)]}
        message = await refused(database, InvalidFilterError, lambda: items.delete_one(where(wide)))
        assert message.startswith(f"delete_one on {table}: the statement would be ")
        assert message.endswith(
            f"bytes with its values; Snowflake takes at most {MAX_STATEMENT_BYTES:,}"
        )


def test_the_translator_counts_depth_across_branches() -> None:
    """Depth is the nesting of one branch, not the number of $and/$or in the filter."""
    wide = {"$and": [nested(MAX_FILTER_DEPTH - 1) for _ in range(50)]}
    assert where_sql(where(wide), Params()).count("OR") >= 50
    with pytest.raises(InvalidFilterError):
        where_sql(where({"$or": [{"n": 1}, nested(MAX_FILTER_DEPTH)]}), Params())


async def test_documents_larger_than_a_statement_are_refused(open_database: OpenDatabase) -> None:
    async with open_database(pool_size=1) as database:
        files = await database.create_collection("files", BaseDocument)
        table = files.table
        base = len(json.dumps(document("big", body=""), ensure_ascii=False).encode())
        fixed = len(b"big1" + b"2024-01-01T00:00:00")  # the mirrored columns, bound too
        largest = document("big", body="x" * (MAX_DOCUMENT_BYTES - base - fixed))
        await files.insert_one(largest)
        assert await files.find_one(where({"id": "big"})) == largest

        # One byte more, in a character of three bytes: refused, with the id and the size.
        over = document("bad", body="x" * (MAX_DOCUMENT_BYTES - base - fixed - 2) + "€")
        message = await refused(database, InvalidDocumentError, lambda: files.insert_one(over))
        assert message == (
            f"insert_one on {table}: document 'bad' is 900,001 bytes to send (its JSON and "
            "columns); one Snowflake statement carries at most 900,000 (its 1 MB limit counts "
            "bound values)"
        )
        # Beyond Snowflake's 16 MB VARIANT limit: the same refusal, no connection borrowed.
        huge = document("huge", body="y" * (17 * 2**20))
        assert "is 17,825,8" in await refused(
            database, InvalidDocumentError, lambda: files.insert_one(huge)
        )
        # An update that would grow a stored document over the limit leaves it as it was.
        with pytest.raises(InvalidDocumentError, match=f"update_one on {table}: document 'big'"):
            await files.update_one(where({"id": "big"}), cast(BaseDocument, {"more": "z" * 100}))
        assert await files.find_one(where({"id": "big"})) == largest


def test_remembered_documents_are_bounded_by_bytes() -> None:
    """4,096 documents of any size were remembered (40 of 1 MB held 40 MB); now their bytes
    are bounded, a document over the per-document bound is not remembered at all."""
    collection: SnowflakeDocumentCollection[BaseDocument] = SnowflakeDocumentCollection(
        name="c", table="T", schema=BaseDocument, runner=cast(Any, None), logger=cast(Any, None)
    )
    large = "x" * (_SEEN_DOCUMENT_BYTES - 1_000)
    for n in range(200):
        collection._remember(json.dumps({"id": f"large{n}", "body": large}))
    assert _SEEN_BYTES - _SEEN_DOCUMENT_BYTES < collection._seen_bytes <= _SEEN_BYTES
    assert 50 <= len(collection._seen) <= 64
    assert "large199" in collection._seen and "large0" not in collection._seen

    # One document over the per-document bound is not remembered, nor does it evict others.
    kept = set(collection._seen)
    collection._remember(json.dumps({"id": "huge", "body": "y" * _SEEN_DOCUMENT_BYTES}))
    assert set(collection._seen) == kept
    # Reading a document again replaces its entry: the accounting follows.
    collection._remember(json.dumps({"id": "large39", "body": "small"}))
    collection._forget(set(collection._seen))
    assert (collection._seen, collection._seen_bytes) == ({}, 0)


async def test_a_large_document_is_written_after_a_read(open_database: OpenDatabase) -> None:
    """Not remembered, a large document's update by id reads it first: 2 statements, not 1."""
    async with open_database(pool_size=1) as database:
        notes = await database.create_collection("notes", BaseDocument)
        await notes.insert_one(document("small", body="s"))
        await notes.insert_one(document("large", body="l" * _SEEN_DOCUMENT_BYTES))
        sent = []
        for identifier in ("small", "large"):
            assert await notes.find_one(where({"id": identifier})) is not None
            before = database.statements_sent
            await notes.update_one(where({"id": identifier}), cast(BaseDocument, {"seen": True}))
            sent.append(database.statements_sent - before)
        assert sent == [1, 2]


async def test_a_migration_that_makes_invalid_text_fails_with_the_adapters_error(
    open_database: OpenDatabase,
) -> None:
    # Sizing the batch measured the text with a strict UTF-8 encode: a bare UnicodeEncodeError
    # at startup, before the write could name the field.
    async with open_database(pool_size=1) as database:
        notes = await database.create_collection("notes", BaseDocument)
        await notes.insert_one(document("n1", version="0.1.0", text="hello"))

    async def loader(stored: BaseDocument) -> BaseDocument:
        return cast(BaseDocument, {**stored, "version": "0.2.0", "text": f"a{LONE}b"})

    async with open_database(pool_size=1) as database:
        with pytest.raises(InvalidDocumentError, match=r"'text' is not valid Unicode"):
            await database.get_collection("notes", BaseDocument, loader)
