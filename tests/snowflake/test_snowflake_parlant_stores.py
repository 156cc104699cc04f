"""Parlant's own SessionDocumentStore, CustomerDocumentStore and ContextVariableDocumentStore
running on our database, each with its table prefix, as the seed wires them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from parlant.core.agents import AgentId
from parlant.core.common import IdGenerator
from parlant.core.context_variables import ContextVariableDocumentStore
from parlant.core.customers import CustomerDocumentStore, CustomerId
from parlant.core.persistence.common import MigrationRequired, ServerOutdated
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore
from parlant.core.tags import TagId

from parlant_router.snowflake import CountingConnectionFactory

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase


async def test_sessions_and_events(open_database: OpenDatabase, table_prefix: str) -> None:
    counter = CountingConnectionFactory()
    async with (
        open_database(
            table_prefix=f"{table_prefix}SESSIONS_", connection_factory=counter
        ) as database,
        SessionDocumentStore(database, allow_migration=True) as store,
    ):
        session = await store.create_session(
            customer_id=CustomerId("c1"), agent_id=AgentId("a1"), title="first"
        )
        other = await store.create_session(customer_id=CustomerId("c2"), agent_id=AgentId("a1"))
        for text in ("hello", "how are you?", "bye"):
            await store.create_event(
                session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "trace", {"message": text}
            )
        counter.reset()
        event = await store.create_event(
            session.id, EventSource.AI_AGENT, EventKind.MESSAGE, "trace", {"message": "hi"}
        )
        # session check, latest offset (one row, sorted in SQL), insert.
        assert (counter.statements, counter.rows_returned) == (3, 2)
        assert event.offset == 3

        events = await store.list_events(session.id)
        assert [e.offset for e in events] == [0, 1, 2, 3]
        assert [e.data for e in events][-1] == {"message": "hi"}

        counter.reset()
        updated = await store.update_session(session.id, {"title": "renamed"})
        # The store reads the session, then updates it by id: the write needs no read.
        assert counter.statements == 2
        assert updated.title == "renamed"
        assert (await store.read_session(session.id)).title == "renamed"

        listing = await store.list_sessions(agent_id=AgentId("a1"), limit=1)
        assert [s.id for s in listing.items] == [session.id] and listing.total_count == 2
        rest = await store.list_sessions(agent_id=AgentId("a1"), cursor=listing.next_cursor)
        assert [s.id for s in rest.items] == [other.id]

        await store.delete_event(events[0].id)
        assert [e.offset for e in await store.list_events(session.id)] == [1, 2, 3]

        counter.reset()
        await store.delete_session(session.id)
        # One find for the session's events, then one statement per delete: each document
        # was just read, so each guarded delete by id goes out directly.
        assert counter.statements == 1 + 4 + 1
        assert [s.id for s in (await store.list_sessions()).items] == [other.id]

    # A restart sees the same state.
    async with (
        open_database(table_prefix=f"{table_prefix}SESSIONS_") as database,
        SessionDocumentStore(database, allow_migration=True) as store,
    ):
        assert [s.id for s in (await store.list_sessions()).items] == [other.id]


async def test_store_version_mismatch(open_database: OpenDatabase, table_prefix: str) -> None:
    prefix = f"{table_prefix}SESSIONS_"
    async with open_database(table_prefix=prefix) as database:
        async with SessionDocumentStore(database, allow_migration=True):
            pass
        metadata = await database.get_collection("metadata", dict, _identity)  # type: ignore[arg-type]
        await metadata.update_one({}, {"version": "0.1.0"})  # type: ignore[typeddict-unknown-key]

    async with open_database(table_prefix=prefix) as database:
        with pytest.raises(MigrationRequired):
            async with SessionDocumentStore(database, allow_migration=False):
                pass
        metadata = await database.get_collection("metadata", dict, _identity)  # type: ignore[arg-type]
        await metadata.update_one({}, {"version": "99.0.0"})  # type: ignore[typeddict-unknown-key]
        with pytest.raises(ServerOutdated):
            async with SessionDocumentStore(database, allow_migration=True):
                pass


async def _identity(document: Any) -> Any:
    return document


async def test_customers(open_database: OpenDatabase, table_prefix: str) -> None:
    async with (
        open_database(table_prefix=f"{table_prefix}CUSTOMERS_") as database,
        CustomerDocumentStore(IdGenerator(), database, allow_migration=True) as store,
    ):
        alice = await store.create_customer("Alice", extra={"tier": "gold"})
        bob = await store.create_customer("Bob", tags=[TagId("vip")])
        assert (await store.read_customer(alice.id)).extra == {"tier": "gold"}
        await store.update_customer(alice.id, {"name": "Alice B."})
        await store.upsert_tag(alice.id, TagId("vip"))
        tagged = await store.list_customers(tags=[TagId("vip")])
        assert {c.id for c in tagged.items} == {alice.id, bob.id}
        await store.remove_tag(bob.id, TagId("vip"))
        assert [c.name for c in (await store.list_customers(tags=[TagId("vip")])).items] == [
            "Alice B."
        ]
        await store.delete_customer(bob.id)
        names = {c.name for c in (await store.list_customers()).items}
        assert "Bob" not in names and "Alice B." in names


async def test_context_variables(open_database: OpenDatabase, table_prefix: str) -> None:
    async with (
        open_database(table_prefix=f"{table_prefix}CONTEXT_VARIABLES_") as database,
        ContextVariableDocumentStore(IdGenerator(), database, allow_migration=True) as store,
    ):
        variable = await store.create_variable("plan", description="the customer's plan")
        await store.update_value(variable.id, "alice", {"plan": "pro"})
        await store.update_value(variable.id, "alice", {"plan": "enterprise"})
        await store.update_value(variable.id, "bob", {"plan": "free"})
        value = await store.read_value(variable.id, "alice")
        assert value is not None and value.data == {"plan": "enterprise"}
        assert sorted(key for key, _ in await store.list_values(variable.id)) == [
            "alice",
            "bob",
        ]
        await store.delete_value(variable.id, "bob")
        assert await store.read_value(variable.id, "bob") is None
        await store.update_variable(variable.id, {"name": "subscription"})
        assert [v.name for v in await store.list_variables()] == ["subscription"]
        await store.delete_variable(variable.id)
        assert list(await store.list_variables()) == []
