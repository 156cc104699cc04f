"""Tables written by Parlant's upstream SnowflakeDocumentDatabase open and read with ours, the
failed-migrations table included; and what ours writes, upstream reads."""

from __future__ import annotations

from typing import Any, cast

from parlant.adapters.db.snowflake_db import SnowflakeDocumentDatabase as UpstreamDatabase
from parlant.core.persistence.common import ObjectId, SortDirection
from parlant.core.persistence.document_database import BaseDocument, identity_loader

from parlant_router.snowflake import SnowflakeDocumentDatabase
from tests.support.logger import RecordingLogger


def doc(n: int) -> BaseDocument:
    return cast(
        BaseDocument,
        {
            "id": ObjectId(f"u{n:02d}"),
            "version": "1.0.0",
            "creation_utc": f"2024-01-{n:02d}",
            "title": f"title {n}",
            "n": n,
        },
    )


async def drop_multiples_of_three(document: BaseDocument) -> BaseDocument | None:
    return None if cast(dict[str, Any], document)["n"] % 3 == 0 else document


async def test_upstream_tables_open_with_ours(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    async with UpstreamDatabase(
        RecordingLogger(), connection_params, table_prefix=table_prefix
    ) as upstream:
        items = await upstream.get_or_create_collection("items", BaseDocument, identity_loader)
        for n in range(1, 10):
            await items.insert_one(doc(n))
    # Upstream's migration moves failures to its failed table, which has only ID and DATA.
    async with UpstreamDatabase(
        RecordingLogger(), connection_params, table_prefix=table_prefix
    ) as upstream:
        await upstream.get_or_create_collection("items", BaseDocument, drop_multiples_of_three)

    async with SnowflakeDocumentDatabase(
        logger, connection_params, table_prefix=table_prefix
    ) as ours:
        items = await ours.get_collection("items", BaseDocument, identity_loader)
        assert list(await items.find({})) == [doc(n) for n in (1, 2, 4, 5, 7, 8)]
        assert [d["id"] for d in await items.find({"n": {"$gt": 4}}, limit=2)] == ["u05", "u07"]
        latest = await items.find_one({}, sort=[("n", SortDirection.DESC)])
        assert latest == doc(8)

        failed = await ours.get_collection("items_failed_migrations", BaseDocument, identity_loader)
        page = await failed.find({}, limit=2)
        assert list(page) == [doc(3), doc(6)] and page.total_count == 3
        assert list(await failed.find({}, cursor=page.next_cursor)) == [doc(9)]

        await items.insert_one(doc(10))
        await items.update_one({"id": {"$eq": "u01"}}, cast(BaseDocument, {"title": "renamed"}))

    async with UpstreamDatabase(
        RecordingLogger(), connection_params, table_prefix=table_prefix
    ) as upstream:
        items = await upstream.get_or_create_collection("items", BaseDocument, identity_loader)
        assert await items.find_one({"id": {"$eq": "u10"}}) == doc(10)
        renamed = await items.find_one({"id": {"$eq": "u01"}})
        assert renamed is not None and renamed["title"] == "renamed"  # type: ignore[typeddict-item]
