"""A real server process, the official client, SIGTERM / SIGKILL, and a restart.

Stores on the embedded Snowflake emulator (and JSON / memory for the mixed routing), the
offline NLP service, `parlant-router run -c <tmp yaml>` as a subprocess on free ports.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from parlant.client import ParlantClient

BIN = Path(sys.executable).parent


def client(base_url: str) -> ParlantClient:
    return ParlantClient(base_url=base_url, timeout=120)


@dataclass(frozen=True)
class Created:
    agent: str
    tag: str
    customer: str
    session: str
    variable: str


def populate(base_url: str) -> Created:
    """Create every kind of entity of issue 4 through the client; the offline reply arrives."""
    c = client(base_url)
    agent = c.agents.create(name="Ada", description="Answers billing questions")
    tag = c.tags.create(name="vip")
    customer = c.customers.create(
        name="Bob", metadata={"tier": "gold", "region": "eu"}, tags=[tag.id]
    )
    session = c.sessions.create(agent_id=agent.id, customer_id=customer.id, title="billing")
    sent = c.sessions.create_event(
        session.id, kind="message", source="customer", message="Where is my invoice?"
    )
    replies = c.sessions.list_events(
        session.id,
        min_offset=sent.offset + 1,
        source="ai_agent",
        kinds="message",
        wait_for_data=90,
    )
    assert replies, "no agent reply arrived"
    assert "offline" in str(replies[0].data)
    wait_until_ready(c, session.id, after=replies[0].offset)
    c.sessions.create_event(
        session.id,
        kind="message",
        source="human_agent",
        message="A human here: your invoice is on its way.",
        participant={"id": "h-1", "display_name": "Hank"},
    )
    variable = c.context_variables.create(name="plan", description="The customer's plan")
    c.context_variables.set_value(variable.id, customer.id, data={"plan": "pro", "seats": 3})
    return Created(agent.id, tag.id, customer.id, session.id, variable.id)


def wait_until_ready(c: ParlantClient, session_id: str, after: int) -> None:
    """Wait for the engine's `ready` status after the reply, so no event is still coming."""
    for _ in range(60):
        statuses = c.sessions.list_events(
            session_id, min_offset=after, kinds="status", wait_for_data=5
        )
        if any((e.data or {}).get("status") == "ready" for e in statuses):
            return
    raise AssertionError("the session never reported ready")


def snapshot(base_url: str, created: Created) -> dict[str, Any]:
    """Everything the test created, read back through the client."""
    c = client(base_url)
    return {
        "agents": [a.dict() for a in c.agents.list()],
        "tags": sorted((t.dict() for t in c.tags.list()), key=lambda t: t["id"]),
        "customer": c.customers.retrieve(created.customer).dict(),
        "session": c.sessions.retrieve(created.session).dict(),
        "events": [e.dict() for e in c.sessions.list_events(created.session)],
        "variable": c.context_variables.retrieve(created.variable).dict(),
        "value": c.context_variables.get_value(created.variable, created.customer).dict(),
    }


def emulated(tmp_path: Path, stores: list[str]) -> dict[str, Any]:
    return {
        "backends": {"warehouse": {"type": "snowflake", "emulator": str(tmp_path / "sf")}},
        "stores": {store: "warehouse" for store in stores},
    }


DURABLE = ["sessions", "customers", "context_variables", "agents", "tags"]


def test_sigterm_restart_identical_then_sigkill_after_a_write(harness: Any, tmp_path: Path) -> None:
    config, port = harness.config(emulated(tmp_path, DURABLE))
    first = harness.run(config, port)
    created = populate(first.base_url)
    before = snapshot(first.base_url, created)
    assert first.stop(signal.SIGTERM) == 0, first.tail()
    assert "LOCAL EMULATOR" in first.log.read_text()

    # SIGTERM, start again with the same file: everything reads back identical.
    second = harness.run(config, port)
    assert snapshot(second.base_url, created) == before

    # Offsets run on from where they were; then SIGKILL right after acknowledged writes.
    c = client(second.base_url)
    event = c.sessions.create_event(
        created.session,
        kind="message",
        source="human_agent",
        message="acknowledged, then killed",
        participant={"id": "h-1", "display_name": "Hank"},
    )
    assert event.offset == before["events"][-1]["offset"] + 1
    carol = c.customers.create(name="Carol", metadata={"k": "v"})
    second.stop(signal.SIGKILL)

    third = harness.run(config, port)
    c = client(third.base_url)
    carols = [x for x in c.customers.list() if x.name == "Carol"]
    assert [(x.id, x.metadata) for x in carols] == [(carol.id, {"k": "v"})]
    events = c.sessions.list_events(created.session)
    assert [e.offset for e in events if e.id == event.id] == [event.offset]
    assert [e.dict() for e in events[:-1]] == before["events"]
    assert third.stop(signal.SIGTERM) == 0, third.tail()


def test_mixed_routing_keeps_durable_stores_only(harness: Any, tmp_path: Path) -> None:
    # Sessions on the emulator, customers (and agents/tags, so sessions keep their agent)
    # in JSON, context variables in memory.
    config, port = harness.config(
        {
            "backends": {
                "warehouse": {"type": "snowflake", "emulator": str(tmp_path / "sf")},
                "files": {"type": "json", "directory": str(tmp_path / "files")},
                "memory": {"type": "transient"},
            },
            "stores": {
                "sessions": "warehouse",
                "customers": "files",
                "agents": "files",
                "tags": "files",
                "context_variables": "memory",
            },
        }
    )
    first = harness.run(config, port)
    created = populate(first.base_url)
    before = snapshot(first.base_url, created)
    assert first.stop(signal.SIGTERM) == 0, first.tail()
    assert (tmp_path / "files" / "customers.json").is_file()

    # The `parlant --config` alias starts the same server from the same file.
    second = harness.start([str(BIN / "parlant"), "--config", str(config)], port)
    c = client(second.base_url)
    assert c.sessions.retrieve(created.session).dict() == before["session"]
    assert [e.dict() for e in c.sessions.list_events(created.session)] == before["events"]
    assert c.customers.retrieve(created.customer).dict() == before["customer"]
    assert c.agents.list() and c.agents.list()[0].dict() == before["agents"][0]
    assert c.context_variables.list() == []
    response = httpx.get(f"{second.base_url}/context-variables/{created.variable}")
    assert response.status_code == 404
    assert second.stop(signal.SIGTERM) == 0, second.tail()


def test_sigterm_during_startup_shuts_down_cleanly(harness: Any, tmp_path: Path) -> None:
    config, port = harness.config(emulated(tmp_path, DURABLE))
    server = harness.spawn([str(BIN / "parlant-router"), "run", "-c", str(config)], port)
    # Signal once the emulator is up and the stores are being opened, before serving.
    deadline = time.monotonic() + 120
    while "LOCAL EMULATOR" not in server.log.read_text(errors="replace"):
        assert server.process.poll() is None and time.monotonic() < deadline, server.tail()
        time.sleep(0.05)
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.tail()
    assert "Traceback" not in server.log.read_text(errors="replace")
    # Nothing was left holding the emulator's files: the next start serves normally.
    again = harness.run(config, port)
    assert again.stop(signal.SIGTERM) == 0, again.tail()
