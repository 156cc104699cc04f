"""Statements and milliseconds per SessionDocumentStore call on the emulator, L = 0.

Not a test (no assertions, not collected): the before/after measurement behind the
"Emulator cost per statement" section of docs/snowflake.md. Run it with

    .venv/bin/python tests/snowflake/measure_statement_cost.py [--repeat 15] [--sql]

``--sql`` also prints the SQL text of one statement of each call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore
from snowflake_test_logger import RecordingLogger

from parlant_router.snowflake import (
    CountingConnectionFactory,
    SnowflakeDocumentDatabase,
    SnowflakeEmulator,
)


async def measure(params: dict[str, Any], repeat: int, show_sql: bool) -> None:
    """Print, per store call: statements per call and median milliseconds per call."""
    counter = CountingConnectionFactory()
    logger = RecordingLogger()
    async with (
        SnowflakeDocumentDatabase(
            logger, params, table_prefix="MEASURE_", connection_factory=counter
        ) as database,
        SessionDocumentStore(database, allow_migration=True) as store,
    ):
        session = await store.create_session(CustomerId("c"), AgentId("a"))
        for _ in range(20):
            await store.create_event(
                session.id, EventSource.CUSTOMER, EventKind.MESSAGE, "t", {"m": "x"}
            )
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "create_event": lambda: store.create_event(
                session.id, EventSource.AI_AGENT, EventKind.MESSAGE, "t", {"m": "y"}
            ),
            "read_session": lambda: store.read_session(session.id),
            "list_events": lambda: store.list_events(session.id),
            "update_session": lambda: store.update_session(session.id, {"title": "t"}),
        }
        print(f"{'store call':<16} {'statements':>10} {'ms/call':>8} {'ms/statement':>12}")
        for name, call in calls.items():
            await call()  # warm up (and let update_session read the document once)
            durations: list[float] = []
            counter.reset()
            for _ in range(repeat):
                started = time.perf_counter()
                await call()
                durations.append((time.perf_counter() - started) * 1000)
            statements = counter.statements / repeat
            median = statistics.median(durations)
            print(f"{name:<16} {statements:>10.2f} {median:>8.1f} {median / statements:>12.1f}")
            if show_sql:
                for sql in dict.fromkeys(counter.log):
                    print(f"    {len(sql):>5} chars: {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sql", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, SnowflakeEmulator(Path(directory)) as params:
        asyncio.run(measure(params, arguments.repeat, arguments.sql))


if __name__ == "__main__":
    main()
