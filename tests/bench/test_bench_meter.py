"""The statement meter against our adapter's own count, on the emulator."""

from __future__ import annotations

from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore

from bench.adapters import OURS, Adapter
from bench.server import running_emulator


async def test_meter_agrees_with_our_adapters_own_count() -> None:
    with running_emulator() as params:
        adapter = Adapter(OURS, params)
        async with adapter.database("METER_") as database:
            async with SessionDocumentStore(database, allow_migration=True) as store:
                session = await store.create_session(
                    customer_id=CustomerId("customer"), agent_id=AgentId("agent")
                )
                for _ in range(3):
                    await store.create_event(
                        session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {"m": 1}
                    )
                await store.list_events(session.id)
            own: int = getattr(database, "statements_sent")  # noqa: B009
        assert adapter.meter.statements == own > 0
        assert adapter.meter.connections >= 1
