"""A real server with the read cache and the notifying listener on, driven by the official client.

The stores are on the embedded Snowflake emulator, where the cache is on by default; the
listener is the default `notify`. Waiting clients, concurrent writers on one session and
user text that once broke the emulator go through the HTTP API of a `parlant-router run`
process.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from parlant.client import ParlantClient

from tests.e2e.test_restart import DURABLE, client, emulated, wait_until_ready


def test_a_waiting_client_gets_another_clients_event_at_once(harness: Any, tmp_path: Path) -> None:
    config, port = harness.config(emulated(tmp_path, DURABLE))
    server = harness.run(config, port)
    log = server.log.read_text()
    assert "Store 'sessions' -> " in log and "(read cache " in log, server.tail()
    c = client(server.base_url)
    agent = c.agents.create(name="Ada")
    customer = c.customers.create(name="Bob")
    session = c.sessions.create(agent_id=agent.id, customer_id=customer.id, allow_greeting=False)
    base = len(c.sessions.list_events(session.id, wait_for_data=0))

    received: dict[str, Any] = {}

    def wait() -> None:
        waiting = ParlantClient(base_url=server.base_url, timeout=120)
        events = waiting.sessions.list_events(
            session.id, min_offset=base, source="human_agent", wait_for_data=60
        )
        received["at"] = time.monotonic()
        received["events"] = events

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(2.0)  # the waiter is parked in the listener by now
    assert waiter.is_alive()
    text = "Price is $HOME and $1, 100% sure: %(p0)s ?"
    sent_at = time.monotonic()
    event = c.sessions.create_event(
        session.id,
        kind="message",
        source="human_agent",
        message=text,
        participant={"id": "h-1", "display_name": "Hank"},
    )
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert [e.id for e in received["events"]] == [event.id]
    assert received["events"][0].data["message"] == text
    # Woken by the write, not by a poll that would come much later (or never, at 60 s).
    assert received["at"] - sent_at < 5.0
    assert server.stop(signal.SIGTERM) == 0, server.tail()


def test_rest_events_during_an_engine_turn_keep_offsets_dense(harness: Any, tmp_path: Path) -> None:
    config, port = harness.config(emulated(tmp_path, DURABLE))
    server = harness.run(config, port)
    c = client(server.base_url)
    agent = c.agents.create(name="Ada")
    customer = c.customers.create(name="Bob")
    session = c.sessions.create(agent_id=agent.id, customer_id=customer.id)
    sent = c.sessions.create_event(
        session.id, kind="message", source="customer", message="Hello, which plan am I on?"
    )

    def human(n: int) -> None:
        ParlantClient(base_url=server.base_url, timeout=120).sessions.create_event(
            session.id,
            kind="message",
            source="human_agent",
            message=f"note {n}",
            participant={"id": "h-1", "display_name": "Hank"},
        )

    # Human-agent events posted while the engine writes its statuses and reply.
    writers = [threading.Thread(target=human, args=(n,)) for n in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    replies = c.sessions.list_events(
        session.id, min_offset=sent.offset + 1, source="ai_agent", kinds="message", wait_for_data=90
    )
    assert replies, "no agent reply arrived"
    wait_until_ready(c, session.id, after=replies[0].offset)

    offsets = [e.offset for e in c.sessions.list_events(session.id)]
    assert offsets == list(range(len(offsets)))
    notes = [e for e in c.sessions.list_events(session.id, source="human_agent")]
    assert sorted(e.data["message"] for e in notes) == sorted(f"note {n}" for n in range(8))

    # What the cache served is what is stored: a fresh process reads the same conversation.
    before = [e.dict() for e in c.sessions.list_events(session.id)]
    assert server.stop(signal.SIGKILL) != 0
    again = harness.run(config, port)
    assert [e.dict() for e in client(again.base_url).sessions.list_events(session.id)] == before
    assert again.stop(signal.SIGTERM) == 0, again.tail()
