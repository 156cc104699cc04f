"""What a migration tells its observer, and a dry run of it (`plan_migration`) that writes
nothing: its counts are those a real open writes, version by version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from parlant.core.persistence.document_database import BaseDocument

from parlant_router.snowflake import CountingConnectionFactory
from parlant_router.snowflake import database as database_module
from parlant_router.snowflake.migration_report import Outcome, outcome_of, version_key
from tests.snowflake.test_snowflake_migration import (
    fill,
    mixed_documents,
    page_limits,  # noqa: F401 - a fixture
    parlant_loader,
    rows,
)

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase

Counts = dict[tuple[str, str | None, Outcome], int]


class Observer:
    """Records what a database tells its migration observer."""

    def __init__(self) -> None:
        self.counts: Counts = {}
        self.progress_calls: list[tuple[str, int, int]] = []

    def counted(
        self, collection: str, version: str | None, outcome: Outcome, documents: int
    ) -> None:
        key = (collection, version, outcome)
        self.counts[key] = self.counts.get(key, 0) + documents

    def progress(self, table: str, done: int, total: int) -> None:
        self.progress_calls.append((table, done, total))


async def loaded_in_python(
    documents: list[dict[str, Any]],
) -> dict[tuple[str | None, Outcome], int]:
    """The reference: `parlant_loader` run on each document, outcomes by stored version."""
    counts: dict[tuple[str | None, Outcome], int] = {}
    for document in documents:
        try:
            loaded = await parlant_loader(cast(BaseDocument, dict(document)))
        except Exception:
            loaded = None
        key = (version_key(document), outcome_of(document, loaded))
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.usefixtures("page_limits")
async def test_a_plan_counts_what_the_open_writes_and_writes_nothing(
    open_database: OpenDatabase,
) -> None:
    async with open_database() as database:
        await fill(database, "planned", mixed_documents())
        await fill(database, "opened", mixed_documents())
        table = f"{database.table_prefix}PLANNED"
        stored = await rows(database, table)

    planned, opened = Observer(), Observer()
    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database:
        database.migration_observer = planned
        counter.reset()
        assert await database.plan_migration("planned", parlant_loader)
        assert all(sql.startswith("SELECT") for sql in counter.log), counter.log
        assert await rows(database, table) == stored
        assert not await database.plan_migration("missing", parlant_loader)

        database.migration_observer = opened
        await database.get_collection("opened", BaseDocument, parlant_loader)

    by_version = {(v, o): n for (_, v, o), n in planned.counts.items()}
    assert {(v, o): n for (_, v, o), n in opened.counts.items()} == by_version
    assert by_version == await loaded_in_python(mixed_documents())
    assert len({o.kind for _, o in by_version}) == 3  # some kept, some migrated, some failed
    assert {c for c, _, _ in planned.counts} == {"planned"}
    for observer in (planned, opened):
        _, first_done, total = observer.progress_calls[0]
        assert first_done == 0 and total == observer.progress_calls[-1][1]
        dones = [done for _, done, _ in observer.progress_calls]
        assert dones == sorted(dones)
    if database_module.MIGRATION_PAGE_ROWS < 100:
        assert len(opened.progress_calls) > 10  # a call per page


async def test_a_collection_the_loader_keeps_is_told_whole_from_its_sample(
    open_database: OpenDatabase,
) -> None:
    documents = [
        {"id": f"d{n:04d}", "version": "0.3.0", "creation_utc": "2024", "n": n} for n in range(500)
    ]
    async with open_database() as database:
        await fill(database, "docs", documents)

    observer = Observer()
    counter = CountingConnectionFactory()
    async with open_database(connection_factory=counter) as database:
        database.migration_observer = observer
        counter.reset()
        await database.get_collection("docs", BaseDocument, parlant_loader)
        assert counter.rows_returned < 10  # the catalog and one row for the version

    assert observer.counts == {("docs", '"0.3.0"', Outcome("unchanged")): 500}
    assert observer.progress_calls == []  # nothing to read, nothing to migrate
