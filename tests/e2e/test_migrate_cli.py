"""`parlant-router migrate` and `server.migrate: false`, through real processes.

Stores written at older versions: Parlant's session store on the embedded Snowflake emulator
(metadata and sessions at 0.8.0, events at 0.7.0 and at the store's 0.9.0) and its agent
store in a JSON file (at 0.3.0). What `migrate` writes is compared with what Parlant's own
loaders make of the same documents.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.client import ParlantClient
from parlant.core.agents import AgentDocumentStore
from parlant.core.common import IdGenerator
from parlant.core.persistence.document_database import BaseDocument
from parlant.core.sessions import SessionDocumentStore
from rich.console import Console

from parlant_router.migrate import ProgressDisplay
from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from tests.e2e.conftest import BIN
from tests.support.logger import RecordingLogger

PREFIX = "PARLANT_SESSIONS_"
CREATED = "2024-05-01T10:00:00+00:00"

SESSIONS_0_8_0 = [
    {
        "id": f"s{n}",
        "version": "0.8.0",
        "creation_utc": CREATED,
        "customer_id": "guest",
        "agent_id": "a1",
        "mode": "auto",
        "title": f"session {n}",
        "consumption_offsets": {"client": 0},
        "agent_states": [],
        "metadata": {"n": n},
    }
    for n in range(3)
]


def event(identifier: str, version: str, offset: int) -> dict[str, Any]:
    return {
        "id": identifier,
        "version": version,
        "creation_utc": CREATED,
        "session_id": "s0",
        "source": "customer",
        "kind": "message",
        "offset": offset,
        "trace_id": "t",
        "data": {"message": "hello"},
        "metadata": None,
        "deleted": False,
    }


# Parlant 3.3's event loader has no converter from 0.8.0: an event at 0.7.0 becomes 0.8.0
# and then fails, so it is moved to the failed-migrations table, as Parlant would.
EVENTS = [event("e0", "0.7.0", 0), event("e1", "0.9.0", 1), event("e2", "0.9.0", 2)]

AGENT_0_3_0 = {
    "id": "a1",
    "version": "0.3.0",
    "creation_utc": CREATED,
    "name": "Ada",
    "description": "Answers billing questions",
    "max_engine_iterations": 3,
    "composition_mode": "fluid_utterance",
}


async def _write_sessions(directory: Path) -> None:
    """The session tables as an older Parlant left them (rows written as they are)."""
    with SnowflakeEmulator(directory) as params:
        async with SnowflakeDocumentDatabase(
            RecordingLogger(), connection_params=params, table_prefix=PREFIX
        ) as database:
            for name, documents in (
                ("metadata", [{"id": "m1", "version": "0.8.0", "creation_utc": CREATED}]),
                ("sessions", SESSIONS_0_8_0),
                ("events", EVENTS),
            ):
                collection = await database.create_collection(name, BaseDocument)
                for document in documents:
                    await collection.insert_one(document)  # type: ignore[arg-type]


async def _tables(directory: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the emulator's schema and its rows, by ID."""
    with SnowflakeEmulator(directory) as params:
        async with SnowflakeDocumentDatabase(RecordingLogger(), connection_params=params) as db:
            names = await db.run(
                "read",
                "tables",
                lambda s: s.query(
                    "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES "
                    "WHERE TABLE_SCHEMA = CURRENT_SCHEMA() ORDER BY 1"
                ),
            )
            tables = {}
            for (name,) in names:
                sql = f'SELECT ID, VERSION, CREATION_UTC, TO_JSON(DATA) FROM "{name}" ORDER BY ID'
                tables[str(name)] = await db.run("read", name, lambda s, q=sql: s.query(q))
            return tables


def _documents(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [json.loads(row[3]) for row in rows]


async def _loaded_by_parlant() -> dict[str, list[Any]]:
    """What Parlant's own loaders make of the stored documents (None: rejected or failed)."""
    sessions = SessionDocumentStore(TransientDocumentDatabase())
    agents = AgentDocumentStore(IdGenerator(), TransientDocumentDatabase())

    async def events(document: dict[str, Any]) -> Any:
        try:
            return await sessions._event_document_loader(document)  # type: ignore[arg-type]
        except KeyError:
            return None

    return {
        "sessions": [await sessions._session_document_loader(d) for d in SESSIONS_0_8_0],  # type: ignore[arg-type]
        "events": [await events(d) for d in EVENTS],
        "agents": [await agents._document_loader(AGENT_0_3_0)],  # type: ignore[arg-type]
    }


@pytest.fixture
def older_stores(harness: Any, tmp_path: Path) -> tuple[Path, int, Path, Path]:
    """Sessions on the emulator and agents in a JSON file, both at older versions; the
    config routing them there: (config, port, emulator directory, agents file)."""
    emulator = tmp_path / "sf"
    asyncio.run(_write_sessions(emulator))
    files = tmp_path / "files"
    files.mkdir()
    agents = files / "agents.json"
    agents.write_text(
        json.dumps(
            {
                "metadata": [{"id": "m2", "version": "0.3.0", "creation_utc": CREATED}],
                "agents": [AGENT_0_3_0],
                "agent_tags": [],
            }
        )
    )
    config, port = harness.config(
        {
            "backends": {
                "warehouse": {"type": "snowflake", "emulator": str(emulator)},
                "files": {"type": "json", "directory": str(files)},
            },
            "stores": {
                "sessions": {"backend": "warehouse", "table_prefix": PREFIX},
                "agents": "files",
            },
        }
    )
    return config, port, emulator, agents


def _without_migration(config: Path) -> Path:
    """A copy of `config` with `server.migrate: false`."""
    document = yaml.safe_load(config.read_text())
    document["server"]["migrate"] = False
    copy = config.with_name("no-migrate.yaml")
    copy.write_text(yaml.safe_dump(document))
    return copy


def _rows(stdout: str) -> list[list[str]]:
    """The cells of the report's table rows (rich's box characters as separators)."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def test_migrate_dry_run_then_migrate_then_a_server_without_migration(
    harness: Any, older_stores: tuple[Path, int, Path, Path]
) -> None:
    config, port, emulator, agents_file = older_stores
    tables_before = asyncio.run(_tables(emulator))
    agents_bytes = agents_file.read_bytes()
    failed_events = f"{PREFIX}EVENTS_FAILED_MIGRATIONS"
    failed_agents = f"failed_migrations in {agents_file}"

    dry = harness.cli("migrate", "-c", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert _rows(dry.stdout) == [
        ["sessions", "metadata", "0.8.0", "1", "would migrate to 0.9.0"],
        ["sessions", "sessions", "0.8.0", "3", "would migrate to 0.9.0"],
        ["sessions", "events", "0.7.0", "1", f"would fail → {failed_events}"],
        ["sessions", "events", "0.9.0", "2", "unchanged"],
        ["agents", "metadata", "0.3.0", "1", "would migrate to 0.5.0"],
        ["agents", "agents", "0.3.0", "1", "would migrate to 0.5.0"],
    ], dry.stdout
    assert "nothing was written" in dry.stdout
    # Off a terminal, progress is plain lines on stderr.
    assert f"Reading {PREFIX}SESSIONS: 3 of 3 documents" in dry.stderr
    assert asyncio.run(_tables(emulator)) == tables_before
    assert agents_file.read_bytes() == agents_bytes

    done = harness.cli("migrate", "-c", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _rows(done.stdout) == [
        ["sessions", "metadata", "0.8.0", "1", "migrated to 0.9.0"],
        ["sessions", "sessions", "0.8.0", "3", "migrated to 0.9.0"],
        ["sessions", "events", "0.7.0", "1", f"failed → moved to {failed_events}"],
        ["sessions", "events", "0.9.0", "2", "unchanged"],
        ["agents", "metadata", "0.3.0", "1", "migrated to 0.5.0"],
        ["agents", "agents", "0.3.0", "1", "migrated to 0.5.0"],
    ], done.stdout
    assert f"Migrating {PREFIX}SESSIONS: 3 of 3 documents" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr

    parlant = asyncio.run(_loaded_by_parlant())
    tables = asyncio.run(_tables(emulator))
    assert _documents(tables[f"{PREFIX}SESSIONS"]) == parlant["sessions"]
    assert _documents(tables[f"{PREFIX}EVENTS"]) == [e for e in parlant["events"] if e]
    assert parlant["events"][0] is None
    assert _documents(tables[failed_events]) == [EVENTS[0]]
    assert [d["version"] for d in _documents(tables[f"{PREFIX}METADATA"])] == ["0.9.0"]
    stored = json.loads(agents_file.read_text())
    assert stored["agents"] == parlant["agents"]
    assert [d["version"] for d in stored["metadata"]] == ["0.5.0"]

    # A server that may not migrate now opens them: nothing needs migrating any more.
    server = harness.run(_without_migration(config), port)
    client = ParlantClient(base_url=server.base_url, timeout=60)
    assert client.sessions.retrieve("s1").title == "session 1"
    assert [agent.name for agent in client.agents.list()] == ["Ada"]
    assert server.stop() == 0

    again = harness.cli("migrate", "-c", str(config))
    assert again.returncode == 0, again.stdout + again.stderr
    assert {row[4] for row in _rows(again.stdout)} == {"unchanged"}, again.stdout
    assert "0 store(s) migrated, 0 failed" in again.stdout
    assert failed_agents not in again.stdout


def test_a_server_that_may_not_migrate_refuses_older_stores_in_one_line(
    harness: Any, older_stores: tuple[Path, int, Path, Path]
) -> None:
    config, port, emulator, _ = older_stores
    no_migrate = _without_migration(config)
    server = harness.spawn([str(BIN / "parlant-router"), "run", "-c", str(no_migrate)], port)
    assert server.process.wait(timeout=120) == 1
    log = server.log.read_text()
    assert (
        "stores.sessions: stored at version 0.8.0 but this Parlant's SessionDocumentStore is at "
        f"0.9.0, and server.migrate is false: run `parlant-router migrate -c {no_migrate}` first "
        "(or set server.migrate: true)"
    ) in log.splitlines()
    assert "Traceback" not in log and "MigrationRequired" not in log
    # Refused before anything was migrated.
    assert [
        d["version"] for d in _documents(asyncio.run(_tables(emulator))[f"{PREFIX}SESSIONS"])
    ] == ["0.8.0"] * 3


def test_migrate_names_an_unknown_or_unrouted_store_in_one_line(
    harness: Any, older_stores: tuple[Path, int, Path, Path]
) -> None:
    config = older_stores[0]
    unknown = harness.cli("migrate", "-c", str(config), "--stores", "sessions,sesions")
    assert unknown.returncode == 2
    assert unknown.stderr == "--stores: unknown store 'sesions' (did you mean 'sessions'?)\n"
    unrouted = harness.cli("migrate", "-c", str(config), "--stores", "tags")
    assert unrouted.returncode == 2
    assert unrouted.stderr == (
        "--stores: store 'tags' is not routed in the config (it keeps Parlant's default)\n"
    )
    empty = harness.cli("migrate", "-c", str(config), "--stores", " , ")
    assert empty.returncode == 2
    assert empty.stderr == "--stores: name at least one store (comma-separated)\n"
    assert unknown.stdout == unrouted.stdout == empty.stdout == ""


def test_migrate_names_each_store_whose_backend_cannot_connect(
    harness: Any, wrong_password_home: tuple[Path, str]
) -> None:
    snowflake_home, secret = wrong_password_home
    config, _ = harness.config(
        {
            "backends": {"warehouse": {"type": "snowflake", "connection_name": "wrong"}},
            "stores": {"sessions": "warehouse", "customers": "warehouse"},
        }
    )
    result = harness.cli("migrate", "-c", str(config), env={"SNOWFLAKE_HOME": str(snowflake_home)})
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["stores.sessions", "stores.customers"]
    for line in lines:
        assert "Incorrect username or password was specified" in line
    assert "0 store(s) migrated, 2 failed" in result.stdout
    output = result.stdout + result.stderr
    assert secret not in output and "Traceback" not in output


def test_progress_is_a_bar_per_table_on_a_terminal_and_lines_elsewhere() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    with ProgressDisplay(terminal, dry_run=False) as progress:
        for done in (0, 2_500, 5_000):
            progress("PARLANT_SESSIONS_EVENTS", done, 5_000)
        progress("PARLANT_SESSIONS_SESSIONS", 0, 10)
    shown = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "PARLANT_SESSIONS_EVENTS" in shown and "5000/5000" in shown
    assert "PARLANT_SESSIONS_SESSIONS" in shown and "0/10" in shown

    plain = Console(file=io.StringIO(), force_terminal=False, width=120)
    with ProgressDisplay(plain, dry_run=True) as progress:
        progress("PARLANT_SESSIONS_EVENTS", 2_500, 5_000)
    assert plain.file.getvalue() == "Reading PARLANT_SESSIONS_EVENTS: 2,500 of 5,000 documents\n"  # type: ignore[attr-defined]


SHIPPED = Path(__file__).resolve().parents[2] / "parlant.yaml"


def test_migrate_opens_every_store_of_the_shipped_file_vector_backed_ones_included(
    harness: Any, tmp_path: Path
) -> None:
    settings = [
        *("--set", f"server.home={tmp_path / 'home'}"),
        *("--set", f"backends.warehouse.emulator={tmp_path / 'sf'}"),
        *("--set", "backends.memory.type=transient"),
        *("--set", "stores.tags=memory"),
    ]
    first = harness.cli("migrate", "-c", str(SHIPPED), *settings)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = _rows(first.stdout)
    assert ["tags", "", "", "", "nothing stored (transient backend)"] in rows
    created = {row[0] for row in rows if row[4].startswith("created at ")}
    assert len(created) == 12 and {"journeys", "glossary", "capabilities"} <= created

    some = harness.cli(
        "migrate", "-c", str(SHIPPED), *settings, "--dry-run", "--stores", "glossary,sessions"
    )
    assert some.returncode == 0, some.stdout + some.stderr
    assert _rows(some.stdout) == [
        ["sessions", "metadata", "0.9.0", "1", "unchanged"],
        ["glossary", "metadata", "0.2.0", "1", "unchanged"],
        ["glossary", "vector_metadata", "1", "2", "unchanged"],
    ]
