"""Retention through real processes: `parlant-router prune`, a server pruning in the
background, and two replicas pruning one database at once. Sessions are written with
creation times in the past through Parlant's own store, then read back with the official
client or straight from the store."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from parlant.client import ParlantClient
from parlant.client.errors import NotFoundError
from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore

from parlant_router.backends.json_atomic import AtomicJSONFileDatabase
from parlant_router.config.naming import effective_table_prefix
from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from tests.e2e.conftest import Harness, ServerProcess
from tests.e2e.test_replicas import shared_emulator, start_replicas  # noqa: F401 (fixture)
from tests.support.logger import RecordingLogger

DELETED = re.compile(r"Retention of sessions \([^)]*\): deleted ([\d,]+) sessions, ([\d,]+) events")


@asynccontextmanager
async def emulator_database(directory: Path) -> AsyncIterator[DocumentDatabase]:
    """The sessions' tables in `directory`'s emulator (served by another process, or
    started here), as the router names them."""
    emulator = SnowflakeEmulator(directory)
    params = await asyncio.to_thread(emulator.start)
    try:
        prefix = effective_table_prefix("sessions", "snowflake", None)
        async with SnowflakeDocumentDatabase(
            RecordingLogger(), connection_params=params, table_prefix=prefix
        ) as database:
            yield database
    finally:
        await asyncio.to_thread(emulator.stop)


async def seed(
    database: DocumentDatabase, old: int, new: int, old_age: timedelta = timedelta(days=60)
) -> tuple[set[str], set[str]]:
    """`old` sessions last active `old_age` ago and `new` ones active yesterday, 3 events
    each; (old ids, new ids)."""
    now = datetime.now(timezone.utc)
    ids: tuple[set[str], set[str]] = (set(), set())
    async with SessionDocumentStore(database, allow_migration=True) as store:
        for kept, count, age in ((0, old, old_age), (1, new, timedelta(days=1))):
            for number in range(count):
                at = now - age
                session = await store.create_session(
                    CustomerId(f"c{number}"), AgentId("a"), creation_utc=at
                )
                for _ in range(3):
                    await store.create_event(
                        session.id,
                        EventSource.CUSTOMER,
                        EventKind.MESSAGE,
                        "t",
                        {},
                        creation_utc=at,
                    )
                ids[kept].add(session.id)
    return ids


async def stored_sessions(database: DocumentDatabase) -> dict[str, int]:
    """{session id: events} as stored."""
    async with SessionDocumentStore(database, allow_migration=False) as store:
        return {s.id: len(await store.list_events(s.id)) for s in await store.list_sessions()}


def deleted_in(log: str) -> tuple[int, int]:
    """Sessions and events a server's log says it deleted, over every pass."""
    found = [(int(s.replace(",", "")), int(e.replace(",", ""))) for s, e in DELETED.findall(log)]
    return sum(s for s, _ in found), sum(e for _, e in found)


def test_prune_command_counts_then_deletes_on_the_emulator_and_json(
    harness: Harness, tmp_path: Path
) -> None:
    emulator, files = tmp_path / "sf", tmp_path / "json"
    old, new = asyncio.run(_seed_emulator(emulator, 5, 3))
    old_evals = asyncio.run(_seed_json(files))
    config, _ = harness.config(
        {
            "backends": {
                "warehouse": {"type": "snowflake", "emulator": str(emulator)},
                "files": {"type": "json", "directory": str(files)},
            },
            "stores": {
                "sessions": {"backend": "warehouse", "retention": "30d"},
                "evaluations": {"backend": "files", "retention": "30d"},
                "customers": "warehouse",
            },
        }
    )
    before = (files / "evaluations.json").read_bytes()
    dry = harness.cli("prune", "-c", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 5 sessions, 15 events" in dry.stdout
    assert f"would delete {old_evals} evaluations, {old_evals} evaluation_tag_associations" in (
        dry.stdout
    )
    assert (files / "evaluations.json").read_bytes() == before
    assert set(asyncio.run(_stored(emulator))) == old | new

    done = harness.cli("prune", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "deleted 5 sessions, 15 events" in done.stdout
    assert asyncio.run(_stored(emulator)) == dict.fromkeys(new, 3)
    assert "evaluations" in done.stdout and (files / "evaluations.json").read_bytes() != before

    again = harness.cli("prune", "-c", str(config), "--stores", "sessions")
    assert again.returncode == 0 and "deleted 0 sessions, 0 events" in again.stdout

    wrong = harness.cli("prune", "-c", str(config), "--stores", "customers")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip() == (
        "--stores: store 'customers' sets no retention (stores that do: sessions, evaluations)"
    )
    typo = harness.cli("prune", "-c", str(config), "--stores", "sesions")
    assert typo.returncode == 2
    assert typo.stderr.strip() == "--stores: unknown store 'sesions' (did you mean 'sessions'?)"
    none = harness.cli(
        "prune",
        "-c",
        str(config),
        "--set",
        "stores.sessions.retention=null",
        "--set",
        "stores.evaluations.retention=null",
    )
    assert none.returncode == 0 and none.stdout.startswith("nothing to prune")


async def _seed_emulator(
    directory: Path, old: int, new: int, old_age: timedelta = timedelta(days=60)
) -> tuple[set[str], set[str]]:
    async with emulator_database(directory) as database:
        return await seed(database, old, new, old_age)


async def _stored(directory: Path) -> dict[str, int]:
    async with emulator_database(directory) as database:
        return await stored_sessions(database)


async def _seed_json(directory: Path) -> int:
    """Evaluations in `directory`/evaluations.json: 2 created 60 days ago, 1 yesterday, one
    tag each; the old ones."""
    from parlant.core.evaluations import EvaluationDocumentStore
    from parlant.core.tags import TagId

    directory.mkdir(parents=True)
    now = datetime.now(timezone.utc)
    async with (
        AtomicJSONFileDatabase(RecordingLogger(), directory / "evaluations.json") as database,
        EvaluationDocumentStore(database, allow_migration=True) as store,
    ):
        for days in (60, 60, 1):
            await store.create_evaluation(
                [], creation_utc=now - timedelta(days=days), tags=[TagId("t")]
            )
    return 2


def test_a_server_prunes_json_sessions_in_the_background(harness: Harness, tmp_path: Path) -> None:
    files = tmp_path / "json"
    files.mkdir()

    async def seed_json() -> tuple[set[str], set[str]]:
        async with AtomicJSONFileDatabase(RecordingLogger(), files / "sessions.json") as database:
            return await seed(database, 4, 2)

    _, new = asyncio.run(seed_json())
    config, port = configure(
        harness,
        {"prune_interval": "1s"},
        {
            "backends": {"files": {"type": "json", "directory": str(files)}},
            "stores": {"sessions": {"backend": "files", "retention": "30d"}},
        },
    )
    server = harness.run(config, port)
    wait_for(lambda: deleted_in(server.log.read_text()) == (4, 12), server)
    c = ParlantClient(base_url=server.base_url, timeout=60)
    assert {s.id for s in c.sessions.list()} == new
    for session_id in new:
        assert len(c.sessions.list_events(session_id, wait_for_data=0)) == 3
    assert server.stop() == 0


def test_two_replicas_pruning_at_once_delete_each_session_once_and_nothing_unexpired(
    harness: Harness,
    shared_emulator: Path,  # noqa: F811 (fixture)
) -> None:
    _, new = asyncio.run(_seed_emulator(shared_emulator, 30, 10))
    config, _ = configure(
        harness,
        {"replicas": "many", "prune_interval": "1s"},
        {
            "backends": {"warehouse": {"type": "snowflake", "emulator": str(shared_emulator)}},
            "stores": {
                "sessions": {"backend": "warehouse", "retention": "30d"},
                "evaluations": {"backend": "warehouse", "retention": "30d"},
            },
        },
    )
    replicas = start_replicas(harness, config, ["a", "b"])
    # Both replicas attempt a pass every second; wait until the old sessions are gone.
    wait_for(lambda: sum(deleted_in(r.log.read_text())[0] for r in replicas) >= 30, *replicas)
    time.sleep(3)  # more passes by both: nothing more may be deleted
    totals = [deleted_in(r.log.read_text()) for r in replicas]
    assert (sum(s for s, _ in totals), sum(e for _, e in totals)) == (30, 90), totals
    clients = [ParlantClient(base_url=r.base_url, timeout=60) for r in replicas]
    for c in clients:
        assert {s.id for s in c.sessions.list()} == new
    assert asyncio.run(_stored(shared_emulator)) == dict.fromkeys(new, 3)

    # Sessions that expire 12 s from now (the servers prune every second), read and so
    # cached by both replicas before then, disappear from both once one of them has pruned
    # them: the other learns it through the change feed.
    later, _ = asyncio.run(
        _seed_emulator(shared_emulator, 3, 0, timedelta(days=30) - timedelta(seconds=12))
    )
    for c in clients:
        for session_id in later:
            assert c.sessions.retrieve(session_id).id == session_id
    wait_for(lambda: sum(deleted_in(r.log.read_text())[0] for r in replicas) >= 33, *replicas)
    for c in clients:
        wait_for(lambda c=c: not any(_exists(c, session_id) for session_id in later), *replicas)
    for replica in replicas:
        assert replica.stop() == 0
    # The command takes its turn through the lease on the sessions' backend, also when it
    # prunes another store only.
    alone = harness.cli("prune", "-c", str(config), "--stores", "evaluations")
    assert alone.returncode == 0, alone.stderr
    assert "deleted 0 evaluations, 0 evaluation_tag_associations" in alone.stdout


def _exists(c: ParlantClient, session_id: str) -> bool:
    try:
        c.sessions.retrieve(session_id)
    except NotFoundError:
        return False
    return True


def configure(
    harness: Harness, server: dict[str, object], document: dict[str, object]
) -> tuple[Path, int]:
    """`harness.config(document)` with `server` keys added to the harness's own."""
    path, port = harness.config(document)
    body = yaml.safe_load(path.read_text())
    body["server"].update(server)
    path.write_text(yaml.safe_dump(body))
    return path, port


def wait_for(condition: object, *servers: ServerProcess, timeout: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n---\n".join(s.tail() for s in servers)
            raise AssertionError(f"not reached within {timeout:g} s:\n{tails}")
        time.sleep(0.3)
