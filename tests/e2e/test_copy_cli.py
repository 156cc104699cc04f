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
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parlant.adapters.db.json_file import JSONFileDocumentDatabase
from parlant.client import ParlantClient
from parlant.core.agents import Agent, AgentDocumentStore
from parlant.core.common import IdGenerator
from parlant.core.customers import Customer, CustomerDocumentStore
from parlant.core.sessions import Event, EventKind, EventSource, Session, SessionDocumentStore

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from tests.e2e.conftest import BIN, Harness
from tests.support.logger import RecordingLogger

CREATED = "2024-05-01T10:00:00+00:00"
STORES = ("agents", "customers", "sessions")
PROGRESS = re.compile(r"^(Copying|Exporting|Importing|Reading) \w+: [\d,]+ of [\d,]+ documents$")


# --- Sources and what the emulator holds ----------------------------------------------------


@dataclass
class Made:
    """What `_parlant_home` created through Parlant's stores."""

    agent: Agent
    customers: list[Customer]
    session: Session
    events: list[Event]


async def _parlant_home(home: Path) -> Made:
    """A plain Parlant home written by Parlant's own stores (as `parlant-server` opens them):
    an agent, two customers, a session with three message events; their ids and contents."""
    home.mkdir(parents=True, exist_ok=True)
    logger = RecordingLogger()
    ids = IdGenerator()
    async with (
        JSONFileDocumentDatabase(logger, home / "agents.json") as agents_db,
        JSONFileDocumentDatabase(logger, home / "customers.json") as customers_db,
        JSONFileDocumentDatabase(logger, home / "sessions.json") as sessions_db,
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
    return Made(agent, [ann, bob], session, events)


def _json_documents(path: Path) -> dict[str, list[dict[str, Any]]]:
    """A Parlant JSON store file's collections, each sorted by id."""
    stored = json.loads(path.read_text(encoding="utf-8"))
    return {name: sorted(docs, key=lambda d: str(d["id"])) for name, docs in stored.items()}


async def _query(directory: Path, sql: str) -> list[tuple[Any, ...]]:
    """One query on the emulator in `directory` (served here, or attached to its server)."""
    rows: list[tuple[Any, ...]] = []
    with SnowflakeEmulator(directory) as params:
        async with SnowflakeDocumentDatabase(RecordingLogger(), connection_params=params) as db:
            rows = await db.run("read", "test", lambda s: s.query(sql))
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
    """The one stderr line of a refused command (exit 2, no traceback), after the progress
    lines of what it read before the error."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if not PROGRESS.match(line)]
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
    assert next(c for c in rows if c[1] == "events")[:3] == ["sessions", "events", "3"]

    server = harness.run(config, port)
    client = ParlantClient(base_url=server.base_url, timeout=60)
    agents = client.agents.list()
    assert [(a.id, a.name, a.description) for a in agents] == [
        (made.agent.id, "Ada", "Answers billing questions")
    ]
    listed = client.customers.list()
    assert isinstance(listed, list)  # no pagination asked: a plain list
    served = {c.id: (c.name, c.metadata) for c in listed}
    for made_customer in made.customers:
        assert served[made_customer.id] == (made_customer.name, dict(made_customer.extra))
    session = client.sessions.retrieve(made.session.id)
    assert (session.agent_id, session.customer_id, session.title) == (
        made.agent.id,
        made.customers[0].id,
        "Billing",
    )
    events = client.sessions.list_events(made.session.id, kinds="message")
    assert [(e.id, e.offset, e.source, e.data) for e in events] == [
        (e.id, e.offset, e.source.value, e.data) for e in made.events
    ]
    assert server.stop() == 0


# --- 2. Round trips ---------------------------------------------------------------------------


def _grown_home(home: Path, events: int) -> None:
    """Adds `events` message events (Parlant's event document, one session each ten) and
    as many sessions to the sessions.json Parlant wrote in `home`."""
    path = home / "sessions.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    session, event = stored["sessions"][0], stored["events"][0]
    for n in range(events // 10):
        stored["sessions"].append({**session, "id": f"s{n:06d}", "title": f"session {n} é"})
    for n in range(events):
        stored["events"].append(
            {
                **event,
                "id": f"e{n:07d}",
                "session_id": f"s{n // 10:06d}",
                "offset": n % 10,
                "data": {"message": f"message {n}: ça va? " + "x" * (n % 97), "n": 1.0},
            }
        )
    path.write_text(json.dumps(stored), encoding="utf-8")


def _environments_config(harness: Harness, tmp_path: Path) -> tuple[Path, int]:
    """JSON files in `files` by default; environments `warehouse` (the emulator in `sf`,
    PARLANT_ prefixes), `warehouse2` (the emulator in `sf2`, COPY_ prefixes), `same` (the
    emulator in `sf`, COPY_ prefixes) and `files3` (JSON files in `files3`)."""

    def routed(backend: str, prefix: str | None = None) -> dict[str, Any]:
        if prefix is None:
            return {store: backend for store in STORES}
        return {
            store: {"backend": backend, "table_prefix": f"{prefix}{store.upper()}_"}
            for store in STORES
        }

    return harness.config(
        {
            "backends": {
                "files": {"type": "json", "directory": str(tmp_path / "files")},
                "warehouse": {"type": "snowflake", "emulator": str(tmp_path / "sf")},
            },
            "stores": routed("files"),
            "environments": {
                "warehouse": {"stores": routed("warehouse", "PARLANT_")},
                "warehouse2": {
                    "backends": {
                        "warehouse2": {"type": "snowflake", "emulator": str(tmp_path / "sf2")}
                    },
                    "stores": routed("warehouse2", "COPY_"),
                },
                "same": {"stores": routed("warehouse", "COPY_")},
                "files3": {
                    "backends": {"files3": {"type": "json", "directory": str(tmp_path / "files3")}},
                    "stores": routed("files3"),
                },
            },
        },
        name="environments.yaml",
    )


def _non_empty(path: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: docs for name, docs in _json_documents(path).items() if docs}


def test_json_to_snowflake_to_an_export_to_json_and_between_prefixes(
    harness: Harness, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    asyncio.run(_parlant_home(files))
    _grown_home(files, 2_500)
    config, _ = _environments_config(harness, tmp_path)
    original = {store: _non_empty(files / f"{store}.json") for store in STORES}

    to_warehouse = harness.cli("copy", "-c", str(config), "--to-env", "warehouse")
    assert to_warehouse.returncode == 0, to_warehouse.stdout + to_warehouse.stderr
    assert "3 store(s) copied, 3 verified" in to_warehouse.stdout
    tables = asyncio.run(_tables(tmp_path / "sf"))
    assert len(tables["PARLANT_SESSIONS_EVENTS"]) == 2_503
    assert (
        sorted(tables["PARLANT_SESSIONS_EVENTS"], key=lambda d: d["id"])
        == (original["sessions"]["events"])
    )

    export = tmp_path / "export"
    exported = harness.cli("export", str(export), "-c", str(config), "-e", "warehouse")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "3 store(s) exported, 3 verified" in exported.stdout
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["format"] == "parlant-router-export"
    assert manifest["stores"]["sessions"]["collections"]["events"]["documents"] == 2_503
    with gzip.open(export / "sessions" / "events.jsonl.gz", "rt", encoding="utf-8") as lines:
        assert sum(1 for _ in lines) == 2_503

    imported = harness.cli("import", str(export), "-c", str(config), "-e", "files3")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "3 store(s) imported, 3 verified" in imported.stdout
    for store in STORES:
        assert _non_empty(tmp_path / "files3" / f"{store}.json") == original[store], store

    between = harness.cli("copy", "-c", str(config), "-e", "warehouse", "--to-env", "warehouse2")
    assert between.returncode == 0, between.stdout + between.stderr
    assert "3 store(s) copied, 3 verified" in between.stdout
    source_tables = asyncio.run(_tables(tmp_path / "sf"))
    copied = asyncio.run(_tables(tmp_path / "sf2"))
    assert {name.removeprefix("COPY_") for name in copied} == {
        name.removeprefix("PARLANT_") for name in source_tables
    }
    for name, documents in copied.items():
        assert documents == source_tables["PARLANT_" + name.removeprefix("COPY_")], name


def test_copy_between_two_prefixes_of_one_emulator(harness: Harness, tmp_path: Path) -> None:
    """Source and destination on the same backend (one emulator directory), other prefixes:
    the two sides share the backend (an emulator directory is served once per process)."""
    files = tmp_path / "files"
    asyncio.run(_parlant_home(files))
    config, _ = _environments_config(harness, tmp_path)
    first = harness.cli("copy", "-c", str(config), "--to-env", "warehouse")
    assert first.returncode == 0, first.stdout + first.stderr

    between = harness.cli("copy", "-c", str(config), "-e", "warehouse", "--to-env", "same")
    assert between.returncode == 0, between.stdout + between.stderr
    assert "3 store(s) copied, 3 verified" in between.stdout
    tables = asyncio.run(_tables(tmp_path / "sf"))
    copied = {name for name in tables if name.startswith("COPY_")}
    assert {n.removeprefix("COPY_") for n in copied} == {
        n.removeprefix("PARLANT_") for n in tables if n.startswith("PARLANT_")
    }
    for name in copied:
        assert tables[name] == tables["PARLANT_" + name.removeprefix("COPY_")], name


# --- 3. A destination that holds data: refused, merged, replaced; a dry run ------------------


def test_a_destination_holding_data_is_refused_merged_or_replaced_and_a_dry_run_writes_nothing(
    harness: Harness, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    asyncio.run(_parlant_home(files))
    config, _ = _environments_config(harness, tmp_path)
    first = harness.cli("copy", "-c", str(config), "--to-env", "warehouse")
    assert first.returncode == 0, first.stdout + first.stderr

    again = harness.cli("copy", "-c", str(config), "--to-env", "warehouse")
    line = _one_line_error(again)
    # The first store in the catalog's order (sessions) is refused: nothing is written.
    assert line.startswith("stores.sessions: PARLANT.PUBLIC.PARLANT_SESSIONS_* on "), line
    assert line.endswith(
        "already holds 5 document(s); use --merge to merge by id or --replace to empty it first"
    ), line

    # The source moves on: a customer renamed (same version), one added.
    customers_file = files / "customers.json"
    stored = json.loads(customers_file.read_text())
    stored["customers"][0] = {**stored["customers"][0], "name": "Ann Renamed"}
    stored["customers"].append({**stored["customers"][1], "id": "c-new", "name": "Cy"})
    customers_file.write_text(json.dumps(stored))
    source = _non_empty(customers_file)

    tables_before = asyncio.run(_tables(tmp_path / "sf"))
    dry = harness.cli("copy", "-c", str(config), "--to-env", "warehouse", "--merge", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run: nothing was written" in dry.stdout
    assert ["customers", "customers", "3", "", "", "would merge (destination holds 2)"] in (
        _rows(dry.stdout)
    ), dry.stdout
    assert asyncio.run(_tables(tmp_path / "sf")) == tables_before

    merged = harness.cli(
        "copy", "-c", str(config), "--to-env", "warehouse", "--stores", "customers", "--merge"
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    rows = {row[1]: row for row in _rows(merged.stdout)}
    assert rows["customers"][5] == "yes (merged: 1 new, 1 replaced, 1 kept)", merged.stdout
    assert "1 store(s) copied, 1 verified" in merged.stdout
    tables = asyncio.run(_tables(tmp_path / "sf"))
    assert tables["PARLANT_CUSTOMERS_CUSTOMERS"] == source["customers"]

    # --replace: the destination is the source again, a document it alone held gone.
    extra = {**source["customers"][0], "id": "zz-only-here"}
    asyncio.run(
        _query(
            tmp_path / "sf",
            "INSERT INTO PARLANT_CUSTOMERS_CUSTOMERS (ID, VERSION, CREATION_UTC, DATA) "
            f"SELECT 'zz-only-here', '{extra['version']}', '{CREATED}', "
            f"PARSE_JSON('{json.dumps(extra)}')",
        )
    )
    replaced = harness.cli(
        "copy", "-c", str(config), "--to-env", "warehouse", "--stores", "customers", "--replace"
    )
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert all(row[5] == "yes" for row in _rows(replaced.stdout)), replaced.stdout
    tables = asyncio.run(_tables(tmp_path / "sf"))
    assert tables["PARLANT_CUSTOMERS_CUSTOMERS"] == source["customers"]

    # A JSON destination under --dry-run keeps its bytes.
    to_files = harness.cli("copy", "-c", str(config), "-e", "warehouse", "--to-env", "files3")
    assert to_files.returncode == 0, to_files.stdout + to_files.stderr
    written = {p.name: p.read_bytes() for p in (tmp_path / "files3").iterdir()}
    for options in (["--dry-run"], ["--dry-run", "--replace"], ["--dry-run", "--merge"]):
        dry = harness.cli("copy", "-c", str(config), "--to-env", "files3", *options)
        # Without --merge or --replace, a dry run reports the refusal the copy would meet.
        assert dry.returncode == (2 if options == ["--dry-run"] else 0), dry.stdout + dry.stderr
        assert {p.name: p.read_bytes() for p in (tmp_path / "files3").iterdir()} == written
    refused = harness.cli("copy", "-c", str(config), "--to-env", "files3")
    line = _one_line_error(refused)
    assert line.startswith(
        f"stores.sessions: {tmp_path / 'files3' / 'sessions.json'} already holds"
    )


# --- 4. Errors: one line, exit 2 ---------------------------------------------------------------


def test_each_mistake_is_one_line_with_exit_2(harness: Harness, tmp_path: Path) -> None:
    files = tmp_path / "files"
    asyncio.run(_parlant_home(files))
    config, _ = _environments_config(harness, tmp_path)
    c = ("-c", str(config))

    missing = tmp_path / "no-such-home"
    line = _one_line_error(
        harness.cli("copy", "--from-parlant-home", str(missing), *c, "--to-env", "warehouse")
    )
    assert line == f"{missing}: no such directory (--from-parlant-home)"

    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    (empty_home / "notes.txt").write_text("not a store")
    line = _one_line_error(
        harness.cli("copy", "--from-parlant-home", str(empty_home), *c, "--to-env", "warehouse")
    )
    assert line.startswith(f"{empty_home}: no Parlant store file here (agents.json, "), line

    line = _one_line_error(harness.cli("copy", *c, "--to-env", "warehouse", "--stores", "sesions"))
    assert line == "--stores: unknown store 'sesions' (did you mean 'sessions'?)"

    line = _one_line_error(harness.cli("copy", *c, "--to-env", "warehouse", "--merge", "--replace"))
    assert line == "options: choose one of --merge and --replace"

    line = _one_line_error(harness.cli("copy", *c))
    assert line == "options: name the destination: --to-env ENV or --to-config FILE"

    transient, _ = harness.config(
        {"backends": {"memory": {"type": "transient"}}, "stores": {"customers": "memory"}},
        name="transient.yaml",
    )
    line = _one_line_error(harness.cli("copy", *c, "--to-config", str(transient)))
    assert line.startswith("stores.customers: backend 'memory' is transient (memory)"), line

    not_export = tmp_path / "not-an-export"
    not_export.mkdir()
    (not_export / "keep.txt").write_text("mine")
    line = _one_line_error(harness.cli("export", str(not_export), *c))
    assert line == f"{not_export}: not empty and not an export (no manifest.json)"
    assert [p.name for p in not_export.iterdir()] == ["keep.txt"]

    # Malformed exports: a manifest that is not one, a bad line in a file (named file:line).
    export = tmp_path / "export"
    done = harness.cli("export", str(export), *c)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = export / "manifest.json"
    good = manifest.read_bytes()
    manifest.write_text('{"format": "something else"}')
    line = _one_line_error(harness.cli("import", str(export), *c, "-e", "warehouse"))
    assert line == f"{manifest}: not a parlant-router-export manifest"
    manifest.write_text("{not json")
    line = _one_line_error(harness.cli("import", str(export), *c, "-e", "warehouse"))
    assert line.startswith(f"{manifest}: unreadable ("), line
    manifest.write_bytes(good)
    events = export / "sessions" / "events.jsonl.gz"
    with gzip.open(events, "rt", encoding="utf-8") as lines:
        kept = lines.read().splitlines()
    with gzip.open(events, "wt", encoding="utf-8") as out:
        out.write("\n".join([kept[0], '{"id": "broken", ', *kept[1:]]) + "\n")
    line = _one_line_error(harness.cli("import", str(export), *c, "-e", "warehouse"))
    assert line.startswith(f"{events}:2: not a JSON document ("), line


# --- 5. Interrupted: SIGKILL mid-copy, then the same command again --------------------------

KILLED_EVENTS = 20_000
"""Events of the killed copy's source: the emulator takes some 1,300 a second, so the copy
lasts long enough to be killed once its first rows are in."""


def _count(connection: Any, table: str) -> int:
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
        except Exception:  # not created yet
            return 0
        return int(cursor.fetchone()[0])


def test_a_copy_killed_midway_finishes_when_run_again_without_duplicates(
    harness: Harness, tmp_path: Path
) -> None:
    import snowflake.connector

    files = tmp_path / "files"
    asyncio.run(_parlant_home(files))
    _grown_home(files, KILLED_EVENTS)
    source = _non_empty(files / "sessions.json")
    config, _ = _environments_config(harness, tmp_path)
    command = [str(BIN / "parlant-router"), "copy", "-c", str(config), "--to-env", "warehouse"]
    events_table = "PARLANT_SESSIONS_EVENTS"

    # Served here, so its tables can be watched while the copy (attached to it) runs.
    emulator = SnowflakeEmulator(tmp_path / "sf")
    params = emulator.start()
    try:
        connection = snowflake.connector.connect(**params)
        copy = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ)
        )
        held = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and copy.poll() is None:
            held = _count(connection, events_table)
            if held > 0:
                copy.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        copy.communicate(timeout=60)
        assert copy.returncode == -signal.SIGKILL, "the copy finished before it was killed"
        held = _count(connection, events_table)
        assert 0 < held < len(source["events"]), held
        assert _count(connection, "PARLANT_SESSIONS_METADATA") == 0

        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "3 store(s) copied, 3 verified" in again.stdout, again.stdout
        events_row = next(row for row in _rows(again.stdout) if row[1] == "events")
        assert events_row[2] == f"{len(source['events']):,}"
        assert events_row[5].startswith("yes (resumed after "), events_row

        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*), COUNT(DISTINCT ID) FROM {events_table}")
            assert cursor.fetchone() == (len(source["events"]), len(source["events"]))
            cursor.execute(f"SELECT ID FROM {events_table} ORDER BY ID")
            assert [row[0] for row in cursor.fetchall()] == [e["id"] for e in source["events"]]
            cursor.execute("SELECT COUNT(*), COUNT(DISTINCT ID) FROM PARLANT_SESSIONS_SESSIONS")
            assert cursor.fetchone() == (len(source["sessions"]),) * 2
        connection.close()
    finally:
        emulator.stop()
