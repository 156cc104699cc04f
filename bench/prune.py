"""Pruning a retention's expired sessions: statements, time, and what survived.

Sessions and their events are written in bulk straight into our adapter's tables (the
``Seeder``): ``expired`` sessions last active in 2024, ``kept`` ones active yesterday, each
with ``events_per_session`` events. One pass of ``SqlPruning`` with a 90-day retention then
runs on our adapter, metered like every workload, and the tables are counted afterwards to
verify that exactly the expired sessions and their events are gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from parlant.core.sessions import SessionDocumentStore

from bench.adapters import Adapter
from bench.seed import Seeder, sequenced_time, session_template
from parlant_router.retention.sql_pruning import SqlPruning
from parlant_router.snowflake import SnowflakeDocumentDatabase
from parlant_router.stores.catalog import STORES

RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class PruneFigure:
    """One pruning pass over seeded sessions."""

    expired_sessions: int
    kept_sessions: int
    events_per_session: int
    statements: int
    seconds: float
    execute_seconds: float
    """Of ``seconds``, the time spent inside the connector's ``execute`` (the emulator)."""
    deleted_sessions: int
    deleted_events: int
    sessions_left: int
    """Sessions stored afterwards."""
    kept_sessions_left: int
    """Of ``sessions_left``, the kept ones."""
    events_left: int
    """Events stored afterwards."""
    kept_events_left: int
    """Of ``events_left``, the kept sessions'."""

    def verified(self) -> bool:
        """Exactly the expired sessions and their events were deleted, nothing else."""
        return (
            self.deleted_sessions == self.expired_sessions
            and self.deleted_events == self.expired_sessions * self.events_per_session
            and self.sessions_left == self.kept_sessions_left == self.kept_sessions
            and self.events_left
            == self.kept_events_left
            == self.kept_sessions * self.events_per_session
        )


def _event(session_prefix: str, number: int, when: str) -> dict[str, object]:
    return {
        "id": f"{session_prefix}e{number}___SEQ__",
        "version": SessionDocumentStore.VERSION.to_string(),
        "creation_utc": when,
        "session_id": f"{session_prefix}__SEQ__",
        "source": "customer",
        "kind": "message",
        "offset": number,
        "trace_id": "trace",
        "data": {"message": "hello"},
        "metadata": {},
        "deleted": False,
    }


async def measure_prune(
    adapter: Adapter, seeder: Seeder, *, expired: int, kept: int, events_per_session: int
) -> PruneFigure:
    """Seed, prune once with our adapter, count what is left."""
    prefix = f"BENCH_{adapter.name.upper()}_PRUNE{expired}_"
    sessions, events = f"{prefix}SESSIONS", f"{prefix}EVENTS"
    seeder.create_table(sessions)
    seeder.create_table(events)
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.")
    recent = f"{yesterday}__SEQ__+00:00"
    version = SessionDocumentStore.VERSION.to_string()
    for name, count, when in (("x", expired, sequenced_time()), ("k", kept, recent)):
        seeder.insert_generated(
            sessions, session_template(version, prefix=name, creation_utc=when), count
        )
        for number in range(events_per_session):
            seeder.insert_generated(events, _event(name, number, when), count)
    rule = STORES["sessions"].retention
    assert rule is not None
    adapter.meter.latency_ms = 0
    async with adapter.database(prefix) as database:
        assert isinstance(database, SnowflakeDocumentDatabase)
        before = adapter.meter.statements
        busy_before = adapter.meter.execute_seconds
        started = time.perf_counter()
        deleted = await SqlPruning(database, rule).prune(datetime.now(timezone.utc) - RETENTION)
        seconds = time.perf_counter() - started
        statements = adapter.meter.statements - before
        busy = adapter.meter.execute_seconds - busy_before
    left = seeder.execute(
        f"SELECT (SELECT COUNT(*) FROM \"{sessions}\" WHERE STARTSWITH(ID, 'k')), "
        f'(SELECT COUNT(*) FROM "{sessions}"), '
        f"(SELECT COUNT(*) FROM \"{events}\" WHERE STARTSWITH(ID, 'k')), "
        f'(SELECT COUNT(*) FROM "{events}")'
    )[0]
    kept_sessions_left, sessions_left, kept_events_left, events_left = (int(n) for n in left)
    return PruneFigure(
        expired_sessions=expired,
        kept_sessions=kept,
        events_per_session=events_per_session,
        statements=statements,
        seconds=seconds,
        execute_seconds=busy,
        deleted_sessions=deleted["sessions"],
        deleted_events=deleted["events"],
        sessions_left=sessions_left,
        kept_sessions_left=kept_sessions_left,
        events_left=events_left,
        kept_events_left=kept_events_left,
    )
