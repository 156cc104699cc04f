"""Fault injection: connections dropped between and during statements, an expired session, a
full lock queue. Nothing may be lost or duplicated, and the reference must agree with the end
state."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import pytest
import snowflake.connector
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.core.persistence.common import ObjectId
from parlant.core.persistence.document_database import BaseDocument, DocumentCollection

from parlant_router.snowflake import (
    RetryPolicy,
    SnowflakeCredentials,
    SnowflakeDocumentDatabase,
)
from tests.snowflake.connection_faults import FaultPlan, faulty_factory
from tests.support.logger import RecordingLogger

FAST_RETRIES = RetryPolicy(attempts=5, initial_delay=0.01, max_delay=0.05, jitter=0)


def doc(identifier: str, n: int = 0, creation_utc: str = "2024") -> BaseDocument:
    return cast(
        BaseDocument,
        {"id": ObjectId(identifier), "version": "1.0.0", "creation_utc": creation_utc, "n": n},
    )


def rows_with_id(params: dict[str, Any], table: str, identifier: str) -> int:
    with snowflake.connector.connect(**params) as connection:
        row = (
            connection.cursor()
            .execute(f'SELECT COUNT(*) FROM "{table}" WHERE ID = %(id)s', {"id": identifier})
            .fetchone()
        )
        assert row is not None
        return int(row[0])


def kinds(plan: FaultPlan) -> list[str]:
    return [injected.rsplit(" #", 1)[0] for injected in plan.injected]


def next_statement(plan: FaultPlan, offset: int = 1) -> set[int]:
    return {len(plan.log) + offset}


async def open_faulty(
    plan: FaultPlan, params: dict[str, Any], prefix: str, logger: RecordingLogger
) -> tuple[SnowflakeDocumentDatabase, DocumentCollection[BaseDocument]]:
    database = SnowflakeDocumentDatabase(
        logger,
        params,
        table_prefix=prefix,
        connection_factory=faulty_factory(plan),
        retry=FAST_RETRIES,
        pool_size=2,
    )
    await database.__aenter__()
    return database, await database.create_collection("docs", BaseDocument)


async def test_drops_during_writes_neither_lose_nor_duplicate(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    plan = FaultPlan()
    database, docs = await open_faulty(plan, connection_params, table_prefix, logger)
    table = f"{table_prefix}DOCS"
    try:
        # The INSERT runs, then its answer is lost: the retry finds it and succeeds.
        plan.drop_after = next_statement(plan)
        await docs.insert_one(doc("a", 1))
        assert rows_with_id(connection_params, table, "a") == 1

        # Dropped before the INSERT reaches the server: the retry inserts it once.
        plan.drop_before = next_statement(plan)
        await docs.insert_one(doc("b", 2))
        assert rows_with_id(connection_params, table, "b") == 1

        # update_one: SELECT, then UPDATE whose answer is lost.
        plan.drop_after = next_statement(plan, 2)
        result = await docs.update_one({"id": {"$eq": "a"}}, cast(BaseDocument, {"n": 10}))
        assert (result.matched_count, result.updated_document) == (1, {**doc("a"), "n": 10})

        # delete_one: SELECT, then DELETE whose answer is lost.
        plan.drop_after = next_statement(plan, 2)
        deleted = await docs.delete_one({"id": {"$eq": "b"}})
        assert (deleted.deleted_count, deleted.deleted_document) == (1, doc("b", 2))

        # An upsert that inserts: SELECT finds nothing, the INSERT's answer is lost.
        plan.drop_after = next_statement(plan, 2)
        upserted = await docs.update_one({"id": {"$eq": "c"}}, doc("c", 3), upsert=True)
        assert (upserted.matched_count, upserted.updated_document) == (0, doc("c", 3))
        assert rows_with_id(connection_params, table, "c") == 1

        assert list(await docs.find({})) == [{**doc("a"), "n": 10}, doc("c", 3)]
        assert kinds(plan) == [
            "drop after",
            "drop before",
            "drop after",
            "drop after",
            "drop after",
        ]
        assert len(plan.connects) > 1  # dropped connections were replaced
        assert any("retrying" in m for m in logger.messages("warning"))
    finally:
        await database.__aexit__(None, None, None)


async def test_lock_queue_full_backs_off_on_the_same_connection(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    plan = FaultPlan()
    database, docs = await open_faulty(plan, connection_params, table_prefix, logger)
    try:
        connects = len(plan.connects)
        plan.lock_queue_full_at = next_statement(plan) | next_statement(plan, 2)
        await docs.insert_one(doc("a"))
        assert kinds(plan) == ["000625 at", "000625 at"]
        assert len(plan.connects) == connects
        assert list(await docs.find({})) == [doc("a")]
    finally:
        await database.__aexit__(None, None, None)


@pytest.mark.parametrize("errno", [390114, 390318])
async def test_expired_session_reconnects_with_a_freshly_read_token(
    connection_params: dict[str, Any],
    table_prefix: str,
    logger: RecordingLogger,
    tmp_path: Path,
    errno: int,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    credentials = SnowflakeCredentials(
        account=connection_params["account"],
        user=connection_params["user"],
        host=connection_params["host"],
        port=connection_params["port"],
        protocol=connection_params["protocol"],
        database=connection_params["database"],
        schema=connection_params["schema"],
        token_file=token_file,
        session_parameters=connection_params["session_parameters"],
    )
    plan = FaultPlan(expire_errno=errno)
    async with SnowflakeDocumentDatabase(
        logger,
        credentials=credentials,
        table_prefix=table_prefix,
        connection_factory=faulty_factory(plan),
        retry=FAST_RETRIES,
        pool_size=1,
    ) as database:
        docs = await database.create_collection("docs", BaseDocument)
        await docs.insert_one(doc("a"))
        token_file.write_text("rotated-token\n")  # as SPCS does
        plan.expire_at = next_statement(plan)
        assert await docs.find_one({}) == doc("a")

    assert kinds(plan) == [f"{errno} at"]
    assert [c["token"] for c in plan.connects] == ["first-token", "rotated-token"]
    assert all(c["authenticator"] == "oauth" for c in plan.connects)


async def test_random_faults_end_in_the_reference_state(
    connection_params: dict[str, Any], table_prefix: str, logger: RecordingLogger
) -> None:
    randomness = random.Random(20240611)
    plan = FaultPlan()
    database, docs = await open_faulty(plan, connection_params, table_prefix, logger)
    reference = await TransientDocumentDatabase().create_collection("docs", BaseDocument)
    try:
        for step in range(40):
            fault = randomness.choice(["none", "before", "after"])
            offset = randomness.choice([1, 2])
            if fault == "before":
                plan.drop_before = next_statement(plan, offset)
            elif fault == "after":
                plan.drop_after = next_statement(plan, offset)
            action = randomness.choice(["insert", "insert", "update", "delete"])
            if action == "insert":
                document = doc(f"d{step:02d}", step, f"2024-{step:02d}")
                await docs.insert_one(document)
                await reference.insert_one(document)
            elif action == "update":
                n = randomness.randrange(step + 1)
                change = cast(BaseDocument, {"n": 100 + step})
                assert await docs.update_one({"n": {"$gte": n}}, change) == (
                    await reference.update_one({"n": {"$gte": n}}, change)
                )
            else:
                n = randomness.randrange(step + 1)
                assert await docs.delete_one({"n": {"$lte": n}}) == (
                    await reference.delete_one({"n": {"$lte": n}})
                )
            plan.drop_before, plan.drop_after = set(), set()
        assert list(await docs.find({})) == list(await reference.find({}))
        assert len(plan.injected) >= 12
    finally:
        await database.__aexit__(None, None, None)
