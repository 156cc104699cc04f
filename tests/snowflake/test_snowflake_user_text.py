"""User text round-trips exactly through our database on the emulator, over the real connector.

Customer messages are user input: a ``$HOME`` once made the emulator answer HTTP 500 ("Session
variable '$HOME' does not exist") because values were interpolated into the statement text
client-side. Values now travel as server-side bindings, so no text, however it looks to a
SQL parser (``$word``, ``%(p0)s``, ``?``, ``:1``, quotes, backslashes), is ever part of a
statement: each is inserted, found by ``$eq`` on itself, updated and read back unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from parlant.core.persistence.common import SortDirection
from parlant.core.persistence.document_database import BaseDocument, DocumentCollection

from parlant_router.snowflake import (
    CountingConnectionFactory,
    SnowflakeConfigurationError,
    SnowflakeDocumentDatabase,
    SnowflakeEmulator,
)
from parlant_router.snowflake.database import (
    MAX_BATCH_BINDS,
    MAX_BATCH_BYTES,
    MAX_BATCH_ROWS,
    _batches,
    _bound_bytes,
)
from tests.support.logger import RecordingLogger

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase
    from tests.support.loop_thread import LoopThread

#: Texts a SQL parser, a format string or the emulator could mistake for something else.
TRICKY_TEXTS = {
    "dollar-word": "$HOME",
    "dollar-word-in-sentence": "my files are in $HOME/docs and ${HOME}, cost $5",
    "dollar-digit": "$1",
    "dollar-dollar": "$$",
    "dollar-quoted-body": "$$ SELECT 1 $$",
    "pyformat-named": "%(p0)s",
    "pyformat-positional": "%s",
    "percent": "100% sure, 50%% off",
    "qmark": "?",
    "numeric": ":1",
    "named-bind": ":name and :1 and ?2",
    "single-quote": "it's",
    "quotes": "'\"''\"\"`",
    "backslash": "C:\\Users\\me\\",
    "escapes-as-text": "\\n \\t \\u0041 \\x24 \\\\",
    "newlines": "line one\nline two\r\nline three\ttabbed",
    "sql-injection": "'); DROP TABLE X; --",
    "identifier-call": "IDENTIFIER('$HOME')",
    "json-like": '{"id": "x", "$eq": [1, 2]}',
    "emoji": "🙂👍🏽👨‍👩‍👧‍👦 🇫🇷",
    "rtl": "שלום עולם مرحبا بالعالم",
    "mixed-scripts": "Ünïcödé 漢字 かな 한글 Ελληνικά",
    "combining": "e\u0301 a\u030a \u200b\u200d\ufeff",
    "empty": "",
    "spaces": "   ",
}

LONG_TEXT = ("$HOME %(p0)s ? :1 '\\ \"🙂 שלום\n" * 8000)[:200_000]


def document(identifier: str, text: str) -> dict[str, Any]:
    return {
        "id": identifier,
        "version": "1.0.0",
        "creation_utc": "2024-01-01T00:00:00",
        "message": text,
        "n": 1,
    }


async def round_trip(collection: DocumentCollection[BaseDocument], text: str) -> None:
    """Insert ``text``, find it by ``$eq``, update it, read it back: every answer exact."""
    identifier = f"d{uuid.uuid4().hex[:12]}"
    inserted = document(identifier, text)
    await collection.insert_one(cast(BaseDocument, inserted))

    found = await collection.find({"message": {"$eq": text}})
    assert [d["id"] for d in found] == [identifier]
    assert found.items[0] == inserted
    assert await collection.find_one({"id": identifier}) == inserted
    assert await collection.find_one({"$and": [{"id": identifier}, {"message": text}]}) == inserted
    in_list = await collection.find({"$and": [{"id": identifier}, {"message": {"$in": [text]}}]})
    assert list(in_list) == [inserted]
    not_equal = await collection.find({"$and": [{"id": identifier}, {"message": {"$ne": text}}]})
    assert list(not_equal) == []

    changed = text + " (edited)"
    result = await collection.update_one(
        {"message": {"$eq": text}}, cast(BaseDocument, {"message": changed, "previous": text})
    )
    expected = {**inserted, "message": changed, "previous": text}
    assert result.matched_count == 1
    assert result.updated_document == expected
    assert await collection.find_one({"id": identifier}) == expected
    assert list(await collection.find({"previous": {"$eq": text}})) == [expected]
    assert list(await collection.find({"message": {"$eq": text}})) == []

    deleted = await collection.delete_one({"previous": text})
    assert deleted.deleted_count == 1
    assert deleted.deleted_document == expected
    assert await collection.find_one({"id": identifier}) is None


@pytest.mark.parametrize(
    "text", [*TRICKY_TEXTS.values(), LONG_TEXT], ids=[*TRICKY_TEXTS, "long-text"]
)
async def test_user_text_round_trips(open_database: OpenDatabase, text: str) -> None:
    async with open_database() as database:
        collection = await database.create_collection("messages", BaseDocument)
        await round_trip(collection, text)


async def test_user_text_in_ids_and_mirrored_columns(open_database: OpenDatabase) -> None:
    """Ids and creation times are bound as well: they are compared on their own columns."""
    async with open_database() as database:
        collection = await database.create_collection("messages", BaseDocument)
        texts = list(TRICKY_TEXTS.values())
        for index, text in enumerate(texts):
            await collection.insert_one(
                cast(BaseDocument, {"id": f"{index}:{text}", "version": text, "creation_utc": text})
            )
        for index, text in enumerate(texts):
            identifier = f"{index}:{text}"
            expected = {"id": identifier, "version": text, "creation_utc": text}
            assert await collection.find_one({"id": identifier}) == expected
            updated = await collection.update_one({"id": identifier}, {"version": text + "$1"})
            assert updated.updated_document == {**expected, "version": text + "$1"}
            assert (await collection.delete_one({"id": {"$eq": identifier}})).deleted_count == 1
        assert list(await collection.find({})) == []


async def test_user_text_orders_and_pages_as_python(open_database: OpenDatabase) -> None:
    """$gt/$lt, sorting and paging compare the texts themselves, as the reference does."""
    texts = sorted({t for t in TRICKY_TEXTS.values() if t})
    async with open_database() as database:
        collection = await database.create_collection("messages", BaseDocument)
        for index, text in enumerate(texts):
            await collection.insert_one(
                cast(BaseDocument, {**document(f"d{index:02d}", text), "creation_utc": text})
            )
        pivot = "$HOME"
        above = await collection.find({"message": {"$gt": pivot}})
        assert sorted(d["message"] for d in above) == [t for t in texts if t > pivot]
        first = await collection.find_one({}, sort=[("message", SortDirection.DESC)])
        assert first is not None and first["message"] == max(texts)
        page = await collection.find({}, limit=3)
        assert [d["message"] for d in page] == texts[:3]
        assert page.next_cursor is not None
        rest = await collection.find({}, cursor=page.next_cursor)
        assert [d["message"] for d in rest] == texts[3:]


async def test_field_names_beyond_identifiers_are_bound(open_database: OpenDatabase) -> None:
    """Field names are written as literals only when they are identifiers; others are bound."""
    field = "user's $HOME:1 ? %(p0)s"
    async with open_database() as database:
        collection = await database.create_collection("messages", BaseDocument)
        stored = {**document("d1", "hello"), field: "$HOME"}
        await collection.insert_one(cast(BaseDocument, stored))
        await collection.insert_one(cast(BaseDocument, document("d2", "other")))
        assert list(await collection.find({field: "$HOME"})) == [stored]
        assert [d["id"] for d in await collection.find({field: {"$ne": "$HOME"}})] == ["d2"]
        assert [d["id"] for d in await collection.find({field: {"$in": [None, 1]}})] == []
        updated = await collection.update_one({field: {"$eq": "$HOME"}}, {field: "$1"})
        assert updated.updated_document == {**stored, field: "$1"}


async def test_user_text_never_enters_the_statement_text(
    connection_params: dict[str, Any], logger: RecordingLogger, table_prefix: str
) -> None:
    """Every value is a server-side binding: no statement's SQL text carries the message."""
    marker = "$HOME-marker-%(p0)s-?-:1-'"
    counter = CountingConnectionFactory()
    async with SnowflakeDocumentDatabase(
        logger, connection_params, table_prefix=table_prefix, connection_factory=counter
    ) as database:
        collection = await database.create_collection("messages", BaseDocument)
        await round_trip(collection, marker)
        await collection.find({"message": {"$gt": marker}})
        await collection.find_one({"message": {"$nin": [marker, 1, None]}})
    assert counter.statements > 0
    assert not [sql for sql in counter.log if "marker" in sql]


async def test_a_connection_factory_must_keep_the_paramstyle(
    connection_params: dict[str, Any], logger: RecordingLogger, table_prefix: str
) -> None:
    """A factory that drops paramstyle would format values into the text: refused at connect."""
    import snowflake.connector

    def dropping(params: Any) -> Any:
        kept = {key: value for key, value in params.items() if key != "paramstyle"}
        return snowflake.connector.connect(**kept)

    database = SnowflakeDocumentDatabase(
        logger, connection_params, table_prefix=table_prefix, connection_factory=dropping
    )
    with pytest.raises(SnowflakeConfigurationError, match="paramstyle='numeric'"):
        async with database:
            pass


def test_migration_batches_bound_rows_bytes_and_binds() -> None:
    """Bound values count towards Snowflake's 1 MB statement limit, so batches are cut by
    their bytes as well as by rows and by bind variables."""
    small = [(f"d{n}", {"id": f"d{n}", "m": "x"}) for n in range(40_000)]
    batches = _batches(small)
    assert sum(len(batch) for batch in batches) == len(small)
    assert max(len(batch) for batch in batches) * 5 <= MAX_BATCH_BINDS
    assert max(len(batch) for batch in batches) <= MAX_BATCH_ROWS

    text = "🙂" * 25_000  # 25,000 characters, 100,000 bytes in UTF-8
    large = [(f"d{n}", {"id": f"d{n}", "m": text}) for n in range(30)]
    batches = _batches(large)
    assert sum(len(batch) for batch in batches) == len(large)
    for batch in batches:
        assert sum(_bound_bytes(*row) + 64 for row in batch) <= MAX_BATCH_BYTES
    # 750,000 characters would fit one batch; 3 MB of UTF-8 does not.
    assert len(batches) >= 4


# --- A property over arbitrary text -----------------------------------------------------------

#: Any text but lone surrogates (they are not valid UTF-8; handled elsewhere), with the
#: fragments a SQL parser or a format string reacts to mixed in, so that examples hit them.
ARBITRARY_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
        st.sampled_from(["$", "$HOME", "$1", "$$", "%(p0)s", "%s", "%", "?", ":1", ":x"]),
        st.sampled_from(["'", "''", '"', "\\", "\\'", "\n", "\x00", "--", ";", "/*"]),
    ),
    max_size=12,
).map("".join)


@pytest.fixture(scope="module")
def messages(
    loop_thread: LoopThread, emulator: SnowflakeEmulator
) -> Iterator[DocumentCollection[BaseDocument]]:
    """One collection for the module, on its loop thread (hypothesis examples are synchronous)."""
    database = SnowflakeDocumentDatabase(
        RecordingLogger(),
        emulator.connect_kwargs(),
        table_prefix=f"T{uuid.uuid4().hex[:10].upper()}_",
    )
    loop_thread.run(database.__aenter__())
    try:
        yield loop_thread.run(database.create_collection("messages", BaseDocument))
    finally:
        loop_thread.run(database.__aexit__(None, None, None))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],
)
@given(text=ARBITRARY_TEXT)
def test_arbitrary_text_round_trips(
    loop_thread: LoopThread, messages: DocumentCollection[BaseDocument], text: str
) -> None:
    loop_thread.run(round_trip(messages, text))
