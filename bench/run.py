"""One benchmark run: every workload, adapter after adapter, against one emulator."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from parlant.core.sessions import SessionDocumentStore

from bench.adapters import OURS, UPSTREAM, Adapter
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

ADAPTER_WORKLOADS = ("turns", "concurrency", "reads", "appends", "migration")
"""The workloads of this module, in the order they run."""


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


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def run(
    parameters: Parameters,
    sequence: TurnSequence,
    adapter_names: Sequence[str],
    workloads: Collection[str] = ADAPTER_WORKLOADS,
) -> RunResults:
    """Measure ``workloads`` (default: all) for every adapter, interleaved workload by workload."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    with running_emulator() as connection_params:
        adapters = [
            Adapter(name, connection_params, pool_size=parameters.pool_size)
            for name in adapter_names
        ]
        seeder = Seeder(connection_params)
        try:
            results = await _Workloads(parameters, sequence, adapters, seeder).measure(workloads)
        finally:
            seeder.close()
    return RunResults(parameters, sequence, started, time.perf_counter() - clock, results)


@dataclass
class _Workloads:
    """The workloads of one run, each measured for every adapter before the next begins."""

    parameters: Parameters
    sequence: TurnSequence
    adapters: Sequence[Adapter]
    seeder: Seeder
    results: dict[str, AdapterResults] = field(init=False)

    def __post_init__(self) -> None:
        self.results = {a.name: AdapterResults(a.name) for a in self.adapters}

    async def measure(self, workloads: Collection[str]) -> dict[str, AdapterResults]:
        """Run the ``workloads`` named, in their order; the results by adapter name."""
        unknown = set(workloads) - set(ADAPTER_WORKLOADS)
        if unknown:
            raise ValueError(f"unknown workload(s) {sorted(unknown)}")
        if "turns" in workloads:
            await self._turns()
        if "concurrency" in workloads:
            await self._concurrent_turns()
        if "reads" in workloads:
            await self._concurrent_reads()
        if "concurrency" in workloads and self.parameters.session_locks:
            await self._session_lock_turns()
        if "appends" in workloads:
            await self._appends()
        if "migration" in workloads:
            await self._migrations()
        for adapter in self.adapters:
            self.results[adapter.name].connections = adapter.meter.connections
        return self.results

    async def _step(self, label: str, adapter: Adapter, work: Awaitable[T]) -> T:
        """Await one measurement, logging how long it took."""
        begun = time.perf_counter()
        value = await work
        _log(f"{adapter.name:8} {label} ({time.perf_counter() - begun:.1f} s)")
        return value

    async def _turns(self) -> None:
        p = self.parameters
        turns_by_latency = {lat: p.turns_at(lat) for lat in p.latencies_ms}
        for adapter in self.adapters:
            self.results[adapter.name].turns = await self._step(
                "turns",
                adapter,
                measure_turns(
                    adapter, self.sequence, sessions=p.sessions, turns_by_latency=turns_by_latency
                ),
            )

    def _turns_at(
        self,
        adapter: Adapter,
        concurrency: int,
        session_store: type[SessionDocumentStore] = SessionDocumentStore,
    ) -> Awaitable[RateFigure]:
        """Concurrent turns of ``concurrency`` sessions on ``session_store``, L for concurrency."""
        return measure_concurrent_turns(
            adapter,
            self.sequence,
            concurrency=concurrency,
            latency_ms=self.parameters.concurrency_latency_ms,
            window_seconds=self.parameters.turn_window_seconds,
            session_store=session_store,
        )

    async def _concurrent_turns(self) -> None:
        for concurrency in self.parameters.concurrency:
            for adapter in self.adapters:
                self.results[adapter.name].concurrent_turns.append(
                    await self._step(
                        f"concurrent turns C={concurrency}",
                        adapter,
                        self._turns_at(adapter, concurrency),
                    )
                )

    async def _concurrent_reads(self) -> None:
        p = self.parameters
        for concurrency in p.concurrency:
            for adapter in self.adapters:
                self.results[adapter.name].concurrent_reads.append(
                    await self._step(
                        f"concurrent reads C={concurrency}",
                        adapter,
                        measure_concurrent_reads(
                            adapter,
                            self.sequence,
                            self.seeder,
                            concurrency=concurrency,
                            latency_ms=p.concurrency_latency_ms,
                            window_seconds=p.read_window_seconds,
                        ),
                    )
                )

    async def _session_lock_turns(self) -> None:
        """Ours' concurrent turns under parlant_router's per-session locking (C > 1).

        Reads are not repeated: both stores let readers of different sessions run together.
        """
        from parlant_router.stores.session_store import ConcurrentSessionDocumentStore

        for adapter in (a for a in self.adapters if a.name == OURS):
            for concurrency in (c for c in self.parameters.concurrency if c > 1):
                self.results[OURS].session_lock_turns.append(
                    await self._step(
                        f"concurrent turns C={concurrency}, per-session locks",
                        adapter,
                        self._turns_at(adapter, concurrency, ConcurrentSessionDocumentStore),
                    )
                )

    async def _appends(self) -> None:
        p = self.parameters
        for adapter in self.adapters:
            self.results[adapter.name].appends = await self._step(
                "appends",
                adapter,
                measure_appends(adapter, self.seeder, sizes=p.append_sizes, appends=p.appends),
            )

    async def _migrations(self) -> None:
        p = self.parameters
        for adapter in self.adapters:
            # Upstream writes one UPDATE per document: it migrates the smaller size only.
            sizes = sorted(
                {p.upstream_migration_documents}
                | ({p.migration_documents} if adapter.name != UPSTREAM else set())
            )
            for documents in sizes:
                self.results[adapter.name].migrations.append(
                    await self._step(
                        f"migration of {documents} documents",
                        adapter,
                        measure_migration(adapter, self.seeder, documents=documents),
                    )
                )
