"""The server-turns workload end to end at tiny sizes (the machinery, not the figures).

Two real `parlant-router run` servers (cache+notify, then off) against one instrumented
emulator: 1 warm-up + 1 measured turn at L=0, 2 idle clients for 2 s, and the cache memory
measurement over 10 sessions x 10 events. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import replace
from typing import Any

import pytest

from bench.parameters import QUICK
from bench.report import render, server_turns_targets
from bench.server_turns import (
    CACHE_NOTIFY,
    NO_STORE,
    OFF,
    QUERY_PATH,
    ServerTurnsResults,
    StoreClassifier,
    WireMeter,
    run_server_turns,
    statement_shape,
    table_prefixes,
)

TINY = replace(
    QUICK,
    server_warmup_turns=1,
    server_turns=1,
    server_latencies_ms=(0.0,),
    quiet_seconds=1.0,
    idle_clients=2,
    idle_window_seconds=2.0,
    idle_wait_seconds=1,
    memory_sessions=10,
    memory_events=10,
)


@pytest.fixture(scope="module")
def results() -> ServerTurnsResults:
    # One run serves every test here: starting two servers is the expensive part.
    return asyncio.run(run_server_turns(TINY))


# --- Without servers -------------------------------------------------------------------------


def test_statements_are_filed_under_the_store_whose_table_they_name() -> None:
    classifier = StoreClassifier(table_prefixes())
    assert classifier.table_store("PARLANT_GUIDELINES_GUIDELINES") == "guidelines"
    # A prefix that starts like another store's: the longest one wins.
    assert (
        classifier.table_store("PARLANT_GUIDELINE_TOOL_ASSOCIATIONS_ASSOCIATIONS")
        == "guideline_tool_associations"
    )
    shape = statement_shape(
        """SELECT TO_JSON(DATA) FROM "PARLANT_SESSIONS_EVENTS" WHERE """
        """TO_JSON(DATA['note']) = 'PARLANT_AGENTS_AGENTS' AND X = 42"""
    )
    # Literals (even one that looks like a table) and numbers are not part of the kind.
    assert shape == (
        """SELECT TO_JSON(DATA) FROM "PARLANT_SESSIONS_EVENTS" WHERE """
        """TO_JSON(DATA['note']) = ? AND X = N"""
    )
    assert classifier.store_of(shape) == "sessions"
    assert classifier.store_of("ALTER SESSION SET TIMEZONE = ?") == NO_STORE
    both = 'SELECT 1 FROM "PARLANT_AGENTS_AGENTS", "PARLANT_TAGS_TAGS"'
    assert classifier.store_of(both) == "agents+tags"


def test_the_meter_counts_query_requests_and_passes_them_on() -> None:
    meter = WireMeter(StoreClassifier(table_prefixes()))
    seen: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((await receive())["body"])

    async def request(path: str, sql: str) -> None:
        body = gzip.compress(json.dumps({"sqlText": sql}).encode())
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [(b"content-encoding", b"gzip")],
        }

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            pass

        await meter.wrap(app)(scope, receive, send)

    async def scenario() -> None:
        await request(QUERY_PATH, 'SELECT 1 FROM "PARLANT_TAGS_TAGS"')
        await request("/session/heartbeat", "")

    asyncio.run(scenario())
    counts = meter.snapshot()
    assert counts.total == 1
    assert counts.by_store == {"tags": 1}
    # The app receives the body the meter read, untouched.
    assert [json.loads(gzip.decompress(b))["sqlText"] for b in seen[:1]] == [
        'SELECT 1 FROM "PARLANT_TAGS_TAGS"'
    ]
    assert len(seen) == 2


# --- Real servers ----------------------------------------------------------------------------


def test_turns_are_counted_and_every_statement_is_filed(results: ServerTurnsResults) -> None:
    assert list(results.configurations) == [CACHE_NOTIFY.name, OFF.name]
    for figures in results.configurations.values():
        # A failed turn is the product misbehaving (a server error): its message says which.
        assert not figures.failures, f"{figures.configuration.name}: {figures.failures}"
        assert [t.warm_up for t in figures.turns] == [True, False]
        for turn in figures.turns:
            assert sum(turn.counts.by_store.values()) == turn.counts.total
            assert sum(turn.counts.by_shape.values()) == turn.counts.total
            assert 0 < turn.reply_seconds <= turn.ready_seconds
        assert figures.startup_statements > 0
        assert figures.exit_status == 0, figures.error_lines
    off = results.configurations[OFF.name]
    assert all(turn.counts.total > 0 for turn in off.turns)
    assert off.measured()[0].counts.by_store.get("sessions", 0) > 0


def test_idle_clients_are_measured(results: ServerTurnsResults) -> None:
    for figures in results.configurations.values():
        idle = figures.idle
        assert idle is not None
        assert idle.clients == TINY.idle_clients
        assert idle.seconds >= TINY.idle_window_seconds
        assert idle.polls > 0
        assert sum(idle.counts.by_store.values()) == idle.counts.total
    # Parlant's polling listener queries while clients wait: the meter must see it.
    off_idle = results.configurations[OFF.name].idle
    assert off_idle is not None and off_idle.counts.total > 0


def test_cache_memory_is_measured_per_bound(results: ServerTurnsResults) -> None:
    assert [m.max_bytes for m in results.memory] == list(TINY.memory_bounds_bytes)
    for memory in results.memory:
        assert (memory.sessions, memory.events_per_session) == (10, 10)
        # One load per session and one per session's events; everything fits the bounds.
        assert memory.loads == 2 * memory.sessions
        # Charged: at least each document's JSON text, and as much as the memory it keeps.
        assert memory.json_bytes < memory.used_bytes
        assert memory.retained_bytes <= memory.used_bytes
        assert memory.evictions == 0
        assert memory.peak_bytes >= memory.retained_bytes > 0


def test_report_renders(results: ServerTurnsResults) -> None:
    text = render(None, command="pytest", server_turns=results)
    for heading in (
        "## Machine",
        "## Whole turns through real servers",
        "### Targets (read cache and notifying listener)",
        f"### {CACHE_NOTIFY.name}",
        f"### {OFF.name}",
        "### Read cache memory",
    ):
        assert heading in text
    rows = server_turns_targets(results)
    assert {row.verdict for row in rows} <= {"met", "missed", "not measured"}
    # This run has no L=80 ms: the store-time target says so rather than guessing.
    assert any(row.verdict == "not measured" for row in rows)
