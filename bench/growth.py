"""Stores that have grown (issue 13): what a server's start and a migration cost at the sizes a
long-running deployment reaches.

- **One emulator, counted at its door.** The bench process starts one `SnowflakeEmulator` with
  ``wrap_app``: server_turns' `WireMeter` counts every query request, and `ResultRows` inside
  it counts the rows of every result set it answers (the response's ``total``; the row counts
  that INSERT, UPDATE, DELETE and MERGE answer are not rows fetched). Counting at the wire sees
  what a warehouse would send and bill, whatever process asked.
- **Startup.** Real ``parlant-router run -c parlant.yaml`` servers, the warehouse backend
  pointed at that emulator as in bench/server_turns.py. A first, unmeasured start creates
  every store's tables; then, for each size of ``startup_events``, events are written straight
  into the sessions store's tables (`_events_sql`: one ``INSERT ... SELECT ... FROM
  TABLE(GENERATOR(ROWCOUNT => n))``, in the adapters' table layout, at the current version of
  Parlant's `SessionDocumentStore`, spread over ``startup_sessions`` sessions) and the server
  is started ``startup_runs`` times. Per start: the seconds until ``GET /agents`` answers 200,
  the statements and rows from launching it until no statement has arrived for
  ``quiet_seconds`` (the readiness polls included), and the process's peak resident memory
  (``VmHWM`` in ``/proc/<pid>/status``, read before it is stopped).
- **Migration.** For each size of ``large_migration_documents``, sessions written at
  version 0.8.0 (as in the adapters' migration workload) are opened by
  ``python -m bench.open_store`` with our adapter, in a process of its own: its peak memory
  (``VmHWM``) is the open's, not the emulator's, which runs in the bench process. Statements
  and rows are counted at the wire; the time is the open's, measured in that process.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from parlant.core.sessions import SessionDocumentStore
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.adapters import OURS, Adapter
from bench.open_store import CONNECTION_VARIABLE, status_bytes
from bench.parameters import Parameters
from bench.prune import PruneFigure, measure_prune
from bench.seed import Seeder, numbered, sequenced_time, session_template
from bench.server import free_port
from bench.server_turns import (
    PARLANT_ROUTER,
    QUERY_PATH,
    REPOSITORY,
    SHIPPED_CONFIG,
    ServerProcess,
    ServerTurnsError,
    StoreClassifier,
    WireCounts,
    WireMeter,
    server_env,
    set_arguments,
    table_prefixes,
    warehouse_overrides,
)
from parlant_router.snowflake.emulator import SnowflakeEmulator
from parlant_router.snowflake.identifiers import table_name

STARTUP = "startup"
MIGRATION = "migration"
PRUNE = "prune"
PARTS = (STARTUP, MIGRATION, PRUNE)
"""The workloads of this module, as ``python -m bench --only`` names them."""

OLD_SESSION_VERSION = "0.8.0"
"""The version migrating sessions are written at (SessionDocumentStore migrates it to 0.9.0)."""

_MIGRATION_PREFIX = "BENCH_LARGE_MIGRATION_"
_SESSION_DIGITS = 6
"""Session ids are ``session`` and this many digits (`Seeder.insert_generated`'s padding)."""
_EVENT_DIGITS = 10
_OPEN_SECONDS = 3_600.0
"""A migrating open that has not finished by then fails the run (a hung process)."""
_RAM_DIR = Path("/dev/shm")

# Snowflake's statement type ids of DML (0x3000-0x3FFF): their one-row result is a count.
_DML_TYPES = range(0x3000, 0x4000)


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Rows at the wire ------------------------------------------------------------------------


class ResultRows:
    """The emulator's middleware (`wrap`): counts the rows of the result sets it answers.

    The row count is the ``total`` of the connector's response (what the client downloads and
    decodes); DML answers a count of affected rows, which is not counted. Like `WireMeter`, it
    runs on the emulator's thread and is read from the bench's event loop, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows = 0

    @property
    def rows(self) -> int:
        """Rows of every result set answered so far."""
        with self._lock:
            return self._rows

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The ASGI app to serve instead of ``app``."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope.get("path") != QUERY_PATH:
                await app(scope, receive, send)
                return
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
                await send(message)

            await app(scope, receive, capture)
            rows = result_rows(b"".join(chunks))
            with self._lock:
                self._rows += rows

        return counted


def result_rows(body: bytes) -> int:
    """Rows of the result set in a query response's body (0 for DML, errors and the like)."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return 0
    if not isinstance(data, dict) or data.get("statementTypeId") in _DML_TYPES:
        return 0
    total = data.get("total")
    return total if isinstance(total, int) else 0


@dataclass(frozen=True)
class Counts:
    """Statements and result rows seen at the wire."""

    statements: int
    rows: int
    wire: WireCounts
    """The statements by store and shape."""

    def __sub__(self, earlier: Counts) -> Counts:
        return Counts(
            self.statements - earlier.statements, self.rows - earlier.rows, self.wire - earlier.wire
        )


@dataclass
class _Door:
    """Both meters of the emulator: statements (`WireMeter`) and rows (`ResultRows`)."""

    statements: WireMeter
    rows: ResultRows = field(default_factory=ResultRows)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return self.statements.wrap(self.rows.wrap(app))

    def snapshot(self) -> Counts:
        wire = self.statements.snapshot()
        return Counts(wire.total, self.rows.rows, wire)


# --- Seeding in the adapters' table layout ---------------------------------------------------


def _integer_division(numerator: str, denominator: int) -> str:
    # `/` yields a decimal in Snowflake and a double in DuckDB; both floor and cast the same.
    return f"CAST(FLOOR({numerator} / {denominator}) AS INTEGER)"


def _padded(expression: str, digits: int) -> str:
    return f"LPAD(TO_VARCHAR({expression}), {digits}, '0')"


def _events_sql(table: str, *, start: int, count: int, sessions: int, version: str) -> str:
    """One INSERT writing events ``start`` .. ``start + count - 1`` into ``table``.

    Event N belongs to session ``N mod sessions`` at offset ``N div sessions``, so writing
    more events later continues every session's offsets. Its ``creation_utc`` is a valid ISO
    time, in the order of N (one microsecond apart). Valid Snowflake SQL (`numbered` rows,
    text pieces around N parsed with PARSE_JSON, no backslash in any literal, which Snowflake
    and DuckDB read differently); the text is under 2 KB whatever ``count``.
    """
    ident = f"'event' || {_padded('N', _EVENT_DIGITS)}"
    session = f"'session' || {_padded(f'MOD(N, {sessions})', _SESSION_DIGITS)}"
    offset = f"TO_VARCHAR({_integer_division('N', sessions)})"
    minutes = _integer_division("N", 60_000_000)
    seconds = f"MOD({_integer_division('N', 1_000_000)}, 60)"
    created = (
        f"'2025-01-01T' || {_padded(_integer_division(minutes, 60), 2)} || ':' || "
        f"{_padded(f'MOD({minutes}, 60)', 2)} || ':' || {_padded(seconds, 2)} || '.' || "
        f"{_padded('MOD(N, 1000000)', 6)} || '+00:00'"
    )
    data = " || ".join(
        [
            """'{"id":"' """,
            ident,
            f"""'","version":"{version}","creation_utc":"' """,
            created,
            """'","session_id":"' """,
            session,
            """'","source":"customer","kind":"message","offset":' """,
            offset,
            """',"trace_id":"seed","data":{"message":"An earlier message in a long """
            """conversation.","participant":{}},"metadata":null,"deleted":false}' """,
        ]
    )
    return (
        f'INSERT INTO "{table}" (ID, VERSION, CREATION_UTC, DATA) '
        f"SELECT {ident}, '{version}', {created}, PARSE_JSON({data}) "
        f"FROM ({numbered(start, count)})"
    )


# --- Figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartRun:
    """One start of a server."""

    seconds: float
    """From launching the process to ``GET /agents`` answering 200."""
    counts: Counts
    """From launching it until no statement has arrived for ``quiet_seconds``."""
    peak_rss_bytes: int | None
    """The process's ``VmHWM`` once started and quiet."""
    exit_status: int | None
    error_lines: tuple[str, ...]


@dataclass
class StartupFigure:
    """Starts of a server over ``events`` stored events."""

    events: int
    sessions: int
    seed_seconds: float
    runs: list[StartRun] = field(default_factory=list)

    def mean_seconds(self) -> float | None:
        """Mean time to ready over the runs."""
        return statistics.fmean(r.seconds for r in self.runs) if self.runs else None

    def max_rows(self) -> int | None:
        return max((r.counts.rows for r in self.runs), default=None)

    def max_statements(self) -> int | None:
        return max((r.counts.statements for r in self.runs), default=None)

    def max_peak(self) -> int | None:
        """The highest peak memory of the runs (None if none could be read)."""
        peaks = [r.peak_rss_bytes for r in self.runs if r.peak_rss_bytes is not None]
        return max(peaks) if peaks else None


@dataclass(frozen=True)
class LargeMigrationFigure:
    """Opening a `SessionDocumentStore` whose ``documents`` sessions all need migrating."""

    documents: int
    counts: Counts
    seconds: float
    """The open, measured in its process."""
    rss_before_bytes: int | None
    """That process's resident memory just before the open (interpreter and imports)."""
    peak_rss_bytes: int | None
    """Its ``VmHWM`` after the open."""
    migrated: int
    """Sessions found at the store's version afterwards (must equal ``documents``)."""
    seed_seconds: float

    def per_thousand(self) -> float:
        """Statements per 1,000 documents."""
        return 1000 * self.counts.statements / self.documents

    def shape_count(self, verb: str) -> int:
        """Statements whose text begins with ``verb`` (``SELECT``, ``UPDATE``)."""
        return sum(
            n for (_, shape), n in self.counts.wire.by_shape.items() if shape.startswith(verb)
        )


@dataclass
class GrowthResults:
    """A whole run of this module's workloads."""

    parameters: Parameters
    started: datetime
    parts: tuple[str, ...]
    seconds: float = 0.0
    startup: list[StartupFigure] = field(default_factory=list)
    startup_seconds: float = 0.0
    migrations: list[LargeMigrationFigure] = field(default_factory=list)
    migration_seconds: float = 0.0
    prune: PruneFigure | None = None
    prune_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    """Steps that failed, each in one line (a server that did not start, an open that failed)."""


# --- Startup ---------------------------------------------------------------------------------


@dataclass
class _Servers:
    """Starts ``parlant-router run`` servers on the emulator, one at a time."""

    connection: Mapping[str, Any]
    door: _Door
    work: Path
    config_path: Path
    quiet_seconds: float
    starts: int = 0

    async def start(self) -> StartRun:
        """Start a server, wait until it is ready and quiet, read its memory, stop it."""
        self.starts += 1
        port = free_port()
        overrides = [
            *warehouse_overrides(self.connection),
            f"server.port={port}",
            f"server.tool_service_port={free_port()}",
            # One home for every start: a restarted deployment keeps its files.
            f"server.home={self.work / 'home-startup'}",
        ]
        before = self.door.snapshot()
        started = time.perf_counter()
        server = ServerProcess(
            [str(PARLANT_ROUTER), "run", "-c", str(self.config_path), *set_arguments(overrides)],
            port,
            self.work / f"server-startup-{self.starts}.log",
            server_env(self.connection),
        )
        try:
            await server.wait_ready()
            seconds = time.perf_counter() - started
            await self.door.statements.wait_quiet(self.quiet_seconds)
            # Before stopping: the process's own high-water mark, gone once it exits.
            peak = status_bytes(server.process.pid, "VmHWM")
        finally:
            exit_status = await server.stop()
        return StartRun(
            seconds=seconds,
            counts=self.door.snapshot() - before,
            peak_rss_bytes=peak,
            exit_status=exit_status,
            error_lines=tuple(server.error_lines()),
        )


async def measure_startup(
    p: Parameters,
    seeder: Seeder,
    servers: _Servers,
    results: GrowthResults,
    step: Callable[[str], None] = _log,
) -> None:
    """A first start (creating the tables), then ``startup_runs`` starts at each size."""
    prefix = table_prefixes(servers.config_path)["sessions"]
    begun = time.perf_counter()
    try:
        first = await servers.start()
    except ServerTurnsError as error:
        results.failures.append(f"first start: {str(error).splitlines()[0]}")
        step(f"startup: FAILED: {error}")
        return
    step(f"startup: first start (creates the tables) {first.seconds:.1f} s")
    version = SessionDocumentStore.VERSION.to_string()
    stored = 0
    sessions_written = False
    for events in sorted(p.startup_events):
        seeding = time.perf_counter()
        if events > 0 and not sessions_written:
            seeder.insert_generated(
                table_name(prefix, "sessions"), session_template(version), p.startup_sessions
            )
            sessions_written = True
        if events > stored:
            seeder.execute(
                _events_sql(
                    table_name(prefix, "events"),
                    start=stored,
                    count=events - stored,
                    sessions=p.startup_sessions,
                    version=version,
                )
            )
            stored = events
        figure = StartupFigure(
            events, p.startup_sessions if sessions_written else 0, time.perf_counter() - seeding
        )
        results.startup.append(figure)
        for _ in range(p.startup_runs):
            try:
                run = await servers.start()
            except ServerTurnsError as error:
                results.failures.append(
                    f"start over {events:,} events: {str(error).splitlines()[0]}"
                )
                step(f"startup: FAILED over {events:,} events: {error}")
                continue
            figure.runs.append(run)
            peak = "?" if run.peak_rss_bytes is None else f"{run.peak_rss_bytes / 2**20:.0f} MiB"
            step(
                f"startup over {events:,} events: {run.seconds:.1f} s, "
                f"{run.counts.statements} statements, {run.counts.rows:,} rows, peak {peak}"
            )
    results.startup_seconds = time.perf_counter() - begun


# --- Migration -------------------------------------------------------------------------------


def _open_in_process(prefix: str, connection: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``python -m bench.open_store prefix``; its JSON answer."""
    env = {**os.environ, CONNECTION_VARIABLE: json.dumps(dict(connection))}
    result = subprocess.run(
        [sys.executable, "-m", "bench.open_store", prefix],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPOSITORY,
        timeout=_OPEN_SECONDS,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"bench.open_store exited with {result.returncode}:\n{tail}")
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


async def measure_large_migration(
    documents: int,
    seeder: Seeder,
    door: _Door,
    connection: Mapping[str, Any],
) -> LargeMigrationFigure:
    """Write ``documents`` sessions at 0.8.0 (and the store's metadata), open them elsewhere."""
    prefix = f"{_MIGRATION_PREFIX}{documents}_SESSIONS_"
    seeding = time.perf_counter()
    sessions, metadata = table_name(prefix, "sessions"), table_name(prefix, "metadata")
    seeder.create_table(metadata)
    seeder.create_table(sessions)
    seeder.insert_generated(
        metadata,
        {"id": "meta__SEQ__", "version": OLD_SESSION_VERSION, "creation_utc": sequenced_time()},
        1,
    )
    seeder.insert_generated(sessions, session_template(OLD_SESSION_VERSION), documents)
    seed_seconds = time.perf_counter() - seeding
    before = door.snapshot()
    answer = await asyncio.to_thread(_open_in_process, prefix, connection)
    counts = door.snapshot() - before
    rows = seeder.execute(
        f'SELECT COUNT(*) FROM "{sessions}" WHERE VERSION = %(v)s',
        {"v": SessionDocumentStore.VERSION.to_string()},
    )
    return LargeMigrationFigure(
        documents=documents,
        counts=counts,
        seconds=float(answer["seconds"]),
        rss_before_bytes=answer.get("rss_before_bytes"),
        peak_rss_bytes=answer.get("peak_rss_bytes"),
        migrated=int(rows[0][0]),
        seed_seconds=seed_seconds,
    )


async def measure_migrations(
    p: Parameters,
    seeder: Seeder,
    door: _Door,
    connection: Mapping[str, Any],
    results: GrowthResults,
    step: Callable[[str], None] = _log,
) -> None:
    """`measure_large_migration` at each size of ``large_migration_documents``."""
    begun = time.perf_counter()
    for documents in sorted(p.large_migration_documents):
        try:
            figure = await measure_large_migration(documents, seeder, door, connection)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            results.failures.append(f"migration of {documents:,}: {str(error).splitlines()[0]}")
            step(f"migration of {documents:,} documents: FAILED: {error}")
            continue
        results.migrations.append(figure)
        peak = "?" if figure.peak_rss_bytes is None else f"{figure.peak_rss_bytes / 2**20:.0f} MiB"
        step(
            f"migration of {documents:,} documents: {figure.counts.statements} statements, "
            f"{figure.seconds:.1f} s, peak {peak}"
        )
    results.migration_seconds = time.perf_counter() - begun


# --- The workload ----------------------------------------------------------------------------


async def run_growth(
    p: Parameters,
    *,
    parts: Collection[str] = PARTS,
    config_path: Path = SHIPPED_CONFIG,
    step: Callable[[str], None] = _log,
) -> GrowthResults:
    """Measure ``parts`` (startup, migration) against one instrumented emulator."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS)}")
    selected = tuple(part for part in PARTS if part in parts)
    results = GrowthResults(p, datetime.now(timezone.utc), selected)
    clock = time.perf_counter()
    door = _Door(WireMeter(StoreClassifier(table_prefixes(config_path))))
    base = str(_RAM_DIR) if _RAM_DIR.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="parlant-bench-growth-", dir=base) as directory:
        work = Path(directory)
        emulator = SnowflakeEmulator(work / "snowflake", wrap_app=door.wrap)
        connection = emulator.start()
        seeder = Seeder(connection)
        try:
            if STARTUP in selected:
                servers = _Servers(connection, door, work, config_path, p.quiet_seconds)
                await measure_startup(p, seeder, servers, results, step)
            if MIGRATION in selected:
                await measure_migrations(p, seeder, door, connection, results, step)
            if PRUNE in selected:
                begun = time.perf_counter()
                results.prune = await measure_prune(
                    Adapter(OURS, connection),
                    seeder,
                    expired=p.prune_sessions,
                    kept=p.prune_kept_sessions,
                    events_per_session=p.prune_events_per_session,
                )
                results.prune_seconds = time.perf_counter() - begun
                step(
                    f"prune of {p.prune_sessions:,} sessions: {results.prune.statements} "
                    f"statements, {results.prune.seconds:.1f} s, verified: "
                    f"{results.prune.verified()}"
                )
        finally:
            seeder.close()
            emulator.stop()
    results.seconds = time.perf_counter() - clock
    return results
