"""Two `parlant-router run` replicas on one shared emulator, driven by the official client.

`parlant-router emulator DIR` serves the database; both servers name `emulator: DIR` and
connect to it, with `server.replicas: many`. Customer messages go alternately to each
replica while the turns they start run on both; metadata patches come from both at once; a
replica is SIGKILLed in the middle of a turn and started again. Whatever happens, every
acknowledged event is stored exactly once, offsets are dense, and both replicas answer the
same.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from parlant.client import ParlantClient

from tests.e2e.conftest import BIN, Harness, ServerProcess, free_port

STALENESS = 0.5
#: Customer messages per session, each starting a turn (make bench posts 50 per session).
MESSAGES = 10
STORES = [
    "sessions",
    "customers",
    "context_variables",
    "agents",
    "tags",
    "guidelines",
    "relationships",
    "guideline_tool_associations",
    "evaluations",
    "journeys",
    "glossary",
    "canned_responses",
    "capabilities",
]


@pytest.fixture
def shared_emulator(tmp_path: Path) -> Iterator[Path]:
    """`parlant-router emulator DIR`, serving until the test ends."""
    directory = tmp_path / "sf"
    process = subprocess.Popen(
        [str(BIN / "parlant-router"), "emulator", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "serving" in line and "127.0.0.1:" in line, line
        yield directory
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def replica_argv(harness: Harness, config: Path, name: str) -> tuple[list[str], int]:
    """`parlant-router run` of replica `name` (its own ports and home); (argv, port)."""
    port = free_port()
    return [
        str(BIN / "parlant-router"),
        "run",
        "-c",
        str(config),
        "--set",
        f"server.port={port}",
        "--set",
        f"server.tool_service_port={free_port()}",
        "--set",
        f"server.home={harness.tmp_path / f'home-{name}'}",
    ], port


def start_replica(harness: Harness, config: Path, name: str) -> ServerProcess:
    return harness.start(*replica_argv(harness, config, name))


def start_replicas(harness: Harness, config: Path, names: list[str]) -> list[ServerProcess]:
    """Replicas `names`, started together (each startup mostly waits on its own work)."""
    servers = [harness.spawn(*replica_argv(harness, config, name)) for name in names]
    for server in servers:
        server.wait_ready()
    return servers


def client(server: ServerProcess) -> ParlantClient:
    return ParlantClient(base_url=server.base_url, timeout=120)


def events_when_quiet(c: ParlantClient, session_id: str, quiet: float = 3.0) -> list[Any]:
    """The session's events once no new one arrived for `quiet` seconds."""
    seen: list[Any] = []
    settled_at = time.monotonic()
    while time.monotonic() - settled_at < quiet:
        events = c.sessions.list_events(session_id, wait_for_data=0)
        if len(events) != len(seen):
            seen, settled_at = events, time.monotonic()
        time.sleep(0.3)
    return seen


def assert_stored_once(events: list[Any], acknowledged: set[str], messages: set[str]) -> None:
    offsets = [e.offset for e in events]
    assert sorted(offsets) == list(range(len(events))), f"offsets not dense: {sorted(offsets)}"
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids), "an event listed twice"
    assert acknowledged <= set(ids), f"acknowledged but missing: {acknowledged - set(ids)}"
    customer = [e.data["message"] for e in events if e.source == "customer"]
    assert sorted(customer) == sorted(messages), "a customer message missing or stored twice"


def test_two_replicas_share_sessions_safely(
    harness: Harness, shared_emulator: Path, tmp_path: Path
) -> None:
    config, _ = harness.config(
        {
            "server": {
                "nlp": "offline",
                "replicas": "many",
                "max_staleness": STALENESS,
                "home": str(tmp_path / "home"),
            },
            "backends": {"warehouse": {"type": "snowflake", "emulator": str(shared_emulator)}},
            "stores": {store: "warehouse" for store in STORES},
        }
    )
    a, b = start_replicas(harness, config, ["a", "b"])
    assert "Replicas: many" in a.log.read_text(), a.tail()
    replicas = [client(a), client(b)]

    agent = replicas[0].agents.create(name="Ada")
    customer = replicas[0].customers.create(name="Bob")
    sessions = [
        replicas[0]
        .sessions.create(agent_id=agent.id, customer_id=customer.id, allow_greeting=False)
        .id
        for _ in range(4)
    ]
    time.sleep(2 * STALENESS)  # the agent and customer are known to b's caches

    acknowledged: dict[str, set[str]] = {s: set() for s in sessions}
    messages: dict[str, set[str]] = {s: set() for s in sessions}
    failures: list[BaseException] = []

    def converse(session_id: str) -> None:
        try:
            for n in range(MESSAGES):
                text = f"message {n} of {session_id}"
                # Alternately to each replica; the turn runs where the message landed.
                event = replicas[n % 2].sessions.create_event(
                    session_id, kind="message", source="customer", message=text
                )
                acknowledged[session_id].add(event.id)
                messages[session_id].add(text)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=converse, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures

    for session_id in sessions:
        events = events_when_quiet(replicas[0], session_id)
        assert_stored_once(events, acknowledged[session_id], messages[session_id])
        time.sleep(2 * STALENESS)
        seen_by_b = replicas[1].sessions.list_events(session_id, wait_for_data=0)
        assert [e.id for e in seen_by_b] == [e.id for e in events], "the replicas disagree"

    # Concurrent metadata patches from both replicas: every key survives.
    target = sessions[0]

    def patch(replica: ParlantClient, prefix: str) -> None:
        for n in range(12):
            replica.sessions.update(target, metadata={"set": {f"{prefix}{n}": n}})

    patchers = [
        threading.Thread(target=patch, args=(replicas[0], "a")),
        threading.Thread(target=patch, args=(replicas[1], "b")),
    ]
    for thread in patchers:
        thread.start()
    for thread in patchers:
        thread.join(timeout=120)
    time.sleep(2 * STALENESS)
    for replica in replicas:
        assert len(replica.sessions.retrieve(target).metadata or {}) == 24

    # A client waiting on b is woken by a write on a, within the bound.
    waiting_on = sessions[1]
    base = len(replicas[1].sessions.list_events(waiting_on, wait_for_data=0))
    woken: dict[str, float] = {}

    def wait() -> None:
        events = client(b).sessions.list_events(
            waiting_on, min_offset=base, source="human_agent", wait_for_data=30
        )
        if events:
            woken["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.5)
    sent_at = time.monotonic()
    replicas[0].sessions.create_event(
        waiting_on,
        kind="message",
        source="human_agent",
        message="a human agent writes on replica a",
        participant={"id": "h-1", "display_name": "Hank"},
    )
    waiter.join(timeout=60)
    assert "at" in woken, "the client waiting on b was not woken"
    # The bound plus a few statements and the HTTP round trips.
    assert woken["at"] - sent_at < STALENESS + 2.0

    # SIGKILL a in the middle of a turn; b goes on, a comes back.
    victim = sessions[2]
    before = {e.id for e in events_when_quiet(replicas[0], victim)}
    killed = replicas[0].sessions.create_event(
        victim, kind="message", source="customer", message="and then a dies"
    )
    time.sleep(0.2)
    a.stop(signal.SIGKILL)
    survivor = replicas[1].sessions.create_event(
        victim, kind="message", source="customer", message="b carries on"
    )
    a = start_replica(harness, config, "a")
    replicas[0] = client(a)
    back = replicas[0].sessions.create_event(
        victim, kind="message", source="customer", message="a is back"
    )
    events = events_when_quiet(replicas[1], victim)
    assert_stored_once(
        events,
        before | {killed.id, survivor.id, back.id},
        messages[victim] | {"and then a dies", "b carries on", "a is back"},
    )
    for server in (a, b):
        assert server.stop(signal.SIGTERM) == 0, server.tail()
