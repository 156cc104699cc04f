"""Statements and milliseconds per SessionDocumentStore call on the emulator, L = 0.

The before/after measurement behind the "Emulator cost per statement" section of
docs/snowflake.md. From the repository root:

    .venv/bin/python -m bench.measure_statement_cost [--repeat 15] [--sql] [--compare]

``--sql`` also prints the SQL text of one statement of each call. ``--compare`` instead times
earlier and current forms of single statements against each other, alternating, over the real
connector (the "before/after" figures of docs/snowflake.md's statement list).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import snowflake.connector
from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId
from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore

from bench.adapters import quiet_logger
from bench.server import running_emulator
from parlant_router.snowflake import CountingConnectionFactory, SnowflakeDocumentDatabase


async def measure(params: dict[str, Any], repeat: int, show_sql: bool) -> None:
    """Print, per store call: statements per call and median milliseconds per call."""
    counter = CountingConnectionFactory()
    async with (
        SnowflakeDocumentDatabase(
            quiet_logger(), params, table_prefix="MEASURE_", connection_factory=counter
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


#: (statement, its earlier form, its current form), on table "E" of events.
_COMPARED = [
    (
        "insert_one",
        'INSERT INTO "E" (ID, VERSION, CREATION_UTC, DATA) SELECT V.ID, V.VERSION, '
        "V.CREATION_UTC, PARSE_JSON(V.DATA) FROM VALUES (%(id)s, 'v', 'c', %(data)s) "
        "AS V(ID, VERSION, CREATION_UTC, DATA) "
        'WHERE NOT EXISTS (SELECT 1 FROM "E" AS E WHERE E.ID = V.ID)',
        'INSERT INTO "E" (ID, VERSION, CREATION_UTC, DATA) '
        "SELECT %(id)s, 'v', 'c', PARSE_JSON(%(data)s) "
        'WHERE NOT EXISTS (SELECT 1 FROM "E" WHERE ID = %(id)s)',
    ),
    (
        "list_events' query",
        "SELECT TO_JSON(DATA) FROM \"E\" WHERE ((TO_JSON(DATA['session_id']) = "
        "TO_JSON(TO_VARIANT('s1'))) AND ((CASE TO_JSON(DATA['deleted']) WHEN 'true' THEN 1 "
        "WHEN 'false' THEN 0 ELSE TRY_TO_DOUBLE(TO_JSON(DATA['deleted'])) END) = 0)) "
        "ORDER BY CREATION_UTC ASC NULLS FIRST, ID ASC",
        "SELECT TO_JSON(DATA) FROM \"E\" WHERE ((TO_JSON(DATA['session_id']) = '\"s1\"') AND "
        "((TRY_TO_DOUBLE(TO_JSON(DATA['deleted'])) = 0) OR (TO_JSON(DATA['deleted']) = 'false'))) "
        "ORDER BY CREATION_UTC ASC NULLS FIRST, ID ASC",
    ),
]


def compare(params: dict[str, Any], rounds: int) -> None:
    """Print the median milliseconds of each earlier and current statement form."""
    connection = snowflake.connector.connect(**params)
    cursor = connection.cursor()
    cursor.execute(
        'CREATE TABLE "E" (ID STRING, VERSION STRING, CREATION_UTC STRING, DATA VARIANT)'
    )
    for index in range(50):
        document = {"session_id": f"s{index % 2}", "offset": index, "deleted": False}
        cursor.execute(
            "INSERT INTO \"E\" SELECT %(id)s, 'v', %(c)s, PARSE_JSON(%(data)s)",
            {"id": f"e{index}", "c": f"2026-{index:03}", "data": json.dumps(document)},
        )
    timings: dict[tuple[str, str], list[float]] = {}
    for round_number in range(rounds):
        for name, *forms in _COMPARED:
            for label, sql in zip(("before", "after"), forms, strict=True):
                values = {"id": f"n{round_number}{label}", "data": '{"a": 1}'}
                started = time.perf_counter()
                cursor.execute(sql, values if "%(" in sql else None)
                cursor.fetchall()
                timings.setdefault((name, label), []).append(time.perf_counter() - started)
    connection.close()
    for (name, label), durations in timings.items():
        print(f"{name:<20} {label:<7} {statistics.median(durations) * 1000:6.1f} ms median")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sql", action="store_true")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--rounds", type=int, default=60)
    arguments = parser.parse_args()
    with running_emulator() as params:
        if arguments.compare:
            compare(params, arguments.rounds)
        else:
            asyncio.run(measure(params, arguments.repeat, arguments.sql))


if __name__ == "__main__":
    main()
