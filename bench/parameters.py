"""What a run measures, and how much of it: the full run and the quick one."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Parameters:
    """Sizes of one benchmark run (``python -m bench --help`` lists the flags)."""

    sessions: int = 2
    """N: sessions replaying the recorded turn sequentially."""
    turns: int = 2
    """T: turns per session at each latency below ``high_latency_ms``."""
    high_latency_turns: int = 1
    """Turns per session at ``high_latency_ms`` and above (they are slow by design)."""
    high_latency_ms: float = 80.0
    latencies_ms: tuple[float, ...] = (0.0, 20.0, 80.0)
    """L: milliseconds added to every statement, modelling Snowflake's round trip."""
    concurrency: tuple[int, ...] = (1, 8, 32)
    """C: concurrent sessions, for whole turns and for reads."""
    concurrency_latency_ms: float = 80.0
    turn_window_seconds: float = 10.0
    read_window_seconds: float = 6.0
    append_sizes: tuple[int, ...] = (100, 1_000, 5_000)
    appends: int = 15
    """create_event calls timed at each size (the median is reported)."""
    migration_documents: int = 10_000
    upstream_migration_documents: int = 1_000
    """Upstream migrates one UPDATE per document; 10,000 of them would take minutes."""
    pool_size: int | None = None
    """Our adapter's pool size (None: its default)."""
    session_locks: bool = True
    """Also run ours' concurrent turns with parlant_router's ConcurrentSessionDocumentStore."""

    # --- Server turns (bench/server_turns.py): real servers, the official client ----------
    server_turns: int = 3
    """Measured turns per configuration and latency, after the warm-up turns."""
    server_warmup_turns: int = 1
    """Turns run first on each fresh session and not measured (the cache fills then)."""
    server_latencies_ms: tuple[float, ...] = (0.0, 80.0)
    """L slept by the emulator per query request before handling it (Snowflake's round trip)."""
    quiet_seconds: float = 2.0
    """A turn's statements are counted from posting until none has arrived for this long."""
    idle_clients: int = 10
    """Clients long-polling their own empty session during the idle window."""
    idle_window_seconds: float = 30.0
    idle_wait_seconds: int = 10
    """``wait_for_data`` of each idle long poll; re-issued when it times out (HTTP 504)."""
    memory_sessions: int = 1_000
    memory_events: int = 100
    """Events per session in the cache memory measurement."""
    memory_bounds_bytes: tuple[int, ...] = (64 * 2**20, 8 * 2**20)
    """Read cache bounds measured: the default (64 MiB) and a small one that must evict."""

    # --- Stores that have grown (bench/growth.py): startup and migration at scale --------
    startup_events: tuple[int, ...] = (0, 100_000, 1_000_000)
    """Events stored (written in bulk) before the starts at each size, cumulatively."""
    startup_sessions: int = 1_000
    """Sessions the stored events are spread over."""
    startup_runs: int = 2
    """Starts of a server measured at each size."""
    large_migration_documents: tuple[int, ...] = (30_000, 300_000)
    """Sessions at 0.8.0 opened in a process of their own. The emulator's time grows with the
    documents (fakesnow parses every batched UPDATE in Python), so the issue's 1,000,000 would
    take most of ``make bench`` on its own: ``--large-migration-docs 1000000`` runs it (its
    measured time: docs/benchmarks.md, "Stores that have grown")."""

    prune_sessions: int = 100_000
    """Expired sessions one pruning pass deletes (bench/prune.py)."""
    prune_events_per_session: int = 10
    """Events of each seeded session (100,000 x 10: the issue's 1,000,000 events)."""
    prune_kept_sessions: int = 1_000
    """Sessions active yesterday, seeded beside them: the pass must not touch them."""

    # --- Vector stores (bench/vectors.py): restarts and searches (issue 14) --------------
    vector_glossary_terms: int = 1_000
    vector_journeys: int = 200
    vector_canned_responses: int = 500
    """Seeded through HTTP; every third canned response with two signals."""
    vector_restarts: int = 2
    """Restarts of each seeded server measured (nothing changed between them)."""
    vector_seed_concurrency: int = 8
    """Requests in flight while seeding."""
    vector_documents: int = 10_000
    """Documents of the one collection searched in process."""
    vector_searches: int = 300
    vector_k: int = 10

    # --- Moving data (bench/copy.py): parlant-router copy, JSON files to Snowflake (issue 15)
    copy_events: int = 100_000
    """Events of the copied home's sessions.json."""
    copy_sessions: int = 1_000
    """Sessions the events are spread over."""
    copy_customers: int = 10_000
    """Customers of its customers.json."""
    copy_small_divisor: int = 3
    """The second copy's source is this many times smaller (is memory flat?)."""
    copy_kill_fraction: float = 0.5
    """The killed copy is killed once this fraction of the events is in (0: the first row)."""

    def turns_at(self, latency_ms: float) -> int:
        """Turns per session at ``latency_ms``."""
        return self.high_latency_turns if latency_ms >= self.high_latency_ms else self.turns


FULL = Parameters()

QUICK = replace(
    FULL,
    sessions=1,
    turns=1,
    latencies_ms=(0.0, 20.0),
    concurrency=(1, 4),
    concurrency_latency_ms=20.0,
    turn_window_seconds=2.0,
    read_window_seconds=1.0,
    append_sizes=(10, 50),
    appends=2,
    migration_documents=50,
    upstream_migration_documents=20,
    server_turns=1,
    idle_window_seconds=5.0,
    idle_wait_seconds=2,
    memory_sessions=200,
    memory_events=50,
    startup_events=(0, 500),
    startup_sessions=10,
    startup_runs=1,
    large_migration_documents=(200,),
    prune_sessions=300,
    prune_events_per_session=3,
    prune_kept_sessions=20,
    vector_glossary_terms=20,
    vector_journeys=5,
    vector_canned_responses=10,
    vector_documents=300,
    vector_searches=50,
    vector_restarts=1,
    copy_events=6_000,
    copy_sessions=20,
    copy_customers=60,
    # A statement holds some 2,000 events: killed at the first row, the copy is mid-way.
    copy_kill_fraction=0.0,
)
"""Tiny sizes: the machinery end to end in well under a minute (the smoke test)."""
