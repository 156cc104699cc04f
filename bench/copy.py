"""Moving data (issue 15): ``parlant-router copy`` from a plain Parlant home's JSON files to
Snowflake, measured at the emulator's door.

- **Source.** A plain ``parlant-server`` home generated in Parlant's own layout:
  ``sessions.json`` (``sessions``, ``events``, ``metadata``) and ``customers.json``
  (``customers``, ``customer_tag_associations``, ``metadata``). The document shapes are
  Parlant's: one session, one message event and one customer are created through Parlant's
  own `SessionDocumentStore` and `CustomerDocumentStore` on `JSONFileDocumentDatabase`, and
  copied under new ids (events spread evenly over the sessions, offsets in order).
- **Destination.** One `SnowflakeEmulator` in the bench process with growth's `_Door`
  (`WireMeter`) around it: every statement the copy sends is counted at the wire. The copy is
  a real ``parlant-router copy --from-parlant-home HOME --to-config FILE`` subprocess whose
  config names the emulator's directory: it attaches to the bench's server, so its statements
  pass the door. Each run writes under table prefixes of its own (an empty destination).
- **Memory.** The copy process's peak resident memory is its ``VmHWM`` (``/proc/<pid>/status``,
  read every 50 ms until it exits: the high-water mark only grows). The same copy at a size ``copy_small_divisor`` times smaller shows whether
  memory follows the data (it should not: sources are read a page at a time).
- **Resume.** A third copy is killed (SIGKILL) once ``copy_kill_fraction`` (half) of the
  events are in their table (watched by a separate connection, whose polls are not
  counted), then run again; its statements (both runs) are compared with the uninterrupted
  copy's, and the resumed run must exit 0 with every store verified.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bench.growth import _Door
from bench.open_store import status_bytes
from bench.parameters import Parameters
from bench.server_turns import StoreClassifier, WireMeter

COPY = "copy"
PARLANT_ROUTER = Path(sys.executable).parent / "parlant-router"
_RAM_DIR = Path("/dev/shm")
_POLL_MARKER = "BENCH_COPY_POLL"
"""Names the watcher's polls, which are subtracted from the statements counted."""
_RUN_SECONDS = 1800.0


def _log(message: str) -> None:
    print(f"[bench copy] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class CopyRun:
    """One ``parlant-router copy`` process."""

    label: str
    documents: int
    """Documents of the source (every collection, metadata included)."""
    statements: int
    """Statements the copy sent (the watcher's polls excluded)."""
    seconds: float
    peak_rss_bytes: int
    exit_status: int
    stores_verified: int
    """Stores the summary calls verified (``N store(s) copied, M verified``)."""
    stores: int
    events_held: int | None = None
    """For the killed run: events in the destination table when it was killed."""

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    @property
    def verified(self) -> bool:
        return self.exit_status == 0 and self.stores > 0 and self.stores_verified == self.stores


@dataclass
class CopyResults:
    """The copy workload's runs."""

    parameters: Parameters
    started: datetime
    runs: list[CopyRun] = field(default_factory=list)
    seconds: float = 0.0
    source_bytes: dict[str, int] = field(default_factory=dict)
    """Bytes of each size's source files, by run label."""

    def run(self, label: str) -> CopyRun | None:
        return next((r for r in self.runs if r.label == label), None)


FULL_RUN = "full"
SMALL_RUN = "small"
KILLED_RUN = "killed"
RESUMED_RUN = "resumed"


# --- The source: a plain Parlant home -------------------------------------------------------


async def _templates() -> dict[str, dict[str, Any]]:
    """One session, message event and customer as Parlant's own stores write them."""
    from parlant.adapters.db.json_file import JSONFileDocumentDatabase
    from parlant.core.agents import AgentId
    from parlant.core.common import IdGenerator
    from parlant.core.customers import CustomerDocumentStore
    from parlant.core.loggers import LogLevel, StdoutLogger
    from parlant.core.sessions import EventKind, EventSource, SessionDocumentStore
    from parlant.core.tracer import LocalTracer

    logger = StdoutLogger(LocalTracer(), LogLevel.ERROR)
    with tempfile.TemporaryDirectory(prefix="parlant-bench-copy-template-") as directory:
        home = Path(directory)
        async with (
            JSONFileDocumentDatabase(logger, home / "sessions.json") as sessions_db,
            JSONFileDocumentDatabase(logger, home / "customers.json") as customers_db,
            SessionDocumentStore(sessions_db) as sessions,
            CustomerDocumentStore(IdGenerator(), customers_db) as customers,
        ):
            customer = await customers.create_customer(
                "Ada Lovelace", extra={"tier": "gold", "region": "emea"}
            )
            session = await sessions.create_session(
                customer.id, AgentId("agent-1"), title="Where is my order?"
            )
            await sessions.create_event(
                session.id,
                EventSource.CUSTOMER,
                EventKind.MESSAGE,
                "trace-0",
                {
                    "message": "Hi, I ordered a kettle last week and it has not arrived yet.",
                    "participant": {"id": customer.id, "display_name": "Ada Lovelace"},
                    "flagged": False,
                    "tags": [],
                },
            )
        stored = {
            name: json.loads((home / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("sessions", "customers")
        }
    return {
        "session": stored["sessions"]["sessions"][0],
        "event": stored["sessions"]["events"][0],
        "sessions_metadata": stored["sessions"]["metadata"][0],
        "customer": stored["customers"]["customers"][0],
        "customers_metadata": stored["customers"]["metadata"][0],
    }


def write_parlant_home(
    home: Path, *, events: int, sessions: int, customers: int, templates: dict[str, Any]
) -> int:
    """Write ``sessions.json`` and ``customers.json`` of a plain Parlant home; the documents
    written (every collection)."""
    home.mkdir(parents=True, exist_ok=True)
    session, event = templates["session"], templates["event"]
    customer = templates["customer"]
    per_session = max(1, -(-events // max(1, sessions)))
    with (home / "sessions.json").open("w", encoding="utf-8") as out:
        out.write(
            '{"metadata": [' + json.dumps(templates["sessions_metadata"]) + '], "sessions": ['
        )
        out.write(
            ",".join(
                json.dumps(
                    {
                        **session,
                        "id": f"s{n:07d}",
                        "customer_id": f"c{n % max(1, customers):07d}",
                        "title": f"{session['title']} #{n}",
                    }
                )
                for n in range(sessions)
            )
        )
        out.write('], "events": [')
        for n in range(events):
            if n:
                out.write(",")
            out.write(
                json.dumps(
                    {
                        **event,
                        "id": f"e{n:09d}",
                        "session_id": f"s{n // per_session:07d}",
                        "offset": n % per_session,
                        "trace_id": f"trace-{n}",
                        "data": {**event["data"], "message": f"{event['data']['message']} ({n})"},
                    }
                )
            )
        out.write("]}")
    with (home / "customers.json").open("w", encoding="utf-8") as out:
        out.write(
            '{"metadata": [' + json.dumps(templates["customers_metadata"]) + '], "customers": ['
        )
        out.write(
            ",".join(
                json.dumps({**customer, "id": f"c{n:07d}", "name": f"Customer {n}"})
                for n in range(customers)
            )
        )
        out.write('], "customer_tag_associations": []}')
    return 2 + sessions + events + customers


# --- Running copies ---------------------------------------------------------------------------

_SUMMARY = re.compile(r"(\d+) store\(s\) copied, (\d+) verified")


@dataclass
class _Bench:
    door: _Door
    work: Path
    emulator_directory: Path
    connection: Any
    """A connector connection of the bench's own, for the watcher's polls."""

    def config(self, prefix: str) -> Path:
        path = self.work / f"copy-{prefix.lower()}.yaml"
        document = {
            "version": 1,
            "server": {"home": str(self.work / "router-home"), "nlp": "offline"},
            "backends": {
                "warehouse": {"type": "snowflake", "emulator": str(self.emulator_directory)}
            },
            "stores": {
                store: {"backend": "warehouse", "table_prefix": f"{prefix}_{store.upper()}_"}
                for store in ("sessions", "customers")
            },
        }
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    def polls(self) -> int:
        snapshot = self.door.statements.snapshot()
        return sum(n for (_, shape), n in snapshot.by_shape.items() if _POLL_MARKER in shape)

    def statements(self) -> int:
        return self.door.statements.snapshot().total - self.polls()

    def events_held(self, prefix: str) -> int:
        with self.connection.cursor() as cursor:
            try:
                cursor.execute(f"SELECT COUNT(*) AS {_POLL_MARKER} FROM {prefix}_SESSIONS_EVENTS")
            except Exception:  # the table is not created yet
                return 0
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    @staticmethod
    def _wait(process: subprocess.Popen[bytes], kill_when: Callable[[], bool]) -> int:
        """Wait for ``process`` (SIGKILL it once ``kill_when()``, asked every 0.2 s); its
        peak resident memory (``VmHWM``, read every 50 ms until it exits).

        Not ``ru_maxrss``: that counts the forked bench process before the exec."""
        peak, asked, deadline = 0, 0.0, time.monotonic() + _RUN_SECONDS
        while process.poll() is None:
            peak = max(peak, status_bytes(process.pid, "VmHWM") or 0)
            now = time.monotonic()
            if now >= deadline:
                process.kill()
            elif now - asked >= 0.2:
                asked = now
                if kill_when():
                    process.send_signal(signal.SIGKILL)
            time.sleep(0.05)
        return peak

    def copy(
        self,
        label: str,
        home: Path,
        prefix: str,
        documents: int,
        *,
        kill_at_events: int | None = None,
    ) -> CopyRun:
        """Run one copy to completion (or until ``kill_at_events`` events are in)."""
        argv = [
            str(PARLANT_ROUTER),
            "copy",
            "--from-parlant-home",
            str(home),
            "--to-config",
            str(self.config(prefix)),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PARLANT_ENV", None)
        env.pop("PARLANT_CONFIG", None)
        before = self.statements()
        started = time.perf_counter()
        out, err = self.work / f"{label}.out", self.work / f"{label}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
            threshold = kill_at_events

            def enough() -> bool:
                return threshold is not None and self.events_held(prefix) >= threshold

            peak = self._wait(process, enough)
        seconds = time.perf_counter() - started
        held = self.events_held(prefix) if kill_at_events is not None else None
        summary = _SUMMARY.search(out.read_text(encoding="utf-8", errors="replace"))
        run = CopyRun(
            label=label,
            documents=documents,
            statements=self.statements() - before,
            seconds=seconds,
            peak_rss_bytes=peak,
            exit_status=process.returncode,
            stores_verified=int(summary.group(2)) if summary else 0,
            stores=int(summary.group(1)) if summary else 0,
            events_held=held,
        )
        if kill_at_events is None and not run.verified:
            _log(f"{label}: exit {run.exit_status}: {err.read_text(errors='replace')[-2000:]}")
        return run


def run_copy(p: Parameters, *, step: Callable[[str], None] = _log) -> CopyResults:
    """The copy workload: a full-size copy, a smaller one, a killed one and its resumption."""
    import snowflake.connector

    from parlant_router.snowflake.emulator import SnowflakeEmulator

    results = CopyResults(p, datetime.now(timezone.utc))
    clock = time.perf_counter()
    templates = asyncio.run(_templates())
    base = str(_RAM_DIR) if _RAM_DIR.is_dir() else None
    classifier = StoreClassifier(
        {
            f"{store}@{prefix}": f"{prefix}_{store.upper()}_"
            for store in ("sessions", "customers")
            for prefix in ("FULL", "SMALL", "KILLED")
        }
    )
    door = _Door(WireMeter(classifier))
    with tempfile.TemporaryDirectory(prefix="parlant-bench-copy-", dir=base) as directory:
        work = Path(directory)
        sizes = {
            FULL_RUN: (p.copy_events, p.copy_sessions, p.copy_customers),
            SMALL_RUN: tuple(
                max(1, n // p.copy_small_divisor)
                for n in (p.copy_events, p.copy_sessions, p.copy_customers)
            ),
        }
        homes: dict[str, tuple[Path, int]] = {}
        for label, (events, sessions, customers) in sizes.items():
            home = work / f"home-{label}"
            documents = write_parlant_home(
                home, events=events, sessions=sessions, customers=customers, templates=templates
            )
            homes[label] = (home, documents)
            results.source_bytes[label] = sum(f.stat().st_size for f in home.iterdir())
            step(
                f"source {label}: {events:,} events in {sessions:,} sessions, "
                f"{customers:,} customers ({results.source_bytes[label] / 1e6:.1f} MB)"
            )
        emulator = SnowflakeEmulator(work / "snowflake", wrap_app=door.wrap)
        params = emulator.start()
        connection = snowflake.connector.connect(**params)
        bench = _Bench(door, work, work / "snowflake", connection)
        try:
            home, documents = homes[FULL_RUN]
            for label, prefix, source in (
                (FULL_RUN, "FULL", homes[FULL_RUN]),
                (SMALL_RUN, "SMALL", homes[SMALL_RUN]),
            ):
                run = bench.copy(label, source[0], prefix, source[1])
                results.runs.append(run)
                step(_describe(run))
            killed = bench.copy(
                KILLED_RUN,
                home,
                "KILLED",
                documents,
                kill_at_events=max(1, int(p.copy_events * p.copy_kill_fraction)),
            )
            results.runs.append(killed)
            step(_describe(killed))
            resumed = bench.copy(RESUMED_RUN, home, "KILLED", documents)
            results.runs.append(resumed)
            step(_describe(resumed))
        finally:
            connection.close()
            emulator.stop()
    results.seconds = time.perf_counter() - clock
    return results


def _describe(run: CopyRun) -> str:
    held = f", killed with {run.events_held:,} events in" if run.events_held is not None else ""
    return (
        f"{run.label}: exit {run.exit_status}, {run.statements} statements, "
        f"{run.seconds:.1f} s, {run.documents_per_second:,.0f} documents/s, peak RSS "
        f"{run.peak_rss_bytes / 2**20:.0f} MiB, {run.stores_verified}/{run.stores} verified{held}"
    )
