"""Parlant's real document stores on one adapter, with their collection calls counted.

The stores are the three the seed puts on Snowflake -- SessionDocumentStore,
CustomerDocumentStore and ContextVariableDocumentStore -- each on its own database with its
own table prefix, exactly as the seed's ``configure_container`` wires them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic

from parlant.core.common import IdGenerator
from parlant.core.context_variables import ContextVariableDocumentStore
from parlant.core.customers import CustomerDocumentStore
from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionIndex,
    CollectionSort,
    DeleteResult,
    DocumentCollection,
    DocumentDatabase,
    FindResult,
    InsertResult,
    TDocument,
    UpdateResult,
)
from parlant.core.sessions import SessionDocumentStore

from bench.adapters import Adapter

STORE_PREFIXES = {
    "sessions": "SESSIONS_",
    "customers": "CUSTOMERS_",
    "context_variables": "CONTEXT_VARIABLES_",
}


@dataclass
class CollectionCalls:
    """DocumentCollection calls made by the stores, by method name."""

    counts: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        """Calls that reach the database (``ensure_indexes`` is a no-op on standard tables)."""
        return sum(n for method, n in self.counts.items() if method != "ensure_indexes")

    def floor(self) -> int:
        """The issue's floor: one statement per collection call."""
        return self.total()

    def ceiling(self) -> int:
        """The issue's allowance: one statement per call, two for ``update_one``."""
        return self.total() + self.counts["update_one"]


class CountingCollection(DocumentCollection[TDocument], Generic[TDocument]):
    """Delegates to the adapter's collection and counts each call."""

    def __init__(self, inner: DocumentCollection[TDocument], calls: CollectionCalls) -> None:
        self._inner = inner
        self._calls = calls

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        self._calls.counts["find"] += 1
        return await self._inner.find(filters, limit, cursor, sort_direction)

    async def find_one(
        self, filters: Where, sort: CollectionSort | None = None
    ) -> TDocument | None:
        self._calls.counts["find_one"] += 1
        return await self._inner.find_one(filters, sort)

    async def ensure_indexes(self, indexes: Sequence[CollectionIndex]) -> None:
        self._calls.counts["ensure_indexes"] += 1
        await self._inner.ensure_indexes(indexes)

    async def insert_one(self, document: TDocument) -> InsertResult:
        self._calls.counts["insert_one"] += 1
        return await self._inner.insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        self._calls.counts["update_one"] += 1
        return await self._inner.update_one(filters, params, upsert)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        self._calls.counts["delete_one"] += 1
        return await self._inner.delete_one(filters)


Loader = Callable[[BaseDocument], Awaitable[TDocument | None]]


class CountingDatabase(DocumentDatabase):
    """Delegates to the adapter's database; its collections count their calls."""

    def __init__(self, inner: DocumentDatabase, calls: CollectionCalls) -> None:
        self._inner = inner
        self._calls = calls

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> DocumentCollection[TDocument]:
        return CountingCollection(await self._inner.create_collection(name, schema), self._calls)

    async def get_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> DocumentCollection[TDocument]:
        inner = await self._inner.get_collection(name, schema, document_loader)
        return CountingCollection(inner, self._calls)

    async def get_or_create_collection(
        self, name: str, schema: type[TDocument], document_loader: Loader[TDocument]
    ) -> DocumentCollection[TDocument]:
        inner = await self._inner.get_or_create_collection(name, schema, document_loader)
        return CountingCollection(inner, self._calls)

    async def delete_collection(self, name: str) -> None:
        await self._inner.delete_collection(name)


@dataclass
class Stack:
    """The three stores of one adapter, and the collection calls they make."""

    adapter: Adapter
    sessions: SessionDocumentStore
    customers: CustomerDocumentStore
    context_variables: ContextVariableDocumentStore
    calls: CollectionCalls

    def store(self, name: str) -> Any:
        """The store called ``name`` in a recorded turn (sessions, customers, context_variables)."""
        return {
            "sessions": self.sessions,
            "customers": self.customers,
            "context_variables": self.context_variables,
        }[name]


@asynccontextmanager
async def open_stack(
    adapter: Adapter,
    prefix: str,
    session_store: type[SessionDocumentStore] = SessionDocumentStore,
) -> AsyncIterator[Stack]:
    """Open the three stores on ``adapter``, tables named ``<prefix><STORE>_<COLLECTION>``.

    ``session_store`` may be a SessionDocumentStore subclass (same tables, other locking).
    """
    calls = CollectionCalls()
    async with AsyncExitStack() as exits:

        async def database(store: str) -> DocumentDatabase:
            inner = await exits.enter_async_context(
                adapter.database(prefix + STORE_PREFIXES[store])
            )
            return CountingDatabase(inner, calls)

        ids = IdGenerator()
        sessions = await exits.enter_async_context(
            session_store(await database("sessions"), allow_migration=True)
        )
        customers = await exits.enter_async_context(
            CustomerDocumentStore(ids, await database("customers"), allow_migration=True)
        )
        context_variables = await exits.enter_async_context(
            ContextVariableDocumentStore(
                ids, await database("context_variables"), allow_migration=True
            )
        )
        yield Stack(adapter, sessions, customers, context_variables, calls)
