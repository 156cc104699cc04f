"""`parlant-router copy`, `export` and `import` through real processes.

Sources are written by Parlant's own stores (a plain `parlant-server` home) or by hand in
Parlant's JSON layout; destinations are the embedded Snowflake emulator, JSON files and
export directories. What arrives is read back through the emulator, the files, and a real
server answering the official client.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from parlant.adapters.db.json_file import JSONFileDocumentDatabase
from parlant.client import ParlantClient
from parlant.core.agents import AgentDocumentStore
from parlant.core.common import IdGenerator
from parlant.core.customers import CustomerDocumentStore
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from tests.e2e.conftest import BIN, Harness
from tests.support.logger import RecordingLogger

CREATED = "2024-05-01T10:00:00+00:00"
STORES = ("agents", "customers", "sessions")


# --- Sources and what the emulator holds ----------------------------------------------------


async def _parlant_home(home: Path) -> dict[str, Any]:
    """A plain Parlant home written by Parlant's own stores (as `parlant-server` opens them):
    an agent, two customers, a session with three message events; their ids and contents."""
    home.mkdir(parents=True, exist_ok=True)
    logger = RecordingLogger()
    ids = IdGenerator()
    async with (
        JSONFileDocumentDatabase(logger, home / "agents.json") as agents_db,
        JSONFileDocumentDatabase(logger, home / "customers.json") as customers_db,
        JSONFileDocumentDatabase(logger, home / "sessions.json") as sessions_db,
    ):
        async with (
            AgentDocumentStore(ids, agents_db) as agents,
            CustomerDocumentStore(ids, customers_db) as customers,
            SessionDocumentStore(sessions_db) as sessions,
        ):
            agent = await agents.create_agent("Ada", description="Answers billing questions")
            ann = await customers.create_customer("Ann", extra={"tier": "gold"})
            bob = await customers.create_customer("Bob")
            session = await sessions.create_session(ann.id, agent.id, title="Billing")
            events = [
                await sessions.create_event(
                    session.id, source, EventKind.MESSAGE, "trace-1", {"message": text}
                )
                for source, text in (
                    (EventSource.CUSTOMER, "Hello"),
                    (EventSource.AI_AGENT, "Hi Ann, how can I help?"),
                    (EventSource.CUSTOMER, "My invoice, please"),
                )
            ]
    return {
        "agent": agent,
        "customers": [ann, bob],
        "session": session,
        "events": events,
    }


def _json_documents(path: Path) -> dict[str, list[dict[str, Any]]]:
    """A Parlant JSON store file's collections, each sorted by id."""
    stored = json.loads(path.read_text(encoding="utf-8"))
    return {name: sorted(docs, key=lambda d: str(d["id"])) for name, docs in stored.items()}


async def _query(directory: Path, sql: str) -> list[tuple[Any, ...]]:
    """One query on the emulator in `directory` (served here, or attached to its server)."""
    with SnowflakeEmulator(directory) as params:
        async with SnowflakeDocumentDatabase(RecordingLogger(), connection_params=params) as db:
            rows: list[tuple[Any, ...]] = await db.run("read", "test", lambda s: s.query(sql))
            return rows


async def _tables(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table of the emulator's schema: its documents (DATA), by ID."""
    names = await _query(
        directory,
        "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES "
        "WHERE TABLE_SCHEMA = CURRENT_SCHEMA() ORDER BY 1",
    )
    tables = {}
    for (name,) in names:
        rows = await _query(directory, f'SELECT TO_JSON(DATA) FROM "{name}" ORDER BY ID')
        tables[str(name)] = [json.loads(row[0]) for row in rows]
    return tables


def _rows(stdout: str) -> list[list[str]]:
    """The cells of the summary table's rows (rich's box characters as separators)."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def _warehouse_config(
    harness: Harness, emulator: Path, name: str, prefix: str = "PARLANT_"
) -> tuple[Path, int]:
    """A config routing agents, customers and sessions to the emulator in `emulator`."""
    return harness.config(
        {
            "backends": {"warehouse": {"type": "snowflake", "emulator": str(emulator)}},
            "stores": {
                store: {"backend": "warehouse", "table_prefix": f"{prefix}{store.upper()}_"}
                for store in STORES
            },
        },
        name=name,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refused command (exit 2, no traceback)."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- 1. A plain Parlant home to the emulator, served by a real server -------------------------


def test_a_plain_parlant_home_copied_to_snowflake_is_served_as_it_was(
    harness: Harness, tmp_path: Path
) -> None:
    home = tmp_path / "parlant-home"
    made = asyncio.run(_parlant_home(home))
    config, port = _warehouse_config(harness, tmp_path / "sf", "warehouse.yaml")

    result = harness.cli("copy", "--from-parlant-home", str(home), "--to-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 store(s) copied, 3 verified" in result.stdout, result.stdout
    rows = _rows(result.stdout)
    assert {row[0] for row in rows} == set(STORES)
    assert all(row[5] == "yes" for row in rows), result.stdout
    assert ["sessions", "events", "3"] == [c for c in rows if c[1] == "events"][0][:3]

    server = harness.run(config, port)
    client = ParlantClient(base_url=server.base_url, timeout=60)
    agents = client.agents.list()
    assert [(a.id, a.name, a.description) for a in agents] == [
        (made["agent"].id, "Ada", "Answers billing questions")
    ]
    customers = {c.id: c for c in client.customers.list()}
    for customer in made["customers"]:
        assert customers[customer.id].name == customer.name
        assert customers[customer.id].metadata == dict(customer.extra)
    session = client.sessions.retrieve(made["session"].id)
    assert (session.agent_id, session.customer_id, session.title) == (
        made["agent"].id,
        made["customers"][0].id,
        "Billing",
    )
    events = client.sessions.list_events(made["session"].id, kinds="message")
    assert [(e.id, e.offset, e.source, e.data) for e in events] == [
        (e.id, e.offset, e.source.value, e.data)
        for e in made["events"]
    ]
    assert server.stop() == 0
