"""Whole turns through real ``parlant-router run`` servers, counted where a warehouse would.

The other workloads replay store calls in this process. This one measures what a deployment
sees: server processes started from the shipped parlant.yaml (every store on Snowflake),
driven by Parlant's official client the way chat front ends drive them, and every statement
counted at the warehouse's door.

- **One emulator, instrumented.** The bench process starts one
  `parlant_router.snowflake.emulator.SnowflakeEmulator` with ``wrap_app=meter.wrap``: an
  ASGI middleware around fakesnow's app that counts every query request
  (``POST /queries/v1/query-request``), classifies it by the ``PARLANT_<STORE>_`` table it
  names, and sleeps L ms before handing it on (Snowflake's round trip). Counting at the wire
  sees exactly what a real warehouse would bill, whatever layer sent it.
- **Real servers.** ``parlant-router run -c parlant.yaml --set ...`` points the ``warehouse``
  backend at that emulator (``emulator=null`` plus the connection it serves), once per
  configuration: ``cache+notify`` (the defaults: read cache, notifying listener) and ``off``
  (``cache=false``, ``listener=poll``: the behaviour before the read cache). The overrides are
  checked with ``parlant-router routes`` first. The servers run one after the other on the
  same tables: the read cache assumes a single writer.
- **Turns.** A fresh agent, customer and session per latency; each turn posts a customer
  message and long-polls ``list_events`` (re-issued on HTTP 504) until the agent's message and
  then a ``ready`` status arrive, then waits until no statement has arrived for
  ``quiet_seconds``. The statements from posting to quiet are the turn's.
- **Idle.** ``idle_clients`` clients long-poll their own empty session; the statements during
  ``idle_window_seconds`` (after a settling second or two) are what waiting costs.
- **Reply latency.** Between the agent message's ``creation_utc`` (stamped by the server) and
  the moment the waiting client holds it; one machine, one clock.
- **Cache memory.** In this process, without servers: `CachedDocumentDatabase` over Parlant's
  `TransientDocumentDatabase` holding ``memory_sessions`` x ``memory_events`` documents shaped
  as `ConcurrentSessionDocumentStore` writes them, every partition read once, under each bound
  of ``memory_bounds_bytes``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import httpx
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.client import AsyncParlantClient
from parlant.client.core.api_error import ApiError
from parlant.client.errors import GatewayTimeoutError
from parlant.client.types import Event as ClientEvent
from parlant.core.agents import AgentId
from parlant.core.common import JSONSerializable, generate_id
from parlant.core.customers import CustomerId
from parlant.core.persistence.common import Cursor, SortDirection, Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    DeleteResult,
    DocumentCollection,
    FindResult,
    InsertResult,
    TDocument,
    UpdateResult,
)
from parlant.core.sessions import EventKind, EventSource
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.parameters import Parameters
from bench.server import free_port
from parlant_router.config.loading import load_config
from parlant_router.config.models import SnowflakeBackendConfig
from parlant_router.config.routes import resolve_routes
from parlant_router.durable.passthrough import PassThroughCollection, PassThroughDocumentDatabase
from parlant_router.snowflake.emulator import SnowflakeEmulator
from parlant_router.snowflake.emulator_wire import buffered_body, query_request
from parlant_router.stores.catalog import STORES
from parlant_router.stores.read_cache import CachedDocumentDatabase
from parlant_router.stores.session_store import ConcurrentSessionDocumentStore

REPOSITORY = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPOSITORY / "parlant.yaml"
"""The configuration under test: every store on the `warehouse` Snowflake backend."""
BACKEND = "warehouse"
PARLANT_ROUTER = Path(sys.executable).parent / "parlant-router"
QUERY_PATH = "/queries/v1/query-request"
"""The connector posts every statement here (gzip'd JSON with ``sqlText``)."""
PASSWORD_VARIABLE = "BENCH_PASSWORD"
"""The servers read the (dummy) warehouse password from this variable, never from argv."""
NO_STORE = "(no store table)"
"""The store label of a statement naming no store's table (session settings and the like)."""

_START_SECONDS = 180.0
_STOP_SECONDS = 60.0
_TURN_SECONDS = 300.0
"""A turn that has not reached `ready` by then fails the run (a hung server)."""
_QUIET_TIMEOUT_SECONDS = 60.0
_REPLY_WAIT_SECONDS = 60
"""``wait_for_data`` of the turn's long polls (a chat front end's usual minute)."""
_RAM_DIR = Path("/dev/shm")


class ServerTurnsError(RuntimeError):
    """The workload could not run (a server did not start, a turn never finished, ...)."""


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Counting at the wire --------------------------------------------------------------------

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_IN_LIST = re.compile(r"\bIN\s*\(\s*(?::N|\?)(?:\s*,\s*(?::N|\?))*\s*\)", re.IGNORECASE)
_TABLE = re.compile(r"\bPARLANT_[A-Z0-9_]+", re.IGNORECASE)


def statement_shape(sql: str) -> str:
    """``sql`` with literals and numbers replaced, whitespace collapsed: one key per statement kind.

    Values may be inlined as literals or bound (``:1``); either way they are not the kind, and
    neither is the length of an ``IN (...)`` list.
    """
    text = _LITERAL.sub(_literal, sql)
    text = _NUMBER.sub("N", text)
    text = _IN_LIST.sub("IN (...)", text)
    return " ".join(text.split())


def _literal(match: re.Match[str]) -> str:
    """``?`` for a value; a literal naming a JSON field (``DATA['session_id']``) is kept."""
    start = match.start()
    return match.group() if start and match.string[start - 1] == "[" else "?"


class StoreClassifier:
    """Names the store a statement belongs to, from the table prefixes of a configuration."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        # Longest first: a prefix may begin with another store's (PARLANT_GUIDELINE_... ).
        self._prefixes = sorted(
            ((prefix.upper(), store) for store, prefix in prefixes.items()),
            key=lambda item: -len(item[0]),
        )

    def table_store(self, table: str) -> str | None:
        """The store owning ``table``, if any."""
        upper = table.upper()
        return next((store for prefix, store in self._prefixes if upper.startswith(prefix)), None)

    def store_of(self, shape: str) -> str:
        """The store whose tables ``shape`` names; ``a+b`` for several, `NO_STORE` for none."""
        stores = sorted(
            {s for t in _TABLE.findall(shape) if (s := self.table_store(t)) is not None}
        )
        return "+".join(stores) if stores else NO_STORE


def table_prefixes(config_path: Path = SHIPPED_CONFIG) -> dict[str, str]:
    """The table prefix of every store routed to a table backend by ``config_path``."""
    routes = resolve_routes(load_config(config_path).config)
    return {r.store: r.table_prefix for r in routes if r.table_prefix is not None}


@dataclass(frozen=True)
class WireCounts:
    """Query requests seen by the emulator: in all, by store, and by (store, statement shape)."""

    total: int = 0
    by_store: Mapping[str, int] = field(default_factory=dict)
    by_shape: Mapping[tuple[str, str], int] = field(default_factory=dict)
    emulator_seconds: float = 0.0
    """Time with at least one of them inside fakesnow (the injected latency excluded)."""

    def __sub__(self, earlier: WireCounts) -> WireCounts:
        """What arrived between ``earlier`` and this snapshot."""
        return WireCounts(
            self.total - earlier.total,
            dict(Counter(self.by_store) - Counter(earlier.by_store)),
            dict(Counter(self.by_shape) - Counter(earlier.by_shape)),
            self.emulator_seconds - earlier.emulator_seconds,
        )


def _sql_text(scope: Scope, body: bytes) -> str:
    """The statement of a query request ("" if the body is not what the connector sends)."""
    request = query_request(scope, body)
    sql = str(request.get("sqlText", ""))
    # describeOnly requests are round trips too, for statements the connector prepares.
    return f"[describe] {sql}" if request.get("describeOnly") else sql


class WireMeter:
    """The emulator's middleware (`wrap`): counts query requests and delays each ``latency_ms``.

    The middleware runs on the emulator's thread and the bench reads the counts from its own
    event loop, hence the lock. The delay is an ``asyncio.sleep`` before fakesnow sees the
    request, so concurrent statements wait concurrently, as concurrent round trips do.
    """

    def __init__(self, classifier: StoreClassifier, *, background: Collection[str] = ()) -> None:
        self.latency_ms = 0.0
        self.classifier = classifier
        self.background = frozenset(background)
        """Stores whose statements are counted but do not break a quiet period (a change
        feed's polls, which never stop)."""
        self._lock = threading.Lock()
        self._total = 0
        self._by_store: Counter[str] = Counter()
        self._by_shape: Counter[tuple[str, str]] = Counter()
        self._emulator_seconds = 0.0
        self._inside = 0
        self._inside_since = 0.0
        self._last = time.monotonic()
        self.trace: list[tuple[float, str, str]] | None = None
        """Set to a list to also record (monotonic time, store, shape) per statement."""

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The ASGI app to serve instead of ``app`` (`SnowflakeEmulator`'s ``wrap_app``)."""

        async def metered(scope: Scope, receive: Receive, send: Send) -> None:
            if (
                scope["type"] != "http"
                or scope.get("method") != "POST"
                or scope.get("path") != QUERY_PATH
            ):
                await app(scope, receive, send)
                return
            body, replay = await buffered_body(receive)
            self.record(_sql_text(scope, body))
            latency = self.latency_ms
            if latency > 0:
                await asyncio.sleep(latency / 1000.0)
            self._entering()
            try:
                await app(scope, replay, send)
            finally:
                self._leaving()

        return metered

    def record(self, sql: str) -> None:
        """Count one statement."""
        shape = statement_shape(sql)
        store = self.classifier.store_of(shape)
        now = time.monotonic()
        with self._lock:
            self._total += 1
            self._by_store[store] += 1
            self._by_shape[(store, shape)] += 1
            if store not in self.background:
                self._last = now
            if self.trace is not None:
                self.trace.append((now, store, shape))

    # fakesnow runs each query synchronously on its event loop, so the durations of
    # concurrent requests overlap; the time with at least one inside is its utilisation.
    def _entering(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._inside_since = time.perf_counter()
            self._inside += 1

    def _leaving(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._emulator_seconds += time.perf_counter() - self._inside_since

    def snapshot(self) -> WireCounts:
        """Everything counted so far."""
        with self._lock:
            busy = self._emulator_seconds
            if self._inside:
                busy += time.perf_counter() - self._inside_since
            return WireCounts(self._total, dict(self._by_store), dict(self._by_shape), busy)

    def quiet_seconds(self) -> float:
        """Seconds since the last statement arrived (of a store not in ``background``)."""
        with self._lock:
            return time.monotonic() - self._last

    async def wait_quiet(self, seconds: float, timeout: float = _QUIET_TIMEOUT_SECONDS) -> bool:
        """Wait until no statement has arrived for ``seconds``; False if ``timeout`` came first."""
        deadline = time.monotonic() + timeout
        while (idle := self.quiet_seconds()) < seconds:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(0.05, seconds - idle))
        return True


# --- Server processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfiguration:
    """One way of running the server, as ``--set`` overrides over the shipped parlant.yaml."""

    name: str
    description: str
    overrides: tuple[str, ...] = ()
    cached: bool = True
    """Whether the stores get the read cache (checked against ``parlant-router routes``)."""

    @property
    def slug(self) -> str:
        """The name, usable in a file name."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


CACHE_NOTIFY = ServerConfiguration(
    "cache+notify", "the shipped defaults: read cache on, `server.listener: notify`"
)
OFF = ServerConfiguration(
    "off",
    "`backends.warehouse.cache=false`, `server.listener=poll`: the behaviour before the cache",
    (f"backends.{BACKEND}.cache=false", "server.listener=poll"),
    cached=False,
)
CONFIGURATIONS: tuple[ServerConfiguration, ...] = (CACHE_NOTIFY, OFF)


def _scalar(value: Any) -> str:
    """``value`` as the YAML scalar ``--set`` parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def warehouse_overrides(connection: Mapping[str, Any]) -> list[str]:
    """``--set`` overrides pointing the warehouse backend at ``connection`` (connector kwargs).

    Keys the backend declares are set as such; other connector arguments (timeouts) go to
    ``options``; the password is a reference to `PASSWORD_VARIABLE`, so it is not in argv.
    """
    key = f"backends.{BACKEND}"
    declared = {f.alias or name for name, f in SnowflakeBackendConfig.model_fields.items()}
    overrides = [f"{key}.emulator=null"]
    for name, value in connection.items():
        if name == "password":
            overrides.append(f"{key}.password=${{{PASSWORD_VARIABLE}}}")
        elif isinstance(value, Mapping):
            overrides += [f"{key}.{name}.{k}={_scalar(v)}" for k, v in value.items()]
        elif name in declared:
            overrides.append(f"{key}.{name}={_scalar(value)}")
        else:
            overrides.append(f"{key}.options.{name}={_scalar(value)}")
    return overrides


def server_env(connection: Mapping[str, Any]) -> dict[str, str]:
    """The servers' environment: the emulator's generated password in `PASSWORD_VARIABLE`."""
    env = {**os.environ, PASSWORD_VARIABLE: str(connection["password"]), "PYTHONUNBUFFERED": "1"}
    # The shipped file's base configuration, whatever the caller's shell selects.
    env.pop("PARLANT_ENV", None)
    env.pop("PARLANT_CONFIG", None)
    return env


def set_arguments(overrides: Sequence[str]) -> list[str]:
    return [argument for override in overrides for argument in ("--set", override)]


def _cache_column(routes_output: str) -> dict[str, str]:
    """The ``cache`` cell of each store in ``parlant-router routes``' table, by store."""
    cells_by_store: dict[str, str] = {}
    for line in routes_output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) >= 5 and cells[0] and cells[0] != "store":
            cells_by_store[cells[0]] = cells[3]
    return cells_by_store


def check_overrides(
    config_path: Path,
    configuration: ServerConfiguration,
    overrides: Sequence[str],
    env: Mapping[str, str],
) -> None:
    """Fail unless ``parlant-router routes`` accepts ``overrides`` with the cache as expected."""
    result = subprocess.run(
        [str(PARLANT_ROUTER), "routes", "-c", str(config_path), *set_arguments(overrides)],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise ServerTurnsError(
            f"parlant-router routes refused the {configuration.name} overrides: "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    caches = _cache_column(result.stdout)
    if not caches:
        _log(f"{configuration.name}: could not read the cache column of `parlant-router routes`")
    elif any(cell != "off" for cell in caches.values()) != configuration.cached:
        raise ServerTurnsError(
            f"{configuration.name}: the routes' read cache is {caches}, expected "
            f"{'on' if configuration.cached else 'off'}"
        )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"\[\s*(error|critical|exception)\s*\]|Traceback \(most recent", re.I)


class ServerProcess:
    """One ``parlant-router run`` subprocess, its output in ``log``."""

    def __init__(self, argv: Sequence[str], port: int, log: Path, env: Mapping[str, str]) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=REPOSITORY,
        )

    async def wait_ready(self, timeout: float = _START_SECONDS) -> None:
        """Until ``GET /agents`` answers 200; raises with the log's tail if it never does."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerTurnsError(
                        f"the server exited with {self.process.returncode}:\n{self.tail()}"
                    )
                try:
                    if (await http.get(f"{self.base_url}/agents")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise ServerTurnsError(f"the server was not ready after {timeout:g} s:\n{self.tail()}")

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited within a minute; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, _STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return await asyncio.to_thread(self.process.wait, _STOP_SECONDS)
        finally:
            self._log_file.close()

    def lines(self) -> list[str]:
        """The log so far, without colour codes."""
        if not self._log_file.closed:
            self._log_file.flush()
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [_ANSI.sub("", line) for line in text.splitlines()]

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.lines()[-count:])

    def error_lines(self) -> list[str]:
        """Lines logged at error level or above, and traceback headers."""
        return [line.strip() for line in self.lines() if _ERROR_LINE.search(line)]


# --- Turns, idle clients, figures ------------------------------------------------------------


@dataclass(frozen=True)
class TurnFigure:
    """One turn as the client and the warehouse saw it."""

    latency_ms: float
    warm_up: bool
    counts: WireCounts
    """Statements from posting the customer message until quiet."""
    reply_seconds: float
    """From posting to holding the agent's message."""
    ready_seconds: float
    """From posting to holding the ``ready`` status that follows it (the turn's end)."""
    reply_latency_seconds: float
    """From the agent message's ``creation_utc`` to the client holding it."""
    quiet: bool
    """False if statements never stopped for ``quiet_seconds`` (counted up to the timeout)."""


@dataclass(frozen=True)
class IdleFigure:
    """Clients waiting on empty sessions while nothing happens."""

    clients: int
    seconds: float
    counts: WireCounts
    polls: int
    """Long polls answered (by 504, as nothing arrives) during the window."""
    started: float = 0.0
    """When the window began (``time.monotonic()``)."""

    @property
    def per_second(self) -> float:
        return self.counts.total / self.seconds if self.seconds else 0.0


@dataclass
class ConfigurationFigures:
    """Everything measured on one server configuration."""

    configuration: ServerConfiguration
    startup_seconds: float = 0.0
    startup_statements: int = 0
    turns: list[TurnFigure] = field(default_factory=list)
    idle: IdleFigure | None = None
    error_lines: list[str] = field(default_factory=list)
    exit_status: int | None = None
    failures: list[str] = field(default_factory=list)
    """Steps that failed (a turn, the idle window, the server's start), each in one line."""

    def measured(self, latency_ms: float | None = None) -> list[TurnFigure]:
        """Measured (not warm-up) turns, at ``latency_ms`` or at every latency."""
        return [
            t
            for t in self.turns
            if not t.warm_up and (latency_ms is None or t.latency_ms == latency_ms)
        ]

    def latencies(self) -> list[float]:
        return sorted({t.latency_ms for t in self.turns})

    def statements(self, latency_ms: float | None = None) -> list[int]:
        return [t.counts.total for t in self.measured(latency_ms)]

    def mean_statements(self, latency_ms: float | None = None) -> float | None:
        counts = self.statements(latency_ms)
        return statistics.fmean(counts) if counts else None

    def mean_by_store(self, latency_ms: float | None = None) -> dict[str, float]:
        """Mean statements per measured turn, by store."""
        turns = self.measured(latency_ms)
        total: Counter[str] = Counter()
        for turn in turns:
            total.update(turn.counts.by_store)
        return {store: n / len(turns) for store, n in total.items()} if turns else {}

    def mean_by_shape(self, latency_ms: float | None = None) -> dict[tuple[str, str], float]:
        """Mean statements per measured turn, by (store, statement shape)."""
        turns = self.measured(latency_ms)
        total: Counter[tuple[str, str]] = Counter()
        for turn in turns:
            total.update(turn.counts.by_shape)
        return {key: n / len(turns) for key, n in total.items()} if turns else {}

    def mean_ready_seconds(self, latency_ms: float) -> float | None:
        turns = self.measured(latency_ms)
        return statistics.fmean(t.ready_seconds for t in turns) if turns else None

    def mean_reply_seconds(self, latency_ms: float) -> float | None:
        turns = self.measured(latency_ms)
        return statistics.fmean(t.reply_seconds for t in turns) if turns else None

    def reply_latencies(self, latency_ms: float) -> list[float]:
        return [t.reply_latency_seconds for t in self.measured(latency_ms)]


def _describe(error: BaseException) -> str:
    """``error`` on one line, at most 300 characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def _status(event: ClientEvent) -> str | None:
    data = event.data
    return str(data.get("status")) if isinstance(data, dict) and "status" in data else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


async def _events_after(
    client: AsyncParlantClient, session_id: str, min_offset: int, wait_seconds: int, deadline: float
) -> list[ClientEvent]:
    """A chat front end's long poll: re-issued on 504 (nothing new) until events or deadline."""
    while True:
        try:
            events = await client.sessions.list_events(
                session_id, min_offset=min_offset, wait_for_data=wait_seconds
            )
        except GatewayTimeoutError:
            events = []
        if events:
            return sorted(events, key=lambda e: e.offset)
        if time.monotonic() >= deadline:
            raise ServerTurnsError(f"session {session_id}: no event after offset {min_offset}")


async def run_turn(
    client: AsyncParlantClient,
    meter: WireMeter,
    session_id: str,
    message: str,
    *,
    warm_up: bool,
    quiet_seconds: float,
) -> TurnFigure:
    """Post ``message`` as the customer, wait for the reply and ``ready``, then for quiet."""
    before = meter.snapshot()
    started = time.perf_counter()
    deadline = time.monotonic() + _TURN_SECONDS
    sent = await client.sessions.create_event(
        session_id, kind="message", source="customer", message=message
    )
    next_offset = sent.offset + 1
    reply: tuple[float, float] | None = None
    ready: float | None = None
    while ready is None:
        events = await _events_after(client, session_id, next_offset, _REPLY_WAIT_SECONDS, deadline)
        held_utc = datetime.now(timezone.utc)
        elapsed = time.perf_counter() - started
        for event in events:
            if reply is None and event.source == "ai_agent" and event.kind == "message":
                latency = (held_utc - _aware(event.creation_utc)).total_seconds()
                reply = (elapsed, latency)
            elif reply is not None and event.kind == "status" and _status(event) == "ready":
                ready = elapsed
        next_offset = events[-1].offset + 1
    assert reply is not None
    quiet = await meter.wait_quiet(quiet_seconds)
    return TurnFigure(
        latency_ms=meter.latency_ms,
        warm_up=warm_up,
        counts=meter.snapshot() - before,
        reply_seconds=reply[0],
        ready_seconds=ready,
        reply_latency_seconds=reply[1],
        quiet=quiet,
    )


async def run_turns_at(
    client: AsyncParlantClient,
    meter: WireMeter,
    latency_ms: float,
    p: Parameters,
    figures: list[TurnFigure],
) -> None:
    """Warm-up and measured turns on a fresh agent, customer and session, at ``latency_ms``.

    Each turn is appended to ``figures`` as it completes; a turn that fails raises
    `ServerTurnsError` saying which one, the turns before it kept.
    """
    meter.latency_ms = latency_ms
    agent = await client.agents.create(name="Ada", description="Answers questions about plans")
    customer = await client.customers.create(name="Bob")
    session = await client.sessions.create(
        agent_id=agent.id, customer_id=customer.id, title=f"bench at L={latency_ms:g} ms"
    )
    await meter.wait_quiet(p.quiet_seconds)
    for number in range(p.server_warmup_turns + p.server_turns):
        try:
            figure = await run_turn(
                client,
                meter,
                session.id,
                f"Hello! Question {number + 1}: which plan am I on, and can I upgrade it?",
                warm_up=number < p.server_warmup_turns,
                quiet_seconds=p.quiet_seconds,
            )
        except (ApiError, httpx.HTTPError, ServerTurnsError) as error:
            raise ServerTurnsError(
                f"turn {number + 1} at L={latency_ms:g} ms: {_describe(error)}"
            ) from error
        figures.append(figure)


async def run_idle(
    client: AsyncParlantClient,
    meter: WireMeter,
    p: Parameters,
    *,
    waiters: Sequence[AsyncParlantClient] = (),
) -> IdleFigure:
    """``idle_clients`` clients long-polling empty sessions; statements in the window (L=0).

    The sessions are created through ``client``; the waiting clients poll through
    ``waiters`` in turn (several servers), by default through ``client``.
    """
    meter.latency_ms = 0.0
    agent = await client.agents.create(name="Idle", description="Waits")
    customer = await client.customers.create(name="Waiting customer")
    sessions = [
        await client.sessions.create(agent_id=agent.id, customer_id=customer.id, title=f"idle {i}")
        for i in range(p.idle_clients)
    ]
    await meter.wait_quiet(p.quiet_seconds)
    polls = 0

    async def wait_on(waiter: AsyncParlantClient, session_id: str) -> None:
        nonlocal polls
        offset = 0
        while True:
            try:
                events = await waiter.sessions.list_events(
                    session_id, min_offset=offset, wait_for_data=p.idle_wait_seconds
                )
            except GatewayTimeoutError:
                events = []
            polls += 1
            if events:  # not expected on an empty session; keep waiting for newer ones
                offset = max(e.offset for e in events) + 1

    through = list(waiters) or [client]
    tasks = [
        asyncio.create_task(wait_on(through[i % len(through)], s.id))
        for i, s in enumerate(sessions)
    ]
    try:
        # Each client's first poll may load its session into the cache: not steady state.
        await asyncio.sleep(min(2.0, p.quiet_seconds))
        before, polls_before = meter.snapshot(), polls
        started, window_start = time.perf_counter(), time.monotonic()
        await asyncio.sleep(p.idle_window_seconds)
        counts = meter.snapshot() - before
        seconds = time.perf_counter() - started
        answered = polls - polls_before
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return IdleFigure(len(sessions), seconds, counts, answered, window_start)


async def measure_configuration(
    configuration: ServerConfiguration,
    connection: Mapping[str, Any],
    meter: WireMeter,
    p: Parameters,
    work: Path,
    config_path: Path = SHIPPED_CONFIG,
) -> ConfigurationFigures:
    """Start a server in ``configuration``, run the turns and the idle window, stop it."""
    port = free_port()
    overrides = [
        *warehouse_overrides(connection),
        f"server.port={port}",
        f"server.tool_service_port={free_port()}",
        f"server.home={work / f'home-{configuration.slug}'}",
        *configuration.overrides,
    ]
    env = server_env(connection)
    check_overrides(config_path, configuration, overrides, env)
    figures = ConfigurationFigures(configuration)
    meter.latency_ms = 0.0
    before = meter.snapshot()
    started = time.perf_counter()
    server = ServerProcess(
        [str(PARLANT_ROUTER), "run", "-c", str(config_path), *set_arguments(overrides)],
        port,
        work / f"server-{configuration.slug}.log",
        env,
    )
    try:
        await _measure_server(server, figures, meter, p, started, before)
    except ServerTurnsError as error:  # the server did not start
        figures.failures.append(str(error).splitlines()[0])
        _log(f"{configuration.name:12} FAILED: {error}")
    finally:
        meter.latency_ms = 0.0
        figures.exit_status = await server.stop()
        figures.error_lines = server.error_lines()
    return figures


async def _measure_server(
    server: ServerProcess,
    figures: ConfigurationFigures,
    meter: WireMeter,
    p: Parameters,
    started: float,
    before: WireCounts,
) -> None:
    """Startup, turns at every latency and the idle window, on a started ``server``."""
    configuration = figures.configuration
    await server.wait_ready()
    await meter.wait_quiet(p.quiet_seconds)
    figures.startup_seconds = time.perf_counter() - started
    figures.startup_statements = (meter.snapshot() - before).total
    _log(
        f"{configuration.name:12} server ready: {figures.startup_seconds:.1f} s, "
        f"{figures.startup_statements} statements"
    )
    timeout = max(120.0, _REPLY_WAIT_SECONDS + 30.0, p.idle_wait_seconds + 30.0)
    async with httpx.AsyncClient(timeout=timeout) as http:
        client = AsyncParlantClient(base_url=server.base_url, httpx_client=http)
        # Each step has sessions of its own: one that fails (the product misbehaving) is
        # reported, and the next still runs.
        for latency in p.server_latencies_ms:
            begun = time.perf_counter()
            try:
                await run_turns_at(client, meter, latency, p, figures.turns)
            except (ApiError, httpx.HTTPError, ServerTurnsError) as error:
                _failed(figures, error)
            _log(
                f"{configuration.name:12} turns at L={latency:g} ms: "
                f"{figures.statements(latency)} statements "
                f"({time.perf_counter() - begun:.1f} s)"
            )
        if p.idle_clients > 0 and p.idle_window_seconds > 0:
            try:
                figures.idle = await run_idle(client, meter, p)
            except (ApiError, httpx.HTTPError) as error:
                _failed(figures, ServerTurnsError(f"idle window: {_describe(error)}"))
                return
            _log(
                f"{configuration.name:12} idle: {figures.idle.counts.total} statements "
                f"in {figures.idle.seconds:.1f} s"
            )


def _failed(figures: ConfigurationFigures, error: BaseException) -> None:
    text = str(error) if isinstance(error, ServerTurnsError) else _describe(error)
    figures.failures.append(text)
    _log(f"{figures.configuration.name:12} FAILED: {text}")


# --- Cache memory ----------------------------------------------------------------------------


async def _identity(document: BaseDocument) -> BaseDocument | None:
    return document


def _turn_events(customer: CustomerId, agent: AgentId) -> list[tuple[EventSource, EventKind, Any]]:
    """The events of one turn as the server writes them (seen in the server runs above)."""
    agent_participant = {"id": agent, "display_name": "Ada"}
    ready_data = {
        "stage": "completed",
        "matched_guidelines": [],
        "matched_journeys": [],
        "matched_journey_states": [],
    }
    return [
        (
            EventSource.CUSTOMER,
            EventKind.MESSAGE,
            {
                "message": "Hello! Which plan am I on?",
                "participant": {"id": customer, "display_name": "Bob"},
            },
        ),
        (EventSource.AI_AGENT, EventKind.STATUS, {"status": "acknowledged", "data": {}}),
        (EventSource.AI_AGENT, EventKind.STATUS, {"status": "ready", "data": {}}),
        (
            EventSource.AI_AGENT,
            EventKind.STATUS,
            {"status": "processing", "data": {"stage": "Interpreting"}},
        ),
        (EventSource.AI_AGENT, EventKind.STATUS, {"status": "typing", "data": {}}),
        (
            EventSource.AI_AGENT,
            EventKind.MESSAGE,
            {"message": "You are on the Pro plan.", "participant": agent_participant},
        ),
        (EventSource.AI_AGENT, EventKind.STATUS, {"status": "ready", "data": ready_data}),
    ]


async def _document_templates() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A session document and one turn's event documents, written by the router's store."""
    database = TransientDocumentDatabase()
    customer, agent = CustomerId(generate_id()), AgentId(generate_id())
    async with ConcurrentSessionDocumentStore(database, allow_migration=True) as store:
        session = await store.create_session(customer, agent, title="memory")
        trace_id = generate_id()
        for source, kind, data in _turn_events(customer, agent):
            await store.create_event(
                session.id, source, kind, trace_id, cast(JSONSerializable, data)
            )
    sessions = await database.get_collection("sessions", BaseDocument, _identity)
    events = await database.get_collection("events", BaseDocument, _identity)
    session_documents = (await sessions.find({})).items
    event_documents = sorted((await events.find({})).items, key=lambda d: d.get("creation_utc", ""))
    return dict(session_documents[0]), [dict(d) for d in event_documents]


async def _documents(
    sessions: int, events_per_session: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``sessions`` session documents and ``events_per_session`` events each, turn after turn.

    Copies of the templates with their own ids, offsets, times and (short) messages.
    """
    session_template, turn = await _document_templates()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    session_documents: list[dict[str, Any]] = []
    event_documents: list[dict[str, Any]] = []
    for number in range(sessions):
        session_id = generate_id()
        created = start + timedelta(minutes=number)
        session_documents.append(
            {**session_template, "id": session_id, "creation_utc": created.isoformat()}
        )
        trace_id = generate_id()
        for offset in range(events_per_session):
            template = turn[offset % len(turn)]
            if offset % len(turn) == 0:
                trace_id = generate_id()
            data = json.loads(json.dumps(template["data"]))
            if "message" in data:
                data["message"] = f"{data['message']} ({number}/{offset})"
            event_documents.append(
                {
                    **template,
                    "id": generate_id(),
                    "session_id": session_id,
                    "offset": offset,
                    "trace_id": trace_id,
                    "creation_utc": (created + timedelta(seconds=offset)).isoformat(),
                    "data": data,
                }
            )
    return session_documents, event_documents


class _IndexedCollection(PassThroughCollection[TDocument]):
    """Answers single-field ``$eq`` finds from an index, as fresh copies (a driver's decode).

    Parlant's transient collection scans every document per query (about 0.1 s at 100,000
    events), so 1,000 partition loads would take minutes; and it returns its own dicts,
    which would let the cache share strings with it and look smaller than it is. A real
    backend returns new objects decoded from the wire; so does this.
    """

    def __init__(self, inner: DocumentCollection[TDocument], name: str) -> None:
        super().__init__(inner, name)
        self._indexes: dict[str, dict[Any, list[TDocument]]] = {}

    async def index(self, field_name: str) -> None:
        """Index the documents by ``field_name`` (before the measured reads)."""
        index: dict[Any, list[TDocument]] = {}
        for document in (await self.inner.find({})).items:
            index.setdefault(document.get(field_name), []).append(document)
        self._indexes[field_name] = index

    async def find(
        self,
        filters: Where,
        limit: int | None = None,
        cursor: Cursor | None = None,
        sort_direction: SortDirection | None = None,
    ) -> FindResult[TDocument]:
        pinned = _single_eq(filters)
        if pinned is None or pinned[0] not in self._indexes or limit or cursor or sort_direction:
            return await self.inner.find(filters, limit, cursor, sort_direction)
        found = self._indexes[pinned[0]].get(pinned[1], [])
        items = [cast(TDocument, json.loads(json.dumps(d))) for d in found]
        return FindResult(items=items, total_count=len(items), has_more=False, next_cursor=None)

    async def insert_one(self, document: TDocument) -> InsertResult:
        self._indexes.clear()  # not used by the measurement; kept exact all the same
        return await self.inner.insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        self._indexes.clear()
        return await self.inner.update_one(filters, params, upsert)

    async def delete_one(self, filters: Where) -> DeleteResult[TDocument]:
        self._indexes.clear()
        return await self.inner.delete_one(filters)


def _single_eq(filters: Where) -> tuple[str, Any] | None:
    if len(filters) != 1:
        return None
    (name, condition), *_ = filters.items()
    if isinstance(condition, Mapping) and set(condition) == {"$eq"}:
        return name, condition["$eq"]
    return None


class _IndexedDatabase(PassThroughDocumentDatabase):
    """`_IndexedCollection`s over ``inner``, one per name."""

    def __init__(self, inner: TransientDocumentDatabase) -> None:
        super().__init__(inner)
        self.collections: dict[str, _IndexedCollection[Any]] = {}

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        if name not in self.collections:
            self.collections[name] = _IndexedCollection(collection, name)
        return cast(DocumentCollection[TDocument], self.collections[name])


@dataclass(frozen=True)
class MemoryFigure:
    """The read cache over the sessions store's documents, every partition read once."""

    max_bytes: int
    sessions: int
    events_per_session: int
    json_bytes: int
    """JSON size of every document (what an unbounded cache would account)."""
    used_bytes: int
    """``budget.used`` after the reads: what the budget charged for what the cache kept."""
    peak_bytes: int
    """tracemalloc's peak during the reads (Python objects, not JSON)."""
    retained_bytes: int
    """tracemalloc's current size after the reads: what the cache holds on to."""
    loads: int
    evictions: int
    seconds: float


async def measure_cache_memory(
    sessions: int, events_per_session: int, bounds: Sequence[int]
) -> list[MemoryFigure]:
    """Every partition of ``sessions`` sessions read once through a cache, for each bound.

    The documents are generated and stored once; each bound gets a fresh cache over them.
    """
    session_documents, event_documents = await _documents(sessions, events_per_session)
    json_bytes = sum(len(json.dumps(d)) for d in (*session_documents, *event_documents))
    transient = TransientDocumentDatabase()
    for name, documents in (("sessions", session_documents), ("events", event_documents)):
        collection = await transient.get_or_create_collection(name, BaseDocument, _identity)
        for document in documents:
            await collection.insert_one(cast(BaseDocument, document))
    indexed = _IndexedDatabase(transient)
    partitions = STORES["sessions"].cache_partitions
    for name, partition_field in partitions.items():
        await indexed.get_collection(name, BaseDocument, _identity)
        await indexed.collections[name].index(partition_field or "id")
    ids = [str(d["id"]) for d in session_documents]
    del session_documents, event_documents
    figures: list[MemoryFigure] = []
    for bound in bounds:
        cached = CachedDocumentDatabase(indexed, partitions=partitions, max_bytes=bound)
        session_collection = await cached.get_collection("sessions", BaseDocument, _identity)
        event_collection = await cached.get_collection("events", BaseDocument, _identity)
        # Only what the reads allocate is traced: the stored documents and the previous
        # bound's cache (garbage by now) are not.
        gc.collect()
        started = time.perf_counter()
        tracemalloc.start()
        try:
            for session_id in ids:
                await session_collection.find_one({"id": {"$eq": session_id}})
                await event_collection.find({"session_id": {"$eq": session_id}})
            gc.collect()
            retained, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        figures.append(
            MemoryFigure(
                max_bytes=bound,
                sessions=sessions,
                events_per_session=events_per_session,
                json_bytes=json_bytes,
                used_bytes=cached.budget.used,
                peak_bytes=peak,
                retained_bytes=retained,
                loads=cached.stats.loads,
                evictions=cached.stats.evictions,
                seconds=time.perf_counter() - started,
            )
        )
        del cached, session_collection, event_collection
    return figures


# --- The workload ----------------------------------------------------------------------------


@dataclass
class ServerTurnsResults:
    """A whole server-turns run."""

    parameters: Parameters
    started: datetime
    seconds: float = 0.0
    configurations: dict[str, ConfigurationFigures] = field(default_factory=dict)
    memory: list[MemoryFigure] = field(default_factory=list)

    def configuration(self, name: str) -> ConfigurationFigures | None:
        return self.configurations.get(name)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of ``values`` (nearest rank), None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def run_server_turns(
    p: Parameters,
    *,
    config_path: Path = SHIPPED_CONFIG,
    configurations: Sequence[ServerConfiguration] = CONFIGURATIONS,
    step: Callable[[str], None] = _log,
) -> ServerTurnsResults:
    """Measure every configuration against one instrumented emulator, then the cache's memory."""
    results = ServerTurnsResults(p, datetime.now(timezone.utc))
    clock = time.perf_counter()
    meter = WireMeter(StoreClassifier(table_prefixes(config_path)))
    base = str(_RAM_DIR) if _RAM_DIR.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="parlant-bench-servers-", dir=base) as directory:
        work = Path(directory)
        emulator = SnowflakeEmulator(work / "snowflake", wrap_app=meter.wrap)
        connection = emulator.start()
        try:
            for configuration in configurations:
                begun = time.perf_counter()
                results.configurations[configuration.name] = await measure_configuration(
                    configuration, connection, meter, p, work, config_path
                )
                step(f"{configuration.name:12} done ({time.perf_counter() - begun:.1f} s)")
        finally:
            emulator.stop()
    if p.memory_bounds_bytes and p.memory_sessions > 0:
        results.memory = await measure_cache_memory(
            p.memory_sessions, p.memory_events, p.memory_bounds_bytes
        )
    for figure in results.memory:
        step(
            f"cache memory, bound {figure.max_bytes / 2**20:g} MiB: used "
            f"{figure.used_bytes / 2**20:.1f} MiB, retained {figure.retained_bytes / 2**20:.1f} "
            f"MiB ({figure.seconds:.1f} s)"
        )
    results.seconds = time.perf_counter() - clock
    return results
