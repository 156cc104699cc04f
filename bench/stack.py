"""Parlant's real document stores on one adapter, with their collection calls counted.

The stores are SessionDocumentStore, CustomerDocumentStore and ContextVariableDocumentStore,
each on its own database with its own table prefix, as examples/seed-snowflake/parlant.yaml
puts them on Snowflake.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from parlant.core.common import IdGenerator
from parlant.core.context_variables import ContextVariableDocumentStore
from parlant.core.customers import CustomerDocumentStore
from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
    TDocument,
)
from parlant.core.sessions import SessionDocumentStore

from bench.adapters import Adapter
from parlant_router.durable.passthrough import PassThroughCollection, PassThroughDocumentDatabase

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
        """The floor: one statement per collection call."""
        return self.total()

    def ceiling(self) -> int:
        """The allowance: one statement per collection call, two for ``update_one``."""
        return self.total() + self.counts["update_one"]


class CountingCollection(PassThroughCollection[TDocument]):
    """Delegates to the adapter's collection and counts each call."""

    def __init__(
        self, inner: DocumentCollection[TDocument], name: str, calls: CollectionCalls
    ) -> None:
        super().__init__(inner, name)
        self._calls = calls

    async def before(self, operation: str, argument: Any) -> None:
        self._calls.counts[operation] += 1


class CountingDatabase(PassThroughDocumentDatabase):
    """Delegates to the adapter's database; its collections count their calls."""

    def __init__(self, inner: DocumentDatabase, calls: CollectionCalls) -> None:
        super().__init__(inner)
        self._calls = calls

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        return CountingCollection(collection, name, self._calls)


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
