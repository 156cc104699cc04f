"""Instruments shared by the read-cache tests: a gate that holds a collection call after it
ran, a fault plan armed by statement kind, exact comparison of documents, and a look inside
the cache for invariants."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
    FindResult,
    TDocument,
)

from parlant_router.durable.passthrough import PassThroughCollection, PassThroughDocumentDatabase
from parlant_router.stores.read_cache import PARTITION_COST, CachedCollection, document_cost
from tests.snowflake.connection_faults import FaultPlan, StatementLog


def new_prefix(letter: str = "C") -> str:
    """A table prefix of its own: tests share one emulator, never a table."""
    return f"{letter}{uuid.uuid4().hex[:10].upper()}_"


def exact(value: Any) -> str:
    """`value` as JSON text: equal texts mean equal documents, key order, int/float/bool kept."""
    return json.dumps(value, ensure_ascii=False)


def assert_same(actual: Any, expected: Any, context: object = "") -> None:
    """Documents (or lists of them) identical, not merely `==` (where True == 1 == 1.0)."""
    assert exact(actual) == exact(expected), (
        f"{context}\nactual:   {actual!r}\nexpected: {expected!r}"
    )


# A gate on the inner database ----------------------------------------------------------------


class Gate:
    """Holds the next `find` whose filters equal `filters`, *after* it read the database.

    The held call has its answer (a snapshot taken before whatever the test does next) and
    returns it only once `release()` is called: a slow load, made deterministic.
    """

    def __init__(self) -> None:
        self.filters: Where | None = None
        self.reached = asyncio.Event()
        self._released = asyncio.Event()
        self.calls: list[tuple[str, Any]] = []

    def arm(self, filters: Where) -> None:
        self.filters = filters
        self.reached.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def after(self, operation: str, argument: Any) -> None:
        if operation == "find" and self.filters is not None and argument == self.filters:
            self.filters = None
            self.reached.set()
            await self._released.wait()


class GatedCollection(PassThroughCollection[TDocument]):
    """Records every call (`before`) and lets the `Gate` hold a `find` once it has run."""

    def __init__(self, inner: DocumentCollection[TDocument], name: str, gate: Gate) -> None:
        super().__init__(inner, name)
        self.gate = gate

    async def before(self, operation: str, argument: Any) -> None:
        self.gate.calls.append((operation, argument))

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        result = await super().find(filters, limit, cursor, sort_direction)
        await self.gate.after("find", filters)
        return result


class GatedDocumentDatabase(PassThroughDocumentDatabase):
    """`inner` with every collection a `GatedCollection` on one shared `gate`."""

    def __init__(self, inner: DocumentDatabase) -> None:
        super().__init__(inner)
        self.gate = Gate()

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        return GatedCollection(collection, name, self.gate)


# Faults armed by statement kind ---------------------------------------------------------------


class ArmedLog(StatementLog):
    """The fault plan's statement log, which arms a fault on the next statement of a kind.

    `arm("INSERT", "after")`: the next statement starting with INSERT runs on the server, then
    its connection drops before the answer (the client cannot know it was applied);
    `"before"`: it fails before it is sent (an expired session, 390114), so it is never applied.
    """

    def __init__(self) -> None:
        super().__init__()
        self.plan: FaultPlan | None = None
        self._armed: tuple[str, str] | None = None

    def arm(self, keyword: str, when: str) -> None:
        assert when in ("before", "after")
        self._armed = (keyword.upper(), when)

    @property
    def armed(self) -> bool:
        return self._armed is not None

    def add(self, sql: str) -> int:
        number = super().add(sql)
        if self._armed is not None and self.plan is not None:
            keyword, when = self._armed
            if sql.lstrip().upper().startswith(keyword):
                self._armed = None
                (self.plan.expire_at if when == "before" else self.plan.drop_after).add(number)
        return number


def armed_plan() -> tuple[FaultPlan, ArmedLog]:
    log = ArmedLog()
    plan = FaultPlan(log=log)
    log.plan = plan
    return plan, log


# Looking inside the cache ---------------------------------------------------------------------


def cached_partitions(collection: DocumentCollection[Any]) -> dict[Any, list[dict[str, Any]]]:
    """What a CachedCollection holds right now, by partition key (white-box, for invariants)."""
    cached = cast(CachedCollection[Any], collection)
    return {
        key: [json.loads(text) for text in partition.documents.values()]
        for key, partition in cached._partitions.items()
    }


def held_bytes(collections: Sequence[DocumentCollection[Any]]) -> int:
    """What the budget charges for everything the cache holds, as `read_cache` defines it."""
    return sum(
        PARTITION_COST + sum(document_cost(document) for document in documents)
        for collection in collections
        for documents in cached_partitions(collection).values()
    )


def ids(documents: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(document["id"]) for document in documents]
