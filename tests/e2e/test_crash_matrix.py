"""SIGKILL a real server at random moments of its turns, restart it on the same data.

For each durable backend (the embedded Snowflake emulator, JSON files) one chain of
trials: the server that starts to verify trial i is the one trial i + 1 kills. In a trial
the official client posts customer messages and waits for each turn's `ready` status
while a timer SIGKILLs the server after a random delay between 0 and one turn's time.
After the restart:

- every event whose post was acknowledged is there, once, at its offset;
- a message posted but not acknowledged is there at most once;
- offsets are dense (0, 1, 2, ...) and event ids unique;
- the agent, customer and session created before the first trial are still there (no
  store opened empty).

    PARLANT_ROUTER_CRASH_TRIALS=20 .venv/bin/pytest -s tests/e2e/test_crash_matrix.py

runs the issue's 20 trials per backend (PARLANT_ROUTER_CRASH_SEED repeats a run); the
default keeps the test short in `make test`.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from parlant.client import ParlantClient

TRIALS = int(os.environ.get("PARLANT_ROUTER_CRASH_TRIALS", "2"))
SEED = int(os.environ.get("PARLANT_ROUTER_CRASH_SEED") or secrets.randbelow(10**6))
STORES = ("agents", "customers", "sessions")
BACKENDS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "snowflake": lambda tmp_path: {"type": "snowflake", "emulator": str(tmp_path / "sf")},
    "json": lambda tmp_path: {"type": "json", "directory": str(tmp_path / "files")},
}


def client(server: Any) -> ParlantClient:
    return ParlantClient(base_url=server.base_url, timeout=60)


@dataclass
class Ledger:
    """What the client was told, across the trials of one chain."""

    acknowledged: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Event id -> (offset, message) of every customer message whose post returned."""
    posted: list[str] = field(default_factory=list)
    """Every message posted, acknowledged or not."""
    turn_seconds: list[float] = field(default_factory=list)


@dataclass
class Tally:
    """The numbers the chain reports (and asserts are zero, but for `trials`)."""

    trials: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    offset_gaps: list[str] = field(default_factory=list)
    opened_empty: list[str] = field(default_factory=list)


def turn(c: ParlantClient, session_id: str, text: str, ledger: Ledger) -> None:
    """Post `text` as the customer and wait for the turn's `ready` status."""
    started = time.monotonic()
    ledger.posted.append(text)
    event = c.sessions.create_event(session_id, kind="message", source="customer", message=text)
    ledger.acknowledged[event.id] = (event.offset, text)
    after = event.offset + 1
    while True:
        statuses = c.sessions.list_events(
            session_id, min_offset=after, kinds="status", wait_for_data=30
        )
        if any((e.data or {}).get("status") == "ready" for e in statuses):
            ledger.turn_seconds.append(time.monotonic() - started)
            return
        after = max([after, *(e.offset + 1 for e in statuses)])


def converse_until_killed(
    server: Any, session_id: str, ledger: Ledger, delay: float, trial: int
) -> None:
    """Turns on `server` until the timer's SIGKILL cuts one short."""
    timer = threading.Timer(delay, server.process.send_signal, (signal.SIGKILL,))
    timer.start()
    c = client(server)
    try:
        for number in range(1000):
            turn(c, session_id, f"trial {trial} message {number}", ledger)
    except httpx.TransportError:
        pass  # the kill: a post without an answer may or may not have been stored
    finally:
        timer.join()
    server.stop(signal.SIGKILL)


def verify(server: Any, created: dict[str, str], ledger: Ledger, tally: Tally, trial: int) -> None:
    """Compare what the restarted server holds with what the client was told."""
    c = client(server)
    for store, read in (
        ("agents", lambda: c.agents.retrieve(created["agent"])),
        ("customers", lambda: c.customers.retrieve(created["customer"])),
        ("sessions", lambda: c.sessions.retrieve(created["session"])),
    ):
        try:
            read()
        except Exception as error:
            tally.opened_empty.append(f"trial {trial}: {store}: {error}")
    if any(line.startswith(f"trial {trial}: sessions") for line in tally.opened_empty):
        return
    events = c.sessions.list_events(created["session"])
    offsets = [e.offset for e in events]
    if offsets != list(range(len(events))):
        tally.offset_gaps.append(f"trial {trial}: {offsets}")
    stored = {e.id: e for e in events}
    if len(stored) != len(events):
        tally.duplicated.append(f"trial {trial}: event ids repeat")
    for event_id, (offset, text) in ledger.acknowledged.items():
        event = stored.get(event_id)
        if event is None or event.offset != offset or (event.data or {}).get("message") != text:
            tally.lost.append(f"trial {trial}: {text} (offset {offset})")
    messages = [
        (e.data or {}).get("message")
        for e in events
        if e.source == "customer" and e.kind == "message"
    ]
    tally.duplicated += [f"trial {trial}: {m}" for m in set(messages) if messages.count(m) > 1]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_sigkill_during_turns_loses_no_acknowledged_event(
    harness: Any, tmp_path: Path, backend: str
) -> None:
    rng = random.Random(f"{SEED}-{backend}")
    print(f"\ncrash matrix {backend}: seed {SEED} (PARLANT_ROUTER_CRASH_SEED), {TRIALS} trials")
    config, port = harness.config(
        {
            "backends": {"durable": BACKENDS[backend](tmp_path)},
            "stores": dict.fromkeys(STORES, "durable"),
        }
    )
    started = time.monotonic()
    server = harness.run(config, port)
    c = client(server)
    agent = c.agents.create(name="Ada", description="Answers billing questions")
    customer = c.customers.create(name="Bob")
    session = c.sessions.create(agent_id=agent.id, customer_id=customer.id)
    created = {"agent": agent.id, "customer": customer.id, "session": session.id}
    ledger = Ledger()
    turn(c, session.id, "before the first kill", ledger)
    tally = Tally()
    for trial in range(TRIALS):
        # Between nothing done and one typical turn done (the first turn is the slowest).
        typical = sorted(ledger.turn_seconds)[len(ledger.turn_seconds) // 2]
        converse_until_killed(server, session.id, ledger, rng.uniform(0, typical), trial)
        server = harness.run(config, port)
        verify(server, created, ledger, tally, trial)
        tally.trials += 1
    assert server.stop(signal.SIGTERM) == 0, server.tail()
    summary = (
        f"{backend}: {tally.trials} trials, {len(ledger.acknowledged)} acknowledged, "
        f"{len(ledger.posted) - len(ledger.acknowledged)} posted without an answer, "
        f"lost {len(tally.lost)}, duplicated {len(tally.duplicated)}, "
        f"offset gaps {len(tally.offset_gaps)}, stores opened empty {len(tally.opened_empty)}, "
        f"{time.monotonic() - started:.0f} s, seed {SEED}"
    )
    print(summary)
    problems = tally.lost + tally.duplicated + tally.offset_gaps + tally.opened_empty
    assert tally.trials == TRIALS and not problems, f"{summary}: {problems[:10]}"


def test_a_lone_surrogate_fails_its_request_and_nothing_else(harness: Any, tmp_path: Path) -> None:
    # FastAPI parses bodies with json.loads, which takes "\ud800" into a str UTF-8 cannot
    # encode. Both durable backends refuse it before it is stored (on Snowflake before any
    # connection is borrowed, on JSON before it enters memory, where it would fail every
    # later save of the file); the server answers 422 and goes on serving.
    config, port = harness.config(
        {
            "backends": {
                "files": BACKENDS["json"](tmp_path),
                "warehouse": BACKENDS["snowflake"](tmp_path),
            },
            "stores": {"agents": "files", "customers": "files", "sessions": "warehouse"},
        }
    )
    server = harness.run(config, port)
    c = client(server)
    agent = c.agents.create(name="Ada", description="Answers billing questions")
    session = c.sessions.create(agent_id=agent.id, customer_id=c.customers.create(name="Bob").id)
    customers_file = tmp_path / "files" / "customers.json"
    before = customers_file.read_bytes()
    for path, body, reason in (
        # The name is a validated str (refused by FastAPI); metadata values reach the store.
        (
            "/customers",
            b'{"name": "Eve", "metadata": {"note": "a\\ud800b"}}',
            "a document holds text UTF-8 cannot encode",
        ),
        (
            f"/sessions/{session.id}/events",
            b'{"kind": "message", "source": "customer", "message": "a\\ud800b"}',
            "the string at 'data.message' is not valid Unicode",
        ),
    ):
        response = httpx.post(
            f"{server.base_url}{path}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        # The request's fault, answered as such (Parlant would answer 500 with a traceback).
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert reason in response.json()["detail"], response.text
    assert customers_file.read_bytes() == before
    ledger = Ledger()
    turn(c, session.id, "still served", ledger)
    events = c.sessions.list_events(session.id)
    assert [e.offset for e in events] == list(range(len(events)))
    assert [e.id for e in events if e.kind == "message" and e.source == "customer"] == list(
        ledger.acknowledged
    )
    assert server.stop(signal.SIGTERM) == 0, server.tail()
    log = server.log.read_text(errors="replace")
    assert f"cannot write {customers_file}: a document holds text UTF-8 cannot encode" in log
    assert "is not valid Unicode" in log, log[-3000:]
