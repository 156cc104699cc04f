"""Turns per second of C concurrent sessions: Parlant's SessionDocumentStore against
ConcurrentSessionDocumentStore, both on our SnowflakeDocumentDatabase over the emulator,
with L ms injected per statement (``bench/latency.py``'s StatementMeter).

The measurement behind docs/concurrency.md. From the repository root:

    .venv/bin/python -m bench.measure_concurrency [--sessions 8] [--latency-ms 80]
        [--window 12] [--pool-size 4]

A "turn" here is one loop of create_event, list_events, read_session, update_session, on the
session's own id; each of C sessions runs turns back to back for the window; turns finishing
after the window do not count.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore, SessionId

from bench.adapters import quiet_logger
from bench.latency import StatementMeter
from bench.server import running_emulator
from parlant_router.snowflake import SnowflakeDocumentDatabase
from parlant_router.stores.session_store import ConcurrentSessionDocumentStore


async def turn(store: SessionDocumentStore, session_id: SessionId, number: int) -> None:
    """The measured loop: an append, a listing, a read and an update of one session."""
    await store.create_event(
        session_id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {"message": f"m{number}"}
    )
    await store.list_events(session_id)
    await store.read_session(session_id)
    await store.update_session(session_id, {"title": f"turn {number}"})


async def measure(
    params: dict[str, Any],
    store_type: type[SessionDocumentStore],
    sessions: int,
    latency_ms: float,
    window: float,
    pool_size: int,
) -> tuple[float, float]:
    """(turns per second, statements per turn) for ``store_type``."""
    meter = StatementMeter()
    async with (
        SnowflakeDocumentDatabase(
            quiet_logger(),
            params,
            table_prefix=f"MEASURE_{store_type.__name__.upper()}_",
            connection_factory=meter.connection_factory,
            pool_size=pool_size,
        ) as database,
        store_type(database, allow_migration=True) as store,
    ):
        ids = [
            (await store.create_session(CustomerId(f"c{i}"), AgentId("a"))).id
            for i in range(sessions)
        ]
        meter.latency_ms = latency_ms
        done = finished = 0
        before = meter.statements
        deadline = time.perf_counter() + window

        async def run(session_id: SessionId) -> None:
            nonlocal done, finished
            number = 0
            while time.perf_counter() < deadline:
                await turn(store, session_id, number)
                number += 1
                finished += 1
                if time.perf_counter() <= deadline:
                    done += 1

        await asyncio.gather(*(run(s) for s in ids))
        sent = meter.statements - before
    # Statements per turn over every turn, including those finishing after the window.
    return done / window, sent / max(finished, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--window", type=float, default=12.0)
    parser.add_argument("--pool-size", type=int, default=4)
    arguments = parser.parse_args()
    with running_emulator() as params:
        results = {}
        for store_type in (SessionDocumentStore, ConcurrentSessionDocumentStore):
            results[store_type.__name__] = asyncio.run(
                measure(
                    params,
                    store_type,
                    arguments.sessions,
                    arguments.latency_ms,
                    arguments.window,
                    arguments.pool_size,
                )
            )
    print(
        f"C={arguments.sessions} sessions, L={arguments.latency_ms:g} ms, "
        f"window {arguments.window:g} s, pool {arguments.pool_size}"
    )
    for name, (rate, statements) in results.items():
        print(f"{name:<34} {rate:6.2f} turns/s  {statements:5.2f} statements/turn")
    base, ours = (rate for rate, _ in results.values())
    print(f"ratio {ours / base:.2f}x")


if __name__ == "__main__":
    main()
