"""One benchmark run: every workload, adapter after adapter, against one emulator."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from bench.adapters import OURS, Adapter
from bench.parameters import Parameters
from bench.seed import Seeder
from bench.server import running_emulator
from bench.turns import TurnSequence
from bench.workloads import (
    AppendFigure,
    MigrationFigure,
    RateFigure,
    TurnFigures,
    measure_appends,
    measure_concurrent_reads,
    measure_concurrent_turns,
    measure_migration,
    measure_turns,
)

T = TypeVar("T")


@dataclass
class AdapterResults:
    """Everything measured for one adapter."""

    name: str
    turns: TurnFigures | None = None
    concurrent_turns: list[RateFigure] = field(default_factory=list)
    concurrent_reads: list[RateFigure] = field(default_factory=list)
    appends: list[AppendFigure] = field(default_factory=list)
    migrations: list[MigrationFigure] = field(default_factory=list)
    session_lock_turns: list[RateFigure] = field(default_factory=list)
    """Concurrent turns with ConcurrentSessionDocumentStore (ours only, C > 1)."""
    connections: int = 0


@dataclass
class RunResults:
    """A whole run."""

    parameters: Parameters
    sequence: TurnSequence
    started: datetime
    seconds: float
    adapters: dict[str, AdapterResults]


async def _session_lock_variant(
    parameters: Parameters,
    sequence: TurnSequence,
    seeder: Seeder,
    adapters: Sequence[Adapter],
    results: dict[str, AdapterResults],
    step: Callable[[str, Adapter, Awaitable[RateFigure]], Awaitable[RateFigure]],
) -> None:
    """Ours' concurrent turns under parlant_router's per-session locking.

    Reads are not repeated: both stores let readers of different sessions run together.
    """
    from parlant_router.stores.session_store import ConcurrentSessionDocumentStore

    for adapter in adapters:
        if adapter.name != OURS:
            continue
        for concurrency in (c for c in parameters.concurrency if c > 1):
            results[OURS].session_lock_turns.append(
                await step(
                    f"concurrent turns C={concurrency}, per-session locks",
                    adapter,
                    measure_concurrent_turns(
                        adapter,
                        sequence,
                        concurrency=concurrency,
                        latency_ms=parameters.concurrency_latency_ms,
                        window_seconds=parameters.turn_window_seconds,
                        session_store=ConcurrentSessionDocumentStore,
                    ),
                )
            )


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def run(
    parameters: Parameters, sequence: TurnSequence, adapter_names: Sequence[str]
) -> RunResults:
    """Measure every workload for every adapter, interleaved workload by workload."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    with running_emulator() as connection_params:
        adapters = [
            Adapter(name, connection_params, pool_size=parameters.pool_size)
            for name in adapter_names
        ]
        results = {a.name: AdapterResults(a.name) for a in adapters}
        seeder = Seeder(connection_params)
        try:

            async def step(label: str, adapter: Adapter, work: Awaitable[T]) -> T:
                begun = time.perf_counter()
                value = await work
                _log(f"{adapter.name:8} {label} ({time.perf_counter() - begun:.1f} s)")
                return value

            turns_by_latency = {lat: parameters.turns_at(lat) for lat in parameters.latencies_ms}
            for adapter in adapters:
                results[adapter.name].turns = await step(
                    "turns",
                    adapter,
                    measure_turns(
                        adapter,
                        sequence,
                        sessions=parameters.sessions,
                        turns_by_latency=turns_by_latency,
                    ),
                )
            for concurrency in parameters.concurrency:
                for adapter in adapters:
                    results[adapter.name].concurrent_turns.append(
                        await step(
                            f"concurrent turns C={concurrency}",
                            adapter,
                            measure_concurrent_turns(
                                adapter,
                                sequence,
                                concurrency=concurrency,
                                latency_ms=parameters.concurrency_latency_ms,
                                window_seconds=parameters.turn_window_seconds,
                            ),
                        )
                    )
            for concurrency in parameters.concurrency:
                for adapter in adapters:
                    results[adapter.name].concurrent_reads.append(
                        await step(
                            f"concurrent reads C={concurrency}",
                            adapter,
                            measure_concurrent_reads(
                                adapter,
                                sequence,
                                seeder,
                                concurrency=concurrency,
                                latency_ms=parameters.concurrency_latency_ms,
                                window_seconds=parameters.read_window_seconds,
                            ),
                        )
                    )
            if parameters.session_locks:
                await _session_lock_variant(parameters, sequence, seeder, adapters, results, step)
            for adapter in adapters:
                results[adapter.name].appends = await step(
                    "appends",
                    adapter,
                    measure_appends(
                        adapter, seeder, sizes=parameters.append_sizes, appends=parameters.appends
                    ),
                )
            for adapter in adapters:
                sizes = sorted(
                    {parameters.upstream_migration_documents}
                    | ({parameters.migration_documents} if adapter.name != "upstream" else set())
                )
                for documents in sizes:
                    results[adapter.name].migrations.append(
                        await step(
                            f"migration of {documents} documents",
                            adapter,
                            measure_migration(adapter, seeder, documents=documents),
                        )
                    )
            for adapter in adapters:
                results[adapter.name].connections = adapter.meter.connections
        finally:
            seeder.close()
    return RunResults(parameters, sequence, started, time.perf_counter() - clock, results)
