"""Several ``parlant-router run`` replicas (``server.replicas: many``) on one warehouse.

`server.replicas: many` lets several server processes share one database: events are
appended with a conditional MERGE, session updates merge, and each process follows the others'
writes through the change table ``PARLANT_ROUTER_CHANGES`` (docs/production.md, "Several server
processes"). This workload measures what that costs and whether it holds, in one run against
one instrumented emulator, with the machinery of bench/server_turns.py: its `WireMeter` counts
every statement at the emulator's door (the change table's under the pseudo-store
`CHANGE_FEED`), its `ServerProcess` runs the servers, Parlant's official client drives them.

- **Which process sent a statement**: a second middleware (`ProcessAttribution`) looks up the
  client port of each query request's connection in ``/proc`` (the socket's inode, then the
  server process holding it): statements are counted per replica, not only in all.
- **Phases**, one server configuration at a time on the same tables: first `replicas: one`
  (the shipped defaults, one server): statements per turn, throughput. Then `replicas: many`
  with 2 replicas (the first started alone: it creates the change table): statements per turn
  (turns posted to replica 1, replica 2 idle but running), idle clients spread over both,
  staleness (a write on replica 1 reaching a client waiting on replica 2), safety, throughput.
  Then more replicas are started for the safety run at each larger count.
- **Safety**: ``sessions`` sessions each receive ``messages`` customer messages, posted
  alternately to every replica while the turns they start run; once no statement but the change
  feed's has arrived for ``settle_seconds`` (and two staleness bounds later) every replica lists
  every session's events: duplicate offsets, gaps, acknowledged events missing, customer
  messages stored twice, sessions the replicas list differently. Then every replica patches
  ``patch_keys`` metadata keys of one session, all replicas at once: keys lost.
- **Statements per turn** are those of `bench.server_turns.run_turn`: from posting until no
  statement other than the change feed's has arrived for ``quiet_seconds``, the change feed's
  polls and inserts of every running process included.
- **Throughput**: ``throughput_sessions`` sessions, each running turns back to back (post,
  wait for ``ready``), split over the replicas, at L = ``throughput_latency_ms``; after one
  warm-up turn each, turns for ``throughput_window_seconds``. The rate is each session's turns
  completed in the window over the time to its last completion, summed over the sessions.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
from parlant.client import AsyncParlantClient
from parlant.client.core.api_error import ApiError
from parlant.client.errors import GatewayTimeoutError
from parlant.client.types import Event as ClientEvent
from parlant.client.types import Participant, SessionMetadataUpdateParams
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.parameters import FULL, Parameters
from bench.server import free_port
from bench.server_turns import (
    PARLANT_ROUTER,
    QUERY_PATH,
    SHIPPED_CONFIG,
    IdleFigure,
    ServerConfiguration,
    ServerProcess,
    ServerTurnsError,
    StoreClassifier,
    TurnFigure,
    WireCounts,
    WireMeter,
    check_overrides,
    run_idle,
    run_turn,
    run_turns_at,
    server_env,
    set_arguments,
    table_prefixes,
    warehouse_overrides,
)
from parlant_router.config.models import ServerConfig
from parlant_router.errors import describe_exception
from parlant_router.snowflake.change_feed import TABLE as CHANGE_TABLE
from parlant_router.snowflake.emulator import SnowflakeEmulator

CHANGE_FEED = "change feed"
"""The store label of the change table's statements (`CHANGE_TABLE`)."""
UNATTRIBUTED = "(unattributed)"
"""The process label of a statement whose connection no server process was found to hold."""
DEFAULT_MAX_STALENESS: float = ServerConfig.model_fields["max_staleness"].default

ONE = ServerConfiguration(
    "replicas: one", "the shipped defaults (`server.replicas: one`): one server process"
)

_RAM_DIR = Path("/dev/shm")
_DRAIN_SECONDS = 180.0
_RELISTS = 3
"""Times the replicas' lists of a session are read again while writes are still landing."""
"""How long the turns started by the safety run may take to end (then it is reported)."""
_WAIT_SECONDS = 30
"""``wait_for_data`` of the staleness trials' waiting client."""
_WAITER_SETTLE_SECONDS = 0.4
"""Between starting the waiting client and writing: its long poll is parked by then."""
_HUMAN = Participant(id="bench-human-agent", display_name="Hank")
_QUESTION = "Hello! Question {n}: which plan am I on, and can I upgrade it?"

T = TypeVar("T")


class ReplicasError(RuntimeError):
    """A step of the workload could not run (a server did not start, ...)."""


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _describe(error: BaseException) -> str:
    return describe_exception(error, limit=300)


def many(max_staleness: float | None) -> ServerConfiguration:
    """`server.replicas: many`, at ``max_staleness`` (None: the product's default)."""
    overrides = ["server.replicas=many"]
    if max_staleness is not None:
        overrides.append(f"server.max_staleness={max_staleness:g}")
    staleness = max_staleness if max_staleness is not None else DEFAULT_MAX_STALENESS
    return ServerConfiguration(
        "replicas: many",
        f"`server.replicas: many`, `max_staleness` {staleness:g} s"
        + ("" if max_staleness is not None else " (the default)"),
        tuple(overrides),
    )


# --- Sizes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaParameters:
    """Sizes of the replicas workload (``python -m bench --help`` lists the flags)."""

    replica_counts: tuple[int, ...] = (2, 4)
    """Replicas in the safety runs; the other measurements use two."""
    sessions: int = 8
    messages: int = 50
    """Customer messages per session in the safety runs, round robin over the replicas."""
    patch_keys: int = 12
    """Metadata keys each replica sets on the patched session, one PATCH each."""
    settle_seconds: float = 3.0
    """The safety run's turns are over once no statement has arrived for this long."""
    staleness_trials: int = 20
    staleness_parallel: int = 5
    """Trials run at once, each on its own session (and waiting client)."""
    max_staleness: float | None = None
    """``server.max_staleness`` (None: not set, the product's default)."""
    warmup_turns: int = 1
    measured_turns: int = 3
    """Sequential turns (at L = 0) for the statements per turn, after the warm-up ones."""
    quiet_seconds: float = 2.0
    idle_clients: int = 10
    idle_window_seconds: float = 20.0
    idle_wait_seconds: int = 10
    throughput_sessions: int = 8
    throughput_latency_ms: float = 80.0
    throughput_window_seconds: float = 30.0
    throughput_warmup_turns: int = 1
    """Turns each throughput session runs before the window (its caches fill then)."""
    seed: int = 7
    """Of the staleness trials' random delays (their phase against the change feed's polls)."""

    @property
    def staleness(self) -> float:
        """The staleness bound the replicas run with."""
        return self.max_staleness if self.max_staleness is not None else DEFAULT_MAX_STALENESS

    @property
    def interval(self) -> float:
        """The change feed's poll interval: half the bound."""
        return self.staleness / 2

    def server_parameters(self) -> Parameters:
        """The server-turns sizes `run_turns_at` and `run_idle` read, from these."""
        return replace(
            FULL,
            server_warmup_turns=self.warmup_turns,
            server_turns=self.measured_turns,
            quiet_seconds=self.quiet_seconds,
            idle_clients=self.idle_clients,
            idle_window_seconds=self.idle_window_seconds,
            idle_wait_seconds=self.idle_wait_seconds,
        )


FULL_REPLICAS = ReplicaParameters()
QUICK_REPLICAS = replace(
    FULL_REPLICAS,
    replica_counts=(2,),
    sessions=2,
    messages=6,
    patch_keys=3,
    settle_seconds=1.0,
    staleness_trials=3,
    max_staleness=0.5,
    warmup_turns=0,
    measured_turns=1,
    quiet_seconds=1.0,
    idle_clients=4,
    idle_window_seconds=3.0,
    idle_wait_seconds=2,
    throughput_sessions=2,
    throughput_latency_ms=20.0,
    throughput_window_seconds=5.0,
    throughput_warmup_turns=0,
)
"""Tiny sizes: every step end to end (the smoke test), with 2 replicas only (2 more servers
would add half a minute); `max_staleness` set (0.5 s) rather than left to its default, which
also exercises the override, and shortens the waits."""


# --- Which process sent a statement ------------------------------------------------------------


def _socket_inode(port: int) -> str | None:
    """The inode of the TCP socket whose local port is ``port`` (loopback, this namespace)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[1].endswith(suffix):
                return fields[9]
    return None


def _holds(pid: int, inode: str) -> bool:
    """Whether process ``pid`` has the socket ``inode`` open."""
    target = f"socket:[{inode}]"
    directory = f"/proc/{pid}/fd"
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(f"{directory}/{name}") == target:
                return True
        except OSError:
            continue
    return False


class ProcessAttribution:
    """The emulator's outer middleware: which server process sent each query request.

    The connector's connections are long-lived; the first request on each is looked up in
    ``/proc`` (its client port's socket, then the registered process holding it) and the
    answer kept for the port. Runs on the emulator's thread, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[int, str] = {}
        self._ports: dict[int, str] = {}
        self._log: list[tuple[float, str]] = []

    def register(self, pid: int, name: str) -> None:
        with self._lock:
            self._processes[pid] = name
            self._ports.clear()  # a port may have been another process's

    def forget(self, pid: int) -> None:
        with self._lock:
            self._processes.pop(pid, None)
            self._ports.clear()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The ASGI app to serve instead of ``app``."""

        async def attributed(scope: Scope, receive: Receive, send: Send) -> None:
            if (
                scope["type"] == "http"
                and scope.get("method") == "POST"
                and scope.get("path") == QUERY_PATH
            ):
                client = scope.get("client")
                self._record(int(client[1]) if client else None)
            await app(scope, receive, send)

        return attributed

    def _record(self, port: int | None) -> None:
        now = time.monotonic()
        with self._lock:
            name = UNATTRIBUTED if port is None else self._ports.get(port)
            if name is None and port is not None:
                name = self._owner(port)
                if name != UNATTRIBUTED:
                    self._ports[port] = name
            self._log.append((now, name or UNATTRIBUTED))

    def _owner(self, port: int) -> str:
        inode = _socket_inode(port)
        if inode is not None:
            for pid, name in self._processes.items():
                if _holds(pid, inode):
                    return name
        return UNATTRIBUTED

    def counts(self, start: float, end: float) -> Counter[str]:
        """Statements per process between two ``time.monotonic()`` readings."""
        with self._lock:
            return Counter(name for at, name in self._log if start <= at <= end)


# --- Figures ---------------------------------------------------------------------------------


@dataclass
class ServerFigure:
    """One server process of the run."""

    name: str
    configuration: str
    startup_seconds: float | None = None
    exit_status: int | None = None
    error_lines: list[str] = field(default_factory=list)
    mode_logged: bool | None = None
    """Whether its log names the configured `Replicas:` mode (None: not checked)."""


@dataclass
class SafetyFigure:
    """Customer messages round robin over ``replicas`` replicas, then concurrent patches."""

    replicas: int
    sessions: int
    messages: int
    posting_seconds: float = 0.0
    drain_seconds: float = 0.0
    quiet: bool = True
    """False if the turns were still writing after `_DRAIN_SECONDS` (counted anyway)."""
    counts: WireCounts = field(default_factory=WireCounts)
    """Statements from the first message posted until the turns were over."""
    acknowledged: int = 0
    events: int = 0
    """Events stored in the sessions (customer messages and the turns' events)."""
    duplicate_offsets: int = 0
    missing_offsets: int = 0
    acknowledged_missing: int = 0
    stored_twice: int = 0
    """Customer messages stored more than once (each extra copy), and events listed twice."""
    disagreeing_sessions: int = 0
    """Sessions whose events (ids, offsets) some replica lists differently from replica 1."""
    keys_each: int = 0
    """Metadata keys each replica sets on the patched session."""
    patch_keys: int = 0
    """Metadata keys set on the patched session, over every replica."""
    keys_lost: int | None = None
    """Keys missing from the session, as the worst replica reads it."""
    patch_disagreement: bool = False
    post_failures: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def unsafe(self) -> int:
        """The counts that must be zero, summed."""
        return (
            self.duplicate_offsets
            + self.missing_offsets
            + self.acknowledged_missing
            + self.stored_twice
            + self.disagreeing_sessions
            + (self.keys_lost or 0)
        )


@dataclass
class StalenessFigure:
    """A human agent's message written on one replica, awaited by a client on another."""

    trials: int
    max_staleness: float
    after_ack: list[float] = field(default_factory=list)
    """From the writer's acknowledgement to the waiting client holding the event, seconds."""
    after_post: list[float] = field(default_factory=list)
    """From posting the event to the waiting client holding it, seconds."""
    failures: list[str] = field(default_factory=list)


@dataclass
class IdleReplicasFigure:
    """Clients long-polling empty sessions spread over the replicas; statements per replica."""

    idle: IdleFigure
    replicas: list[str]
    interval: float
    by_process: dict[str, int] = field(default_factory=dict)

    @property
    def intervals(self) -> float:
        return self.idle.seconds / self.interval if self.interval else 0.0

    def per_interval(self, name: str) -> float:
        return self.by_process.get(name, 0) / self.intervals if self.intervals else 0.0


@dataclass
class ThroughputFigure:
    """Sessions running turns back to back, split over the replicas."""

    label: str
    replicas: int
    sessions: int
    latency_ms: float
    window_seconds: float
    completions: list[list[float]] = field(default_factory=list)
    """Per session: seconds from the window's start to each turn completed within it."""
    turn_seconds: list[float] = field(default_factory=list)
    """Posting to ``ready``, per turn completed in the window."""
    counts: WireCounts = field(default_factory=WireCounts)
    """Statements during the window (every process)."""
    failures: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(len(c) for c in self.completions)

    @property
    def turns_per_second(self) -> float | None:
        """Each session's completed turns over the time to its last one, summed."""
        rates = [len(c) / c[-1] for c in self.completions if c and c[-1] > 0]
        return sum(rates) if rates else None

    @property
    def mean_turn_seconds(self) -> float | None:
        return statistics.fmean(self.turn_seconds) if self.turn_seconds else None


@dataclass
class ReplicasResults:
    """A whole replicas run."""

    parameters: ReplicaParameters
    started: datetime
    seconds: float = 0.0
    servers: list[ServerFigure] = field(default_factory=list)
    turns: dict[str, list[TurnFigure]] = field(default_factory=dict)
    """Sequential turns at L = 0 by mode (``one``, ``many``), warm-ups included."""
    idle: IdleReplicasFigure | None = None
    staleness: StalenessFigure | None = None
    safety: list[SafetyFigure] = field(default_factory=list)
    throughput: dict[str, ThroughputFigure] = field(default_factory=dict)
    """By mode (``one``, ``many``)."""
    failures: list[str] = field(default_factory=list)
    """Steps that failed, each in one line (the product's errors, a server's start...)."""

    def measured_turns(self, mode: str) -> list[TurnFigure]:
        return [t for t in self.turns.get(mode, []) if not t.warm_up]


# --- Servers ---------------------------------------------------------------------------------


@dataclass
class Replica:
    """A running server and the official client talking to it."""

    server: ServerProcess
    client: AsyncParlantClient
    figure: ServerFigure


class Fleet:
    """Starts and stops the run's servers, all against the one emulator."""

    def __init__(
        self,
        connection: Mapping[str, Any],
        work: Path,
        config_path: Path,
        attribution: ProcessAttribution,
        http: httpx.AsyncClient,
        results: ReplicasResults,
    ) -> None:
        self.connection = connection
        self.work = work
        self.config_path = config_path
        self.attribution = attribution
        self.http = http
        self.results = results
        self.env = server_env(connection)
        self.running: list[Replica] = []
        self._checked: set[str] = set()

    async def start(
        self, names: Sequence[str], configuration: ServerConfiguration
    ) -> list[Replica]:
        """Start one server per name, concurrently; raises `ReplicasError` if one fails."""
        started: list[tuple[Replica, float]] = []
        for name in names:
            port = free_port()
            slug = name.replace(" ", "-")
            overrides = [
                *warehouse_overrides(self.connection),
                f"server.port={port}",
                f"server.tool_service_port={free_port()}",
                f"server.home={self.work / f'home-{slug}'}",
                *configuration.overrides,
            ]
            if configuration.name not in self._checked:
                check_overrides(self.config_path, configuration, overrides, self.env)
                self._checked.add(configuration.name)
            server = ServerProcess(
                [
                    str(PARLANT_ROUTER),
                    "run",
                    "-c",
                    str(self.config_path),
                    *set_arguments(overrides),
                ],
                port,
                self.work / f"server-{slug}.log",
                self.env,
            )
            self.attribution.register(server.process.pid, name)
            figure = ServerFigure(name, configuration.name)
            self.results.servers.append(figure)
            client = AsyncParlantClient(base_url=server.base_url, httpx_client=self.http)
            started.append((Replica(server, client, figure), time.perf_counter()))
            self.running.append(started[-1][0])

        async def ready(replica: Replica, since: float) -> None:
            try:
                await replica.server.wait_ready()
            except ServerTurnsError as error:
                # One line: how it ended, and the last line of its log that says why.
                lines = [line.strip() for line in replica.server.lines() if line.strip()]
                why = (replica.server.error_lines() or lines or ["(empty log)"])[-1]
                raise ReplicasError(
                    f"{replica.figure.name}: {str(error).splitlines()[0].rstrip(':')}: {why}"
                ) from error
            replica.figure.startup_seconds = time.perf_counter() - since
            mode = "many" if "server.replicas=many" in configuration.overrides else "one"
            replica.figure.mode_logged = any(
                f"Replicas: {mode}" in line for line in replica.server.lines()
            )

        outcomes = await asyncio.gather(
            *(ready(r, since) for r, since in started), return_exceptions=True
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        for replica, _ in started:
            seconds = replica.figure.startup_seconds
            _log(
                f"replicas     {replica.figure.name} ({configuration.name}) "
                + ("did not start" if seconds is None else f"ready: {seconds:.1f} s")
            )
        if errors:
            raise ReplicasError(f"a server did not start: {errors[0]}")
        return [replica for replica, _ in started]

    async def stop_all(self) -> None:
        """Stop every running server: exit statuses and error lines into their figures."""
        running, self.running = self.running, []

        async def stop(replica: Replica) -> None:
            replica.figure.exit_status = await replica.server.stop()
            replica.figure.error_lines = replica.server.error_lines()
            self.attribution.forget(replica.server.process.pid)

        await asyncio.gather(*(stop(r) for r in running))
        for replica in running:
            figure = replica.figure
            _log(
                f"replicas     {figure.name} stopped: exit status {figure.exit_status}, "
                f"{len(figure.error_lines)} error line(s)"
            )


# --- Steps -----------------------------------------------------------------------------------


async def _step(results: ReplicasResults, name: str, work: Awaitable[T]) -> T | None:
    """``work``, or None after recording why it failed."""
    begun = time.perf_counter()
    try:
        outcome = await work
    except Exception as error:  # the product failing: reported, and the next step runs
        text = str(error).splitlines()[0] if isinstance(error, ReplicasError) else _describe(error)
        results.failures.append(f"{name}: {text}")
        _log(f"replicas     {name} FAILED: {error}")
        return None
    _log(f"replicas     {name} done ({time.perf_counter() - begun:.1f} s)")
    return outcome


async def _session(client: AsyncParlantClient, title: str) -> tuple[str, str, str]:
    """A fresh agent, customer and session (no greeting): their ids."""
    agent = await client.agents.create(name="Ada", description="Answers questions about plans")
    customer = await client.customers.create(name="Bob")
    session = await client.sessions.create(
        agent_id=agent.id, customer_id=customer.id, title=title, allow_greeting=False
    )
    return agent.id, customer.id, session.id


async def measure_turns(
    client: AsyncParlantClient, meter: WireMeter, rp: ReplicaParameters
) -> list[TurnFigure]:
    """`run_turns_at` at L = 0: warm-up and measured turns, one after the other."""
    figures: list[TurnFigure] = []
    try:
        await run_turns_at(client, meter, 0.0, rp.server_parameters(), figures)
    except ServerTurnsError as error:
        if not figures:
            raise
        _log(f"replicas     turns: {error} (the {len(figures)} turn(s) before it kept)")
    return figures


async def measure_idle(
    replicas: Sequence[Replica],
    meter: WireMeter,
    attribution: ProcessAttribution,
    rp: ReplicaParameters,
) -> IdleReplicasFigure:
    """`run_idle` with the waiting clients spread over ``replicas``; statements per replica."""
    idle = await run_idle(
        replicas[0].client,
        meter,
        rp.server_parameters(),
        waiters=[r.client for r in replicas],
    )
    by_process = attribution.counts(idle.started, idle.started + idle.seconds)
    return IdleReplicasFigure(
        idle, [r.figure.name for r in replicas], rp.interval, dict(by_process)
    )


async def _wait_for_human_message(
    client: AsyncParlantClient, session_id: str, min_offset: int
) -> tuple[float, list[ClientEvent]]:
    """One long poll for a human agent's event; when it answered, and with what."""
    try:
        events = await client.sessions.list_events(
            session_id, min_offset=min_offset, source="human_agent", wait_for_data=_WAIT_SECONDS
        )
    except GatewayTimeoutError:
        events = []
    return time.monotonic(), events


async def measure_staleness(
    writer: Replica, reader: Replica, meter: WireMeter, rp: ReplicaParameters
) -> StalenessFigure:
    """Human agent's messages posted on ``writer`` while clients wait on ``reader``.

    ``staleness_parallel`` trials at a time, each on a session of its own (a trial whose
    waiting client is never woken costs its whole ``wait_for_data``, not the run's).
    """
    meter.latency_ms = 0.0
    figure = StalenessFigure(rp.staleness_trials, rp.staleness)
    first = writer.client
    agent = await first.agents.create(name="Ada", description="Answers questions about plans")
    customer = await first.customers.create(name="Bob")
    parallel = max(1, min(rp.staleness_parallel, rp.staleness_trials))
    sessions = [
        (
            await first.sessions.create(
                agent_id=agent.id,
                customer_id=customer.id,
                title=f"staleness {n + 1}",
                allow_greeting=False,
            )
        ).id
        for n in range(parallel)
    ]
    next_offsets = dict.fromkeys(sessions, 0)
    await asyncio.sleep(2 * rp.staleness)
    jitter = random.Random(rp.seed)

    async def trial(number: int, session_id: str, delay: float) -> None:
        waiter = asyncio.create_task(
            _wait_for_human_message(reader.client, session_id, next_offsets[session_id])
        )
        try:
            await asyncio.sleep(delay)
            posted = time.monotonic()
            event = await writer.client.sessions.create_event(
                session_id,
                kind="message",
                source="human_agent",
                message=f"a human agent writes on {writer.figure.name} (trial {number})",
                participant=_HUMAN,
            )
            acknowledged = time.monotonic()
            held, events = await waiter
        finally:
            waiter.cancel()
        next_offsets[session_id] = event.offset + 1
        if event.id not in {e.id for e in events}:
            figure.failures.append(
                f"trial {number}: the client waiting on {reader.figure.name} was not woken "
                f"within {_WAIT_SECONDS} s"
                if not events
                else f"trial {number}: the waiting client got other events"
            )
            return
        figure.after_ack.append(held - acknowledged)
        figure.after_post.append(held - posted)

    for first_trial in range(0, rp.staleness_trials, parallel):
        numbers = range(first_trial, min(rp.staleness_trials, first_trial + parallel))
        # Each trial at a random phase against the change feed's polls: together they
        # sample all of it.
        await asyncio.gather(
            *(
                trial(
                    number + 1,
                    sessions[i],
                    _WAITER_SETTLE_SECONDS + jitter.uniform(0, rp.interval),
                )
                for i, number in enumerate(numbers)
            )
        )
    return figure


async def measure_safety(
    replicas: Sequence[Replica], meter: WireMeter, rp: ReplicaParameters
) -> SafetyFigure:
    """Customer messages round robin over ``replicas``, then concurrent metadata patches."""
    meter.latency_ms = 0.0
    figure = SafetyFigure(len(replicas), rp.sessions, rp.messages, keys_each=rp.patch_keys)
    first = replicas[0].client
    agent = await first.agents.create(name="Ada", description="Answers questions about plans")
    customer = await first.customers.create(name="Bob")
    sessions = [
        (
            await first.sessions.create(
                agent_id=agent.id,
                customer_id=customer.id,
                title=f"safety over {len(replicas)} replicas, {number + 1}",
                allow_greeting=False,
            )
        ).id
        for number in range(rp.sessions)
    ]
    await asyncio.sleep(2 * rp.staleness)
    acknowledged: dict[str, set[str]] = {s: set() for s in sessions}

    async def converse(index: int, session_id: str) -> None:
        for number in range(rp.messages):
            # Alternately to every replica; the turn runs where the message landed.
            replica = replicas[(index + number) % len(replicas)]
            try:
                event = await replica.client.sessions.create_event(
                    session_id,
                    kind="message",
                    source="customer",
                    message=f"message {number + 1} of {session_id}",
                )
            except (ApiError, httpx.HTTPError) as error:
                figure.post_failures.append(f"{replica.figure.name}: {_describe(error)}")
                continue
            acknowledged[session_id].add(event.id)

    begun, before = time.perf_counter(), meter.snapshot()
    await asyncio.gather(*(converse(i, s) for i, s in enumerate(sessions)))
    figure.posting_seconds = time.perf_counter() - begun
    figure.acknowledged = sum(len(a) for a in acknowledged.values())
    # Until the turns are over (the change feed's polls never stop), then until every
    # replica has seen every write.
    figure.quiet = await meter.wait_quiet(rp.settle_seconds, timeout=_DRAIN_SECONDS)
    figure.drain_seconds = time.perf_counter() - begun - figure.posting_seconds
    figure.counts = meter.snapshot() - before
    if not figure.quiet:
        figure.failures.append(f"the turns were still writing after {_DRAIN_SECONDS:g} s")
    await asyncio.sleep(2 * rp.staleness)
    for session_id in sessions:
        listed = await _settled_lists(replicas, session_id, rp.staleness)
        _count_events(figure, listed, acknowledged[session_id])
    await _patch_metadata(figure, replicas, agent.id, customer.id, rp)
    return figure


async def _settled_lists(
    replicas: Sequence[Replica], session_id: str, staleness: float
) -> list[Sequence[ClientEvent]]:
    """Each replica's list of the session's events, once no write lands while they are read.

    The replicas are asked one after the other: an event a late turn writes between two of
    those reads makes them differ without any replica being stale. So when they differ, the
    lists are read again after the staleness bound (twice over): if none of them changed,
    the difference stands (a replica still stale after the bound); if one did, a write was
    landing, and the new lists are judged instead, up to `_RELISTS` times.
    """

    async def read() -> list[Sequence[ClientEvent]]:
        return [await r.client.sessions.list_events(session_id, wait_for_data=0) for r in replicas]

    def keyed(lists: Sequence[Sequence[ClientEvent]]) -> list[list[tuple[str, int]]]:
        return [[(e.id, e.offset) for e in events] for events in lists]

    listed = await read()
    for _ in range(_RELISTS):
        if all(view == keyed(listed)[0] for view in keyed(listed)):
            break
        await asyncio.sleep(2 * staleness)
        again = await read()
        # Growth of the longest list is a write that landed meanwhile; otherwise judge now.
        landed = max(len(e) for e in again) > max(len(e) for e in listed)
        listed = again
        if not landed:
            break
    return listed


def _count_events(
    figure: SafetyFigure, listed: Sequence[Sequence[ClientEvent]], acknowledged: set[str]
) -> None:
    """Add one session's counts to ``figure``: ``listed`` by each replica, the first the
    reference."""
    events = listed[0]
    figure.events += len(events)
    offsets = [e.offset for e in events]
    distinct = set(offsets)
    figure.duplicate_offsets += len(offsets) - len(distinct)
    figure.missing_offsets += (max(distinct) + 1 - len(distinct)) if distinct else 0
    ids = [e.id for e in events]
    figure.acknowledged_missing += len(acknowledged - set(ids))
    texts = Counter(
        str(e.data.get("message"))
        for e in events
        if e.source == "customer" and e.kind == "message" and isinstance(e.data, dict)
    )
    figure.stored_twice += (len(ids) - len(set(ids))) + sum(n - 1 for n in texts.values())
    reference = [(e.id, e.offset) for e in events]
    differing = [
        f"replica {number} lists {len(other)}"
        for number, other in enumerate(listed[1:], start=2)
        if [(e.id, e.offset) for e in other] != reference
    ]
    if differing:
        figure.disagreeing_sessions += 1
        figure.failures.append(
            f"the replicas disagree on a session: replica 1 lists {len(events)} event(s), "
            + ", ".join(differing)
        )


async def _patch_metadata(
    figure: SafetyFigure,
    replicas: Sequence[Replica],
    agent_id: str,
    customer_id: str,
    rp: ReplicaParameters,
) -> None:
    """Every replica sets ``patch_keys`` keys of one session at once: how many are lost."""
    first = replicas[0].client
    target = (
        await first.sessions.create(
            agent_id=agent_id, customer_id=customer_id, title="patched", allow_greeting=False
        )
    ).id
    await asyncio.sleep(2 * rp.staleness)
    written: set[str] = set()

    async def patch(index: int, replica: Replica) -> None:
        for number in range(rp.patch_keys):
            key = f"replica{index + 1}-key{number + 1}"
            try:
                await replica.client.sessions.update(
                    target, metadata=SessionMetadataUpdateParams(set_={key: number})
                )
            except (ApiError, httpx.HTTPError) as error:
                figure.failures.append(f"PATCH on {replica.figure.name}: {_describe(error)}")
                continue
            written.add(key)

    await asyncio.gather(*(patch(i, r) for i, r in enumerate(replicas)))
    figure.patch_keys = len(written)
    await asyncio.sleep(2 * rp.staleness)
    seen = [set((await r.client.sessions.retrieve(target)).metadata or {}) for r in replicas]
    figure.keys_lost = max(len(written - keys) for keys in seen)
    figure.patch_disagreement = any(keys != seen[0] for keys in seen[1:])


async def measure_throughput(
    label: str, replicas: Sequence[Replica], meter: WireMeter, rp: ReplicaParameters
) -> ThroughputFigure:
    """``throughput_sessions`` sessions running turns back to back, split over ``replicas``."""
    figure = ThroughputFigure(
        label,
        len(replicas),
        rp.throughput_sessions,
        rp.throughput_latency_ms,
        rp.throughput_window_seconds,
    )
    meter.latency_ms = rp.throughput_latency_ms
    try:
        first = replicas[0].client
        agent = await first.agents.create(name="Ada", description="Answers questions about plans")
        customer = await first.customers.create(name="Bob")
        owners = [replicas[i % len(replicas)] for i in range(rp.throughput_sessions)]
        sessions = [
            (
                await owner.client.sessions.create(
                    agent_id=agent.id,
                    customer_id=customer.id,
                    title=f"throughput {i + 1}",
                    allow_greeting=False,
                )
            ).id
            for i, owner in enumerate(owners)
        ]
        await asyncio.sleep(2 * rp.staleness)
        counter = [0] * len(sessions)

        async def turn(index: int, warm_up: bool) -> TurnFigure:
            counter[index] += 1
            return await run_turn(
                owners[index].client,
                meter,
                sessions[index],
                _QUESTION.format(n=counter[index]),
                warm_up=warm_up,
                quiet_seconds=0.0,
            )

        for _ in range(rp.throughput_warmup_turns):
            await asyncio.gather(*(turn(i, True) for i in range(len(sessions))))
        await meter.wait_quiet(rp.quiet_seconds)
        figure.completions = [[] for _ in sessions]
        start = time.monotonic()
        end = start + rp.throughput_window_seconds
        before = meter.snapshot()

        async def drive(index: int) -> None:
            while time.monotonic() < end:
                try:
                    done = await turn(index, False)
                except (ApiError, httpx.HTTPError, ServerTurnsError) as error:
                    figure.failures.append(f"session {index + 1}: {_describe(error)}")
                    return
                finished = time.monotonic()
                if finished <= end:
                    figure.completions[index].append(finished - start)
                    figure.turn_seconds.append(done.ready_seconds)

        async def count_window() -> None:
            await asyncio.sleep(rp.throughput_window_seconds)
            figure.counts = meter.snapshot() - before

        await asyncio.gather(count_window(), *(drive(i) for i in range(len(sessions))))
        await meter.wait_quiet(rp.quiet_seconds)
    finally:
        meter.latency_ms = 0.0
    return figure


# --- The workload ----------------------------------------------------------------------------


async def run_replicas(
    rp: ReplicaParameters, *, config_path: Path = SHIPPED_CONFIG
) -> ReplicasResults:
    """Every measurement of the module docstring, against one instrumented emulator."""
    if min(rp.replica_counts, default=0) < 2:
        raise ValueError("replica counts start at 2")
    results = ReplicasResults(rp, datetime.now(timezone.utc))
    clock = time.perf_counter()
    prefixes = {**table_prefixes(config_path), CHANGE_FEED: CHANGE_TABLE}
    meter = WireMeter(StoreClassifier(prefixes), background={CHANGE_FEED})
    attribution = ProcessAttribution()
    base = str(_RAM_DIR) if _RAM_DIR.is_dir() else None
    timeout = max(120.0, _WAIT_SECONDS + 30.0, rp.idle_wait_seconds + 30.0)
    with tempfile.TemporaryDirectory(prefix="parlant-bench-replicas-", dir=base) as directory:
        work = Path(directory)
        emulator = SnowflakeEmulator(
            work / "snowflake", wrap_app=lambda app: attribution.wrap(meter.wrap(app))
        )
        connection = emulator.start()
        try:
            async with httpx.AsyncClient(timeout=timeout) as http:
                fleet = Fleet(connection, work, config_path, attribution, http, results)
                try:
                    await _one_server(fleet, meter, rp)
                finally:
                    await fleet.stop_all()
                try:
                    await _replicas(fleet, meter, attribution, rp)
                finally:
                    await fleet.stop_all()
        finally:
            emulator.stop()
    for server in results.servers:
        if server.exit_status not in (0, None):
            results.failures.append(f"{server.name}: exit status {server.exit_status}")
    results.seconds = time.perf_counter() - clock
    return results


async def _one_server(fleet: Fleet, meter: WireMeter, rp: ReplicaParameters) -> None:
    """`replicas: one` (the shipped defaults): statements per turn, throughput."""
    results = fleet.results
    if await _step(results, "start replicas: one", fleet.start(["one"], ONE)) is None:
        return
    (server,) = fleet.running
    turns = await _step(results, "turns, replicas: one", measure_turns(server.client, meter, rp))
    results.turns["one"] = turns or []
    throughput = await _step(
        results,
        "throughput, replicas: one",
        measure_throughput("one server, `replicas: one`", [server], meter, rp),
    )
    if throughput is not None:
        results.throughput["one"] = throughput


async def _replicas(
    fleet: Fleet, meter: WireMeter, attribution: ProcessAttribution, rp: ReplicaParameters
) -> None:
    """`replicas: many`: two replicas for everything, more for the larger safety runs."""
    results = fleet.results
    configuration = many(rp.max_staleness)
    # The first alone: it creates the change table (concurrent CREATEs race in fakesnow).
    if await _step(results, "start replica 1", fleet.start(["replica 1"], configuration)) is None:
        return
    if await _step(results, "start replica 2", fleet.start(["replica 2"], configuration)) is None:
        return
    a, b = fleet.running
    turns = await _step(
        results, "turns, replicas: many (2 replicas)", measure_turns(a.client, meter, rp)
    )
    results.turns["many"] = turns or []
    results.idle = await _step(
        results, "idle, 2 replicas", measure_idle([a, b], meter, attribution, rp)
    )
    results.staleness = await _step(
        results, "staleness, replica 1 to replica 2", measure_staleness(a, b, meter, rp)
    )
    throughput = await _step(
        results,
        "throughput, 2 replicas",
        measure_throughput("2 replicas, `replicas: many`", [a, b], meter, rp),
    )
    if throughput is not None:
        results.throughput["many"] = throughput
    for count in sorted(set(rp.replica_counts)):
        if len(fleet.running) < count:
            names = [f"replica {n + 1}" for n in range(len(fleet.running), count)]
            started = fleet.start(names, configuration)
            if await _step(results, f"start {', '.join(names)}", started) is None:
                return
        safety = await _step(
            results, f"safety, {count} replicas", measure_safety(fleet.running[:count], meter, rp)
        )
        if safety is not None:
            results.safety.append(safety)
