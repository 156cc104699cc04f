"""The measurements: each runs one adapter through Parlant's real stores and returns figures.

Every workload gets its own tables (its own table prefix), so adapters and workloads never
see each other's documents, although all of them share one emulator.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from parlant.core.agents import AgentId
from parlant.core.common import generate_id
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore

from bench.adapters import Adapter
from bench.seed import Seeder, sequenced_time, session_template
from bench.stack import STORE_PREFIXES, CollectionCalls, CountingDatabase, Stack, open_stack
from bench.turns import TurnSequence, replay, replay_call


@dataclass
class TurnFigures:
    """Statements and time of the recorded turn, replayed sequentially."""

    turns: int = 0
    statements: int = 0
    collection_calls: CollectionCalls = field(default_factory=CollectionCalls)
    statements_by_call: Counter[str] = field(default_factory=Counter)
    calls_by_label: Counter[str] = field(default_factory=Counter)
    seconds_by_latency: dict[float, list[float]] = field(default_factory=dict)
    statements_by_turn: list[int] = field(default_factory=list)
    execute_seconds_at_zero: float = 0.0
    """Seconds inside ``execute`` during the L=0 turns (the emulator's own cost)."""
    statements_at_zero: int = 0
    seconds_by_call_at_zero: defaultdict[str, float] = field(
        default_factory=lambda: defaultdict(float)
    )
    """Seconds per store call label, summed over the L=0 turns."""

    def per_turn(self) -> float:
        """Statements per turn."""
        return self.statements / self.turns

    def emulator_ms_per_statement(self) -> float | None:
        """Mean time the emulator took per statement, at L=0 (None if L=0 was not run)."""
        if not self.statements_at_zero:
            return None
        return 1000 * self.execute_seconds_at_zero / self.statements_at_zero

    def ms_per_call_at_zero(self, label: str) -> float | None:
        """Mean milliseconds of one ``label`` call at L=0 (None if L=0 was not run)."""
        turns_at_zero = len(self.seconds_by_latency.get(0.0, []))
        calls = self.calls_by_label[label] * turns_at_zero / self.turns if self.turns else 0
        if not calls or label not in self.seconds_by_call_at_zero:
            return None
        return 1000 * self.seconds_by_call_at_zero[label] / calls

    def mean_seconds(self, latency_ms: float) -> float:
        """Mean wall time of a turn at ``latency_ms``."""
        return statistics.fmean(self.seconds_by_latency[latency_ms])


@dataclass(frozen=True)
class RateFigure:
    """Work done by C concurrent sessions in a fixed window."""

    concurrency: int
    latency_ms: float
    window_seconds: float
    units: float
    """Completed turns (counted in fractions of a turn, call by call) or read pairs."""

    @property
    def per_second(self) -> float:
        """Units per second."""
        return self.units / self.window_seconds


@dataclass(frozen=True)
class AppendFigure:
    """create_event time with ``events`` events already in the session."""

    events: int
    seconds: Sequence[float]
    statements: int

    @property
    def median(self) -> float:
        """Median seconds per append."""
        return statistics.median(self.seconds)


@dataclass(frozen=True)
class MigrationFigure:
    """Opening a SessionDocumentStore whose sessions all need migrating."""

    documents: int
    statements: int
    seconds: float
    migrated: int
    """Documents found at the new version afterwards (must equal ``documents``)."""
    execute_seconds: float
    """Of ``seconds``, the time spent inside the connector's ``execute`` (the emulator)."""


def _prefix(adapter: Adapter, workload: str) -> str:
    return f"BENCH_{adapter.name.upper()}_{workload}_"


def _variant(session_store: type[SessionDocumentStore]) -> str:
    # Tables of their own for a SessionDocumentStore subclass.
    return "" if session_store is SessionDocumentStore else "_SL"


async def _warm_up(stack: Stack, conversations: Sequence[dict[str, str]]) -> None:
    # One concurrent read per session before the clock starts, so that a pool opens its
    # connections (a login each) outside the measured window.
    await asyncio.gather(
        *(stack.sessions.read_session(cast(Any, ids["session:0"])) for ids in conversations)
    )


async def _new_session(stack: Stack, sequence: TurnSequence) -> dict[str, str]:
    ids: dict[str, str] = {"agent": generate_id()}
    await replay(stack, sequence.setup, ids)
    return ids


async def measure_turns(
    adapter: Adapter,
    sequence: TurnSequence,
    *,
    sessions: int,
    turns_by_latency: dict[float, int],
) -> TurnFigures:
    """Replay ``turns_by_latency[L]`` turns in each of ``sessions`` sessions, at each L.

    Sequential, so every statement is attributed to the store call that sent it.
    """
    figures = TurnFigures()
    meter = adapter.meter
    async with open_stack(adapter, _prefix(adapter, "TURN")) as stack:
        meter.latency_ms = 0
        conversations = [await _new_session(stack, sequence) for _ in range(sessions)]
        for latency_ms, turns in turns_by_latency.items():
            meter.latency_ms = latency_ms
            times = figures.seconds_by_latency.setdefault(latency_ms, [])
            for _ in range(turns):
                for ids in conversations:
                    calls_before = Counter(stack.calls.counts)
                    started_statements = meter.statements
                    started_busy = meter.execute_seconds
                    started = time.perf_counter()
                    fresh: dict[str, str] = {}
                    for call in sequence.turn:
                        before = meter.statements
                        call_started = time.perf_counter()
                        await replay_call(stack, call, ids, fresh)
                        if latency_ms == 0:
                            figures.seconds_by_call_at_zero[call.label()] += (
                                time.perf_counter() - call_started
                            )
                        figures.statements_by_call[call.label()] += meter.statements - before
                        figures.calls_by_label[call.label()] += 1
                    times.append(time.perf_counter() - started)
                    figures.statements_by_turn.append(meter.statements - started_statements)
                    if latency_ms == 0:
                        figures.statements_at_zero += figures.statements_by_turn[-1]
                        figures.execute_seconds_at_zero += meter.execute_seconds - started_busy
                    figures.statements += figures.statements_by_turn[-1]
                    figures.collection_calls.counts.update(stack.calls.counts - calls_before)
                    figures.turns += 1
        meter.latency_ms = 0
    return figures


async def measure_concurrent_turns(
    adapter: Adapter,
    sequence: TurnSequence,
    *,
    concurrency: int,
    latency_ms: float,
    window_seconds: float,
    session_store: type[SessionDocumentStore] = SessionDocumentStore,
) -> RateFigure:
    """C sessions each running whole turns back to back for ``window_seconds``.

    Progress is counted call by call (a turn of 22 calls advances 1/22 per call), so that a
    window that ends mid-turn neither loses nor inflates work; calls still in flight when
    the window closes finish afterwards but do not count.
    """
    prefix = _prefix(adapter, f"C{concurrency}{_variant(session_store)}")
    async with open_stack(adapter, prefix, session_store) as stack:
        adapter.meter.latency_ms = 0
        conversations = [await _new_session(stack, sequence) for _ in range(concurrency)]
        await _warm_up(stack, conversations)
        adapter.meter.latency_ms = latency_ms
        done = [0.0]
        deadline = time.perf_counter() + window_seconds
        step = 1.0 / len(sequence.turn)

        async def converse(ids: dict[str, str]) -> None:
            while True:
                fresh: dict[str, str] = {}
                for call in sequence.turn:
                    if time.perf_counter() >= deadline:
                        return
                    await replay_call(stack, call, ids, fresh)
                    if time.perf_counter() <= deadline:
                        done[0] += step

        await asyncio.gather(*(converse(ids) for ids in conversations))
        adapter.meter.latency_ms = 0
    return RateFigure(concurrency, latency_ms, window_seconds, done[0])


async def measure_concurrent_reads(
    adapter: Adapter,
    sequence: TurnSequence,
    seeder: Seeder,
    *,
    concurrency: int,
    latency_ms: float,
    window_seconds: float,
) -> RateFigure:
    """C sessions each listing its events and reading itself, back to back.

    Each session holds as many events as one recorded turn writes (seeded in bulk).
    """
    prefix = _prefix(adapter, f"R{concurrency}")
    events_table = f"{prefix}{STORE_PREFIXES['sessions']}EVENTS"
    events_per_turn = sum(1 for call in sequence.turn if call.method == "create_event")
    async with open_stack(adapter, prefix) as stack:
        adapter.meter.latency_ms = 0
        conversations = [await _new_session(stack, sequence) for _ in range(concurrency)]
        for ids in conversations:
            seeder.insert_generated(
                events_table, _event_template(ids["session:0"]), events_per_turn
            )
        await _warm_up(stack, conversations)
        adapter.meter.latency_ms = latency_ms
        done = [0.0]
        deadline = time.perf_counter() + window_seconds

        async def read(ids: dict[str, str]) -> None:
            # Half a pair per completed call, as turns are counted call by call.
            session_id: Any = ids["session:0"]
            while time.perf_counter() < deadline:
                await stack.sessions.list_events(session_id)
                if time.perf_counter() <= deadline:
                    done[0] += 0.5
                await stack.sessions.read_session(session_id)
                if time.perf_counter() <= deadline:
                    done[0] += 0.5

        await asyncio.gather(*(read(ids) for ids in conversations))
        adapter.meter.latency_ms = 0
    return RateFigure(concurrency, latency_ms, window_seconds, done[0])


def _event_template(session_id: str) -> dict[str, Any]:
    return {
        "id": f"{session_id}-__SEQ__",
        "version": SessionDocumentStore.VERSION.to_string(),
        "creation_utc": sequenced_time(),
        "session_id": session_id,
        "source": "customer",
        "kind": "message",
        "offset": "__SEQ__",
        "trace_id": "seed",
        "data": {"message": "An earlier message in a long conversation.", "participant": {}},
        "metadata": None,
        "deleted": False,
    }


async def measure_appends(
    adapter: Adapter,
    seeder: Seeder,
    *,
    sizes: Sequence[int],
    appends: int,
) -> list[AppendFigure]:
    """create_event time in one session holding ``sizes[i]`` events (seeded in bulk)."""
    prefix = _prefix(adapter, "APPEND")
    events_table = f"{prefix}{STORE_PREFIXES['sessions']}EVENTS"
    figures: list[AppendFigure] = []
    async with open_stack(adapter, prefix) as stack:
        adapter.meter.latency_ms = 0
        customer = await stack.customers.create_customer(name="Long conversation")
        session = await stack.sessions.create_session(
            customer_id=customer.id, agent_id=AgentId("agent")
        )
        present = 0
        for size in sizes:
            # Seeded events take offsets after the appended ones, as a real session's would.
            seeder.insert_generated(
                events_table, _event_template(session.id), size - present, start=present
            )
            present = size
            seconds: list[float] = []
            before = adapter.meter.statements
            for _ in range(appends):
                started = time.perf_counter()
                event = await stack.sessions.create_event(
                    session.id,
                    EventSource.AI_AGENT,
                    EventKind.STATUS,
                    trace_id=generate_id(),
                    data={"status": "typing", "data": {}},
                )
                seconds.append(time.perf_counter() - started)
                if event.offset != present:
                    raise AssertionError(
                        f"{adapter.name}: appended offset {event.offset}, expected {present}"
                    )
                present += 1
            figures.append(AppendFigure(size, seconds, adapter.meter.statements - before))
    return figures


async def measure_migration(adapter: Adapter, seeder: Seeder, *, documents: int) -> MigrationFigure:
    """Open a SessionDocumentStore over ``documents`` sessions written at version 0.8.0."""
    prefix = f"{_prefix(adapter, f'MIGRATE{documents}')}{STORE_PREFIXES['sessions']}"
    seeder.create_table(f"{prefix}METADATA")
    seeder.create_table(f"{prefix}SESSIONS")
    seeder.insert_generated(
        f"{prefix}METADATA",
        {"id": "meta__SEQ__", "version": "0.8.0", "creation_utc": sequenced_time()},
        1,
    )
    seeder.insert_generated(f"{prefix}SESSIONS", session_template("0.8.0", prefix="old"), documents)
    adapter.meter.latency_ms = 0
    before = adapter.meter.statements
    busy_before = adapter.meter.execute_seconds
    started = time.perf_counter()
    async with adapter.database(prefix) as database:
        store = SessionDocumentStore(
            CountingDatabase(database, CollectionCalls()), allow_migration=True
        )
        async with store:
            seconds = time.perf_counter() - started
            statements = adapter.meter.statements - before
            busy = adapter.meter.execute_seconds - busy_before
    rows = seeder.execute(
        f'SELECT COUNT(*) FROM "{prefix}SESSIONS" WHERE VERSION = %(v)s',
        {"v": SessionDocumentStore.VERSION.to_string()},
    )
    return MigrationFigure(documents, statements, seconds, int(rows[0][0]), busy)
