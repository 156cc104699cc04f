"""The markdown report (docs/benchmarks.md) of a run.

`render` joins the sections in order; each section, each target of `targets` and each note
of `findings` is built by a function of its own. The server-turns workload
(bench/server_turns.py) and the replicas one (bench/replicas.py) have their own sections,
targets and findings at the end.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from parlant.core.sessions import SessionDocumentStore

from bench.adapters import OURS, UPSTREAM, default_pool_size
from bench.copy import FULL_RUN, KILLED_RUN, RESUMED_RUN, SMALL_RUN, CopyResults
from bench.growth import (
    MIGRATION,
    OLD_SESSION_VERSION,
    PRUNE,
    STARTUP,
    GrowthResults,
    StartupFigure,
)
from bench.parameters import Parameters
from bench.prune import PruneFigure
from bench.replicas import (
    CHANGE_FEED,
    UNATTRIBUTED,
    IdleReplicasFigure,
    ReplicasResults,
    SafetyFigure,
    ServerFigure,
    StalenessFigure,
    ThroughputFigure,
)
from bench.run import AdapterResults, RunResults
from bench.server_turns import (
    CACHE_NOTIFY,
    OFF,
    ConfigurationFigures,
    MemoryFigure,
    ServerTurnsResults,
    TurnFigure,
    WireCounts,
    percentile,
)
from bench.vectors import (
    SNOWFLAKE_MODE,
    TRANSIENT_MODE,
    VECTOR_STORES,
    ModeFigure,
    SearchFigure,
    VectorResults,
)
from bench.workloads import RateFigure, TurnFigures
from parlant_router.retention.sql_pruning import PAGE_ROWS as SQL_PAGE_ROWS
from parlant_router.snowflake.database import (
    MAX_BATCH_BINDS,
    MAX_BATCH_BYTES,
    MAX_BATCH_ROWS,
    MIGRATION_PAGE_CHARS,
    MIGRATION_PAGE_ROWS,
)

_PACKAGES = (
    "parlant",
    "parlant-client",
    "snowflake-connector-python",
    "fakesnow",
    "duckdb",
    "sqlglot",
)

# SessionDocumentStore methods that take its writer lock (parlant/core/sessions.py, 3.3.2):
# while one runs, no other call on the store -- read or write -- proceeds.
WRITER_LOCKED = (
    "create_session",
    "delete_session",
    "update_session",
    "set_metadata",
    "unset_metadata",
    "upsert_labels",
    "remove_labels",
    "create_event",
    "delete_event",
    "update_event",
)


@dataclass(frozen=True)
class TargetRow:
    """A target ours is judged on against upstream, and how this run fared against it."""

    target: str
    measured: str
    verdict: str
    """``met``, ``missed`` or ``not measured``."""


# --- The machine ---------------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    """Facts about the machine and the software, for the report's first table."""
    facts = [
        ("CPU cores", str(os.cpu_count())),
        ("CPU", _cpu_model()),
        ("Memory", _memory()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
    ]
    for package in _PACKAGES:
        try:
            facts.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            facts.append((package, "not installed"))
    return facts


def _proc_line(path: str, prefix: str) -> str | None:
    """The first line of ``path`` (a /proc file) starting with ``prefix``, if any."""
    file = Path(path)
    if file.exists():
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.startswith(prefix):
                return line
    return None


def _cpu_model() -> str:
    line = _proc_line("/proc/cpuinfo", "model name")
    if line is not None:
        return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    line = _proc_line("/proc/meminfo", "MemTotal:")
    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB" if line is not None else "unknown"


# --- Formatting ----------------------------------------------------------------------------


def _blocks(*blocks: str | Sequence[str]) -> list[str]:
    """The lines of ``blocks`` (a line, or a run of lines), each block followed by a blank."""
    lines: list[str] = []
    for block in blocks:
        lines += [block] if isinstance(block, str) else block
        lines.append("")
    return lines


def _section(title: str, *blocks: str | Sequence[str]) -> list[str]:
    return _blocks(f"## {title}", *blocks)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "-"
    return f"{numerator / denominator:.2f}x"


def _upstream_over_ours(values: Mapping[str, float]) -> list[str]:
    """The "upstream / ours" cell of a row, when the run measured both adapters."""
    return [_ratio(values[UPSTREAM], values[OURS])] if len(values) == 2 else []


def _rate(figures: Sequence[RateFigure], concurrency: int) -> float | None:
    for figure in figures:
        if figure.concurrency == concurrency:
            return figure.per_second
    return None


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _pool_size(p: Parameters) -> str:
    if p.pool_size is not None:
        return f"pool of {p.pool_size}"
    default = default_pool_size()
    return f"pool of {default} (its default)" if default is not None else "its default pool"


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _names(results: RunResults) -> list[str]:
    """The adapters of the run, upstream first."""
    return [n for n in (UPSTREAM, OURS) if n in results.adapters]


def _turn_figures(results: RunResults, names: Sequence[str]) -> dict[str, TurnFigures]:
    figures: dict[str, TurnFigures] = {}
    for name in names:
        turns = results.adapters[name].turns
        assert turns is not None, name
        figures[name] = turns
    return figures


# --- Targets -------------------------------------------------------------------------------


def targets(results: RunResults) -> list[TargetRow]:
    """The targets of the report's table, judged on this run (ours against upstream)."""
    ours = results.adapters.get(OURS)
    upstream = results.adapters.get(UPSTREAM)
    if ours is None or upstream is None:
        return [TargetRow("all targets", "ours was not measured in this run", "not measured")]
    assert ours.turns is not None and upstream.turns is not None
    latency_ms = results.parameters.concurrency_latency_ms
    rows = [
        _statements_target(ours.turns, upstream.turns),
        _rate_target(
            "concurrent turns, C=8, L=80 ms: at least 1.7x upstream's turns/s",
            ours.concurrent_turns,
            upstream.concurrent_turns,
            1.7,
            latency_ms,
        ),
        # What `parlant-router run` serves: sessions on ConcurrentSessionDocumentStore.
        _rate_target(
            "the same, with sessions as the router ships them "
            "(ConcurrentSessionDocumentStore; upstream on Parlant's store)",
            ours.session_lock_turns,
            upstream.concurrent_turns,
            1.7,
            latency_ms,
        ),
        _single_turn_target(ours, upstream, latency_ms),
        _rate_target(
            "concurrent reads, C=8, L=80 ms: at least 3.5x upstream's throughput",
            ours.concurrent_reads,
            upstream.concurrent_reads,
            3.5,
            latency_ms,
        ),
        _append_target(ours, upstream),
        _migration_target(ours),
    ]
    return [row for row in rows if row is not None]


def _statements_target(ours: TurnFigures, upstream: TurnFigures) -> TargetRow:
    ours_turn, up_turn = ours.per_turn(), upstream.per_turn()
    floor = ours.collection_calls.floor() / ours.turns
    ceiling = ours.collection_calls.ceiling() / ours.turns
    return TargetRow(
        "statements per turn at the floor (1 per collection call, 2 at most for update_one) "
        "and fewer than upstream",
        f"ours {ours_turn:.1f} (floor {floor:.1f}, allowance {ceiling:.1f}); "
        f"upstream {up_turn:.1f}",
        _verdict(ours_turn <= ceiling and ours_turn < up_turn),
    )


def _rate_target(
    label: str,
    mine_figures: Sequence[RateFigure],
    their_figures: Sequence[RateFigure],
    factor: float,
    latency_ms: float,
) -> TargetRow:
    """Ours at least ``factor`` times upstream's rate at C=8, L=80 ms."""
    mine, theirs = _rate(mine_figures, 8), _rate(their_figures, 8)
    if mine is None or theirs is None or latency_ms != 80:
        return TargetRow(label, "C=8 at L=80 ms not in this run", "not measured")
    return TargetRow(
        label,
        f"ours {mine:.2f}/s, upstream {theirs:.2f}/s: {_ratio(mine, theirs)}",
        _verdict(mine >= factor * theirs),
    )


def _single_turn_target(
    ours: AdapterResults, upstream: AdapterResults, latency_ms: float
) -> TargetRow | None:
    mine, theirs = _rate(ours.concurrent_turns, 1), _rate(upstream.concurrent_turns, 1)
    if mine is None or theirs is None:
        return None
    return TargetRow(
        f"per-turn time at C=1 (L={latency_ms:g} ms) no worse than upstream's",
        f"ours {1 / mine:.2f} s, upstream {1 / theirs:.2f} s per turn"
        if mine and theirs
        else "no turn completed",
        _verdict(mine >= theirs),
    )


def _append_target(ours: AdapterResults, upstream: AdapterResults) -> TargetRow | None:
    if len(ours.appends) < 2 or len(upstream.appends) < 2:
        return None
    mine_growth = ours.appends[-1].median / ours.appends[0].median
    their_growth = upstream.appends[-1].median / upstream.appends[0].median
    first, last = ours.appends[0].events, ours.appends[-1].events
    return TargetRow(
        f"event append flat within 20% from {first:,} to {last:,} events, where upstream grows",
        f"ours x{mine_growth:.2f}, upstream x{their_growth:.2f}",
        _verdict(mine_growth <= 1.2 and their_growth > 1.2),
    )


def _migration_target(ours: AdapterResults) -> TargetRow:
    label = "opening a store whose 10,000 documents need migration: at most 20 statements"
    largest = max(ours.migrations, key=lambda m: m.documents, default=None)
    if largest is None or largest.documents < 10_000:
        return TargetRow(label, "10,000 documents not in this run", "not measured")
    return TargetRow(
        label,
        f"ours {largest.statements} statements, {largest.seconds:.1f} s",
        _verdict(largest.statements <= 20 and largest.migrated == largest.documents),
    )


# --- Findings ------------------------------------------------------------------------------

_UPDATE_ONE_FINDING = (
    "Parlant's stores already ask for almost one statement per collection call even on "
    "upstream (a find_one is one SELECT, an insert one INSERT); the only statement an "
    "adapter can save in this turn is update_one's read-before-write, so 'fewer than "
    "upstream' is decided by update_one alone."
)


def findings(results: RunResults) -> list[str]:
    """Why the figures are what they are, computed from this run."""
    p = results.parameters
    turns = {n: a.turns for n, a in results.adapters.items() if a.turns is not None}
    notes = [
        *(_statements_finding(name, f) for name, f in turns.items()),
        _UPDATE_ONE_FINDING if len(turns) == 2 else None,
        *(_emulator_cost_finding(name, f) for name, f in turns.items()),
        *(_store_lock_finding(name, f, p) for name, f in turns.items()),
        _session_locks_finding(results),
        _reads_finding(results),
        _ours_migration_finding(results),
        _upstream_migration_finding(results),
        _sizing_finding(p) if all(a.turns is not None for a in results.adapters.values()) else None,
    ]
    return [note for note in notes if note is not None]


def _statements_finding(name: str, f: TurnFigures) -> str:
    calls = f.collection_calls.floor() / f.turns
    extra = f.per_turn() - calls
    updates = f.collection_calls.counts["update_one"] / f.turns
    how = (
        "exactly one per call"
        if abs(extra) < 0.05
        else f"{extra:.1f} more than one per call ({updates:.0f} update_one per turn)"
    )
    return (
        f"**{name}: {f.per_turn():.1f} statements per turn** for {calls:.1f} "
        f"DocumentCollection calls: {how}."
    )


def _emulator_cost_finding(name: str, f: TurnFigures) -> str | None:
    cost = f.emulator_ms_per_statement()
    if cost is None:
        return None
    return (
        f"**Emulator cost per statement ({name}, L=0): {cost:.0f} ms.** fakesnow runs in "
        "this process: every statement is parsed and rewritten by sqlglot in Python "
        "(under the GIL, on the benchmark's own 2 cores) before DuckDB runs it, so the "
        "cost grows with the size of the SQL text. It is added to every injected L and "
        "it caps concurrency, because all statements of all connections share one "
        "interpreter."
    )


def _store_lock_finding(name: str, f: TurnFigures, p: Parameters) -> str:
    locked = (
        sum(
            n
            for label, n in f.statements_by_call.items()
            if label.split(".", 1)[0] == "sessions" and label.split(".", 1)[1] in WRITER_LOCKED
        )
        / f.turns
    )
    latency = p.concurrency_latency_ms / 1000
    bound = f"{1 / (locked * latency):.2f}" if locked and latency else "unbounded"
    return (
        f"**Store lock ({name}): {locked:.0f} of {f.per_turn():.0f} statements per turn run "
        "inside SessionDocumentStore's writer lock** (create_event, update_session), which "
        "admits one writer and no reader at a time for the whole store. Whatever the "
        "adapter, concurrent turns in one process cannot exceed "
        f"1 / ({locked:.0f} x L) = {bound} turns/s at L = {p.concurrency_latency_ms:g} ms, "
        "before any emulator cost; more sessions only queue on that lock. Only fewer "
        "statements inside the lock (create_event's three: session check, latest offset, "
        "insert) could raise it."
    )


def _session_locks_finding(results: RunResults) -> str | None:
    ours = results.adapters.get(OURS)
    if ours is None or not ours.session_lock_turns:
        return None
    upstream = results.adapters.get(UPSTREAM)
    upstream_turns = upstream.concurrent_turns if upstream is not None else []
    figures = ", ".join(
        f"C={f.concurrency}: {f.per_second:.2f} turns/s "
        f"({_ratio(f.per_second, _rate(upstream_turns, f.concurrency))} upstream)"
        for f in ours.session_lock_turns
    )
    return (
        "**Per-session locks**: with parlant_router's ConcurrentSessionDocumentStore "
        "(Parlant's session store locking each session instead of the whole store) ours "
        f"runs {figures}; turns of different sessions then only share the adapter's pool "
        "and the emulator."
    )


def _reads_finding(results: RunResults) -> str | None:
    ours = results.adapters.get(OURS)
    if ours is None or not ours.concurrent_reads:
        return None
    return (
        "**Reads** take the store's reader lock, so they run in parallel up to the "
        f"adapter's connections (ours: {_pool_size(results.parameters)}; upstream: "
        "one connection behind one lock); beyond that, the emulator's CPU is the limit."
    )


def _ours_migration_finding(results: RunResults) -> str | None:
    ours = results.adapters.get(OURS)
    if ours is None or not ours.migrations:
        return None
    m = max(ours.migrations, key=lambda figure: figure.documents)
    return (
        f"**Migration (ours)**: {m.documents:,} documents in {m.statements} statements and "
        f"{m.seconds:.1f} s, of which {m.execute_seconds:.1f} s inside the emulator: a few "
        "large batched statements, each one tokenized and rewritten by fakesnow in Python. "
        "What this says about Snowflake is the number of round trips; fakesnow's parsing "
        "time is the emulator's own."
    )


def _upstream_migration_finding(results: RunResults) -> str | None:
    """Upstream's migration, measured on fewer documents than ours, extrapolated."""
    upstream = results.adapters.get(UPSTREAM)
    p = results.parameters
    if upstream is None or not upstream.migrations:
        return None
    m = upstream.migrations[-1]
    if m.documents >= p.migration_documents:
        return None
    return (
        f"**Upstream's migration was measured at {m.documents:,} documents**, not "
        f"{p.migration_documents:,}: it writes one UPDATE per migrated document "
        f"({m.statements:,} statements, {m.seconds:.0f} s here), so "
        f"{p.migration_documents:,} documents would take about "
        f"{m.seconds * p.migration_documents / m.documents:.0f} s and "
        f"{m.statements - m.documents + p.migration_documents:,} statements "
        "(linear extrapolation, not measured)."
    )


def _sizing_finding(p: Parameters) -> str:
    return (
        f"**Sizing**: to keep the adapters' workloads of `make bench` short on 2 cores, turns are replayed "
        f"{p.sessions} x {p.turns} below L = {p.high_latency_ms:g} ms and {p.sessions} x "
        f"{p.high_latency_turns} at and above it; concurrency runs for fixed windows "
        f"({p.turn_window_seconds:g} s of turns, {p.read_window_seconds:g} s of reads) at "
        f"L = {p.concurrency_latency_ms:g} ms only; appends are timed {p.appends} times per "
        "size; the large sessions and migrating documents are written in bulk SQL rather "
        "than through the stores."
    )


# --- The report ----------------------------------------------------------------------------


def render(
    results: RunResults | None,
    *,
    command: str,
    server_turns: ServerTurnsResults | None = None,
    replicas: ReplicasResults | None = None,
    growth: GrowthResults | None = None,
    vectors: VectorResults | None = None,
    copy: CopyResults | None = None,
) -> str:
    """The whole report: the adapters' run, the server-turns run, the replicas run, the
    growing stores' run, the vector stores' run (one at least). A partial adapters' run
    (``--only migration``) has the sections of what it measured."""
    tail = [
        server_turns_section(server_turns) if server_turns is not None else [],
        replicas_section(replicas, command) if replicas is not None else [],
        growth_section(growth, command) if growth is not None else [],
        vectors_section(vectors, command) if vectors is not None else [],
        copy_section(copy, command) if copy is not None else [],
    ]
    if results is None:
        if server_turns is not None:
            title = _server_turns_title(server_turns, command)
        elif replicas is not None:
            title = _replicas_title(replicas, command)
        elif growth is not None:
            title = _growth_title(growth, command)
        elif vectors is not None:
            title = _vectors_title(vectors, command)
        else:
            assert copy is not None, "nothing to report"
            title = _copy_title(copy, command)
        sections = [title, _section("Machine", _table(["", ""], machine())), *tail]
        return "\n".join(line for section in sections for line in section)
    names = _names(results)
    both = len(names) == 2
    turns = all(results.adapters[n].turns is not None for n in names)

    def measured(workload: Callable[[AdapterResults], Sequence[object]]) -> bool:
        return any(workload(results.adapters[n]) for n in names)

    sections = [
        _title(results, command, names),
        _section("Machine", _table(["", ""], machine())),
        _method_section(results, whole=turns),
        _parameters_section(results.parameters, whole=turns),
        _targets_section(results) if both and turns else [],
        _statements_section(results, names) if turns else [],
        _time_section(results, names) if turns else [],
        _concurrent_turns_section(results, names) if measured(lambda a: a.concurrent_turns) else [],
        _concurrent_reads_section(results, names) if measured(lambda a: a.concurrent_reads) else [],
        _append_section(results, names) if measured(lambda a: a.appends) else [],
        _migration_section(results, names) if measured(lambda a: a.migrations) else [],
        _connections_section(results) if both else [],
        _section("Why", [f"- {note}" for note in findings(results)]),
        *tail,
    ]
    return "\n".join(line for section in sections for line in section)


def _title(results: RunResults, command: str, names: Sequence[str]) -> list[str]:
    return _blocks(
        "# Benchmarks: our SnowflakeDocumentDatabase against Parlant's upstream adapter",
        f"Generated by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{results.seconds:.0f} s. Adapters measured: {', '.join(names)}.",
        "Both adapters run in one process against one Snowflake emulator "
        "(`parlant_router.snowflake.SnowflakeEmulator`: fakesnow's HTTP server on a loopback "
        "port) through the real `snowflake-connector-python`, underneath Parlant's own "
        "`SessionDocumentStore`, `CustomerDocumentStore` and `ContextVariableDocumentStore`, "
        "each store on its own database and table prefix as in the seed's "
        "`configure_container`. Every workload has its own tables.",
    )


def _method_section(results: RunResults, *, whole: bool = True) -> list[str]:
    """The method of every workload, or (``whole=False``, a ``--only migration`` run) of the
    migration's alone."""
    provenance = results.sequence.provenance
    migration = (
        "- **Migration**: sessions and the store's metadata are written at version 0.8.0, "
        "so that opening `SessionDocumentStore(allow_migration=True)` runs Parlant's "
        "loader, which migrates every session to 0.9.0 (checked afterwards by counting "
        "rows at 0.9.0); L=0. Statements are counted by the connection "
        "(`bench/latency.py`)."
    )
    pool = (
        f"- **Our pool size**: {_pool_size(results.parameters)}. Upstream has one "
        "connection behind one lock."
    )
    if not whole:
        return _section("Method", [migration, pool])
    return _section(
        "Method",
        [
            f"- **The turn** is replayed from `bench/turn_sequence.json`, recorded from a real "
            f"Parlant engine turn (`{provenance.get('command', '')}`, "
            f"{provenance.get('recorded_utc', '')}, NLP service "
            f"`{provenance.get('nlp_service', '')}`): {provenance.get('scenario', '')}. "
            f"It is {len(results.sequence.turn)} store calls: {_turn_summary(results)}. Only "
            "the three stores the seed puts on Snowflake are recorded and replayed; the "
            "engine's reads of agents, guidelines, journeys and the like stay in memory there "
            "and are not part of the workload.",
            "- **Latency L** is added to every statement by the connection itself "
            "(`bench/latency.py`): the connector's `cursor().execute` sleeps L ms in the "
            "executing thread before sending, as a round trip to Snowflake holds the "
            "connection. The emulator's own cost per statement comes on top.",
            "- **Statements** are counted at the same place, per adapter and per store call.",
            "- **Concurrency C**: C sessions, each running whole recorded turns back to back "
            "(or listing its events and reading itself, for reads) for a fixed window; work is "
            "counted call by call and calls finishing after the window do not count.",
            "- **Appends**: a session is filled with events written in bulk in the adapters' "
            "table layout, then `create_event` is timed at each size (median, L=0).",
            migration,
            pool,
            "- **Checks**: `tests/bench` runs this machinery at tiny sizes for both adapters "
            "and checks, among others, that the meter sees upstream's per-call statements "
            "exactly as issue 5 measured them (create_event 3, list_events 2, read_session 1, "
            "update_session 3).",
        ],
    )


def _turn_summary(results: RunResults) -> str:
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for call in results.sequence.turn:
        counts[call.label()] += 1
        if call.method == "create_event":
            kind = call.args.get("kind", {})
            kinds[str(kind.get("value")) if isinstance(kind, dict) else "?"] += 1
    events = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    calls = ", ".join(f"`{label}` x{n}" for label, n in counts.items())
    return f"{calls} (the events created: {events})"


def _parameters_section(p: Parameters, *, whole: bool = True) -> list[str]:
    """The sizes of every workload, or (``whole=False``) of the migration's alone."""
    rows = [
        ("N sessions x T turns (sequential)", f"{p.sessions} x {p.turns}"),
        (f"turns per session at L >= {p.high_latency_ms:g} ms", str(p.high_latency_turns)),
        ("L (ms per statement)", ", ".join(f"{v:g}" for v in p.latencies_ms)),
        ("C (concurrent sessions)", ", ".join(str(c) for c in p.concurrency)),
        ("L for concurrency", f"{p.concurrency_latency_ms:g} ms"),
        ("windows (turns / reads)", f"{p.turn_window_seconds:g} s / {p.read_window_seconds:g} s"),
        ("append sizes (events)", ", ".join(f"{s:,}" for s in p.append_sizes)),
        ("appends timed per size", str(p.appends)),
        ("migrating documents (ours)", f"{p.migration_documents:,}"),
        ("migrating documents (upstream)", f"{p.upstream_migration_documents:,}"),
    ]
    return _section("Parameters", _table(["parameter", "value"], rows if whole else rows[-2:]))


def _targets_section(results: RunResults) -> list[str]:
    rows = [(t.target, t.measured, f"**{t.verdict}**") for t in targets(results)]
    return _section("Targets (from issue 5)", _table(["target", "measured", "verdict"], rows))


# Rows under the store calls of "Statements per turn": a label and each adapter's cell.
_PER_TURN_ROWS: tuple[tuple[str, Callable[[TurnFigures], str]], ...] = (
    ("**per turn**", lambda f: f"**{f.per_turn():.1f}**"),
    (
        "collection calls per turn (the floor)",
        lambda f: f"{f.collection_calls.floor() / f.turns:.1f}",
    ),
    (
        "emulator ms per statement (L=0)",
        lambda f: _fmt(f.emulator_ms_per_statement(), "{:.0f}"),
    ),
)


def _statements_section(results: RunResults, names: Sequence[str]) -> list[str]:
    figures = _turn_figures(results, names).values()
    labels = dict.fromkeys(call.label() for call in results.sequence.turn)
    rows = [
        [
            f"`{label}`",
            *(_statements_per_call(f, label) for f in figures),
            *(_fmt(f.ms_per_call_at_zero(label), "{:.0f}") for f in figures),
        ]
        for label in labels
    ]
    blank = ["" for _ in names]
    rows += [[label, *(cell(f) for f in figures), *blank] for label, cell in _PER_TURN_ROWS]
    header = [
        "store call",
        *[f"{n} statements/call" for n in names],
        *[f"{n} ms/call (L=0)" for n in names],
    ]
    return _section(
        "Statements per turn",
        "Statements sent per store call of the recorded turn (averaged over every replayed "
        "turn) and the call's mean time at L=0, then per turn. The floor is one statement per "
        "DocumentCollection call the stores make.",
        _table(header, rows),
    )


def _statements_per_call(f: TurnFigures, label: str) -> str:
    calls = f.calls_by_label[label]
    return f"{f.statements_by_call[label] / calls:.2f}" if calls else "-"


def _time_section(results: RunResults, names: Sequence[str]) -> list[str]:
    p = results.parameters
    figures = _turn_figures(results, names)
    rows: list[list[str]] = []
    for latency in p.latencies_ms:
        means = {n: f.mean_seconds(latency) for n, f in figures.items()}
        rows.append(
            [
                f"{latency:g} ms",
                str(p.turns_at(latency) * p.sessions),
                *(f"{mean:.2f} s" for mean in means.values()),
                *_upstream_over_ours(means),
            ]
        )
    header = ["L", "turns", *names] + (["upstream / ours"] if len(names) == 2 else [])
    return _section(
        "Time per turn",
        f"Mean wall time of one recorded turn, {p.sessions} session(s) replayed one after "
        "the other.",
        _table(header, rows),
    )


def _concurrent_turns_section(results: RunResults, names: Sequence[str]) -> list[str]:
    p = results.parameters
    ours = results.adapters.get(OURS)
    return _rate_section(
        "Concurrent turns",
        "Turns per second, C sessions each running whole turns, "
        f"L = {p.concurrency_latency_ms:g} ms.",
        "turns/s",
        {n: results.adapters[n].concurrent_turns for n in names},
        p,
        ours.session_lock_turns if ours is not None else (),
    )


def _concurrent_reads_section(results: RunResults, names: Sequence[str]) -> list[str]:
    p = results.parameters
    return _rate_section(
        "Concurrent reads",
        "Read pairs per second (list_events + read_session of its own session), C sessions, "
        f"L = {p.concurrency_latency_ms:g} ms.",
        "reads/s",
        {n: results.adapters[n].concurrent_reads for n in names},
        p,
    )


_SESSION_LOCKS_NOTE = (
    "The last columns run ours under `parlant_router.stores.session_store."
    "ConcurrentSessionDocumentStore` (Parlant's session store with one lock per "
    "session instead of one per store; C > 1 only): the session store `parlant-router "
    "run` builds. The C = 8 target is judged both ways: on Parlant's own "
    "`SessionDocumentStore` for both adapters, and with this store for ours."
)


def _rate_section(
    title: str,
    caption: str,
    unit: str,
    figures: dict[str, list[RateFigure]],
    p: Parameters,
    session_locks: Sequence[RateFigure] = (),
) -> list[str]:
    """Rates at each C, with ours under per-session locks in the last columns if given."""
    names = list(figures)
    both = len(names) == 2
    rows: list[list[str]] = []
    for concurrency in p.concurrency:
        rates = {n: _rate(figures[n], concurrency) for n in names}
        row = [str(concurrency), *(_fmt(rates[n]) for n in names)]
        if both:
            row.append(_ratio(rates[OURS], rates[UPSTREAM]))
        if session_locks:
            locked = _rate(session_locks, concurrency)
            row.append(_fmt(locked))
            if UPSTREAM in rates:
                row.append(_ratio(locked, rates[UPSTREAM]))
        rows.append(row)
    header = ["C", *[f"{n} {unit}" for n in names]] + (["ours / upstream"] if both else [])
    if session_locks:
        header.append(f"ours, per-session locks {unit}")
        if UPSTREAM in names:
            header.append("that / upstream")
    notes = [_SESSION_LOCKS_NOTE] if session_locks else []
    return _section(title, caption, *notes, _table(header, rows))


def _append_section(results: RunResults, names: Sequence[str]) -> list[str]:
    rows: list[list[str]] = []
    for index, size in enumerate(results.parameters.append_sizes):
        figures = {n: results.adapters[n].appends[index] for n in names}
        rows.append(
            [
                f"{size:,}",
                *(
                    f"{f.median * 1000:.0f} ms (min {min(f.seconds) * 1000:.0f}; "
                    f"{f.statements / len(f.seconds):.0f} stmts)"
                    for f in figures.values()
                ),
                *_upstream_over_ours({n: f.median for n, f in figures.items()}),
            ]
        )
    header = ["events in session", *names] + (["upstream / ours"] if len(names) == 2 else [])
    return _section(
        "Event append",
        "Median `create_event` time (the fastest, and statements per append) with that many "
        "events already in the session, L = 0. The targets are judged on the median.",
        _table(header, rows),
    )


def _migration_section(results: RunResults, names: Sequence[str]) -> list[str]:
    rows = [
        [
            n,
            f"{m.documents:,}",
            str(m.statements),
            f"{m.seconds:.1f} s",
            f"{m.execute_seconds:.1f} s",
            "yes" if m.migrated == m.documents else f"no ({m.migrated:,})",
        ]
        for n in names
        for m in results.adapters[n].migrations
    ]
    header = [
        "adapter",
        "documents",
        "statements",
        "time",
        "of which in the emulator",
        "all migrated",
    ]
    return _section(
        "Opening a store that needs migration",
        "`SessionDocumentStore` opened over sessions written at version 0.8.0, L = 0: "
        "statements sent and seconds until the store is open.",
        _table(header, rows),
    )


def _connections_section(results: RunResults) -> list[str]:
    upstream, ours = results.adapters[UPSTREAM], results.adapters[OURS]
    return _section(
        "Connections",
        f"Connections opened during the run: upstream {upstream.connections}, ours "
        f"{ours.connections}.",
    )


# --- Server turns (bench/server_turns.py) ----------------------------------------------------

STORE_TIME_LATENCY_MS = 80.0
"""The L at which the store time per turn is judged (Snowflake's round trip)."""
_TURN_STATEMENTS_TARGET = 12
_STORE_TIME_FACTOR = 0.2
_REPLY_LATENCY_TARGET_SECONDS = 0.050
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE")
_SHAPE_WIDTH = 110


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _secs(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def _bound(size: int) -> str:
    return f"{size / 2**20:g} MiB"


def _cell(text: str) -> str:
    """``text`` made safe for a markdown table cell."""
    return text.replace("|", "\\|")


def _shape(shape: str) -> str:
    short = shape if len(shape) <= _SHAPE_WIDTH else shape[: _SHAPE_WIDTH - 3] + "..."
    return f"`{_cell(short)}`"


def _is_write(shape: str) -> bool:
    return shape.removeprefix("[describe] ").lstrip("( ").upper().startswith(_WRITE_VERBS)


def _is_insert(shape: str) -> bool:
    return shape.removeprefix("[describe] ").lstrip("( ").upper().startswith("INSERT")


def _per_latency(figures: ConfigurationFigures | None) -> str:
    """Mean statements per measured turn at each latency, e.g. ``9.0 at L=0 ms``."""
    if figures is None or not figures.measured():
        return "not measured"
    return ", ".join(
        f"{figures.mean_statements(latency):.1f} at L={latency:g} ms"
        for latency in figures.latencies()
    )


def server_turns_targets(results: ServerTurnsResults) -> list[TargetRow]:
    """The read-cache issue's targets, judged on this server-turns run."""
    on = results.configuration(CACHE_NOTIFY.name)
    off = results.configuration(OFF.name)
    return [
        _completion_target(results),
        _turn_statements_target(on, off),
        _store_time_target(on, off),
        _idle_target(on, off),
        _reply_latency_target(on, off),
        *_memory_targets(results.memory),
    ]


def _completion_target(results: ServerTurnsResults) -> TargetRow:
    """The precondition of every other row: the servers did what was asked of them."""
    problems: list[str] = []
    for name, figures in results.configurations.items():
        problems += [f"{name} failed: {_cell(failure)}" for failure in figures.failures]
        if figures.error_lines:
            problems.append(f"{name}: {len(figures.error_lines)} error line(s) in its log")
        if figures.exit_status not in (0, None):
            problems.append(f"{name}: exit status {figures.exit_status} after SIGTERM")
    return TargetRow(
        "(precondition) every turn completes, and no server logs an error",
        "; ".join(problems) or "every turn completed; no error line in the server logs",
        _verdict(not problems),
    )


def _turn_statements_target(
    on: ConfigurationFigures | None, off: ConfigurationFigures | None
) -> TargetRow:
    label = (
        f"statements per turn with the cache on, after a warm-up turn: at most "
        f"{_TURN_STATEMENTS_TARGET} (the cache off beside)"
    )
    if on is None or not on.measured():
        return TargetRow(label, "cache+notify not measured", "not measured")
    worst = max(m for lat in on.latencies() if (m := on.mean_statements(lat)) is not None)
    return TargetRow(
        label,
        f"cache+notify {_per_latency(on)}; off {_per_latency(off)}",
        _verdict(worst <= _TURN_STATEMENTS_TARGET),
    )


def _store_time_target(
    on: ConfigurationFigures | None, off: ConfigurationFigures | None
) -> TargetRow:
    latency = STORE_TIME_LATENCY_MS
    label = (
        f"store time per turn at L={latency:g} ms (statements x {latency:g} ms): at most "
        f"{_STORE_TIME_FACTOR:g}x the cache off's"
    )
    mine = on.mean_statements(latency) if on is not None else None
    theirs = off.mean_statements(latency) if off is not None else None
    if on is None or off is None or mine is None or theirs is None:
        return TargetRow(label, f"L={latency:g} ms not in this run for both", "not measured")
    mine_s, theirs_s = mine * latency / 1000, theirs * latency / 1000
    return TargetRow(
        label,
        f"cache+notify {mine_s:.2f} s, off {theirs_s:.2f} s: {_ratio(mine_s, theirs_s)}; "
        f"measured turn time (posting to `ready`) {_secs(on.mean_ready_seconds(latency))} "
        f"vs {_secs(off.mean_ready_seconds(latency))}",
        _verdict(theirs_s > 0 and mine_s <= _STORE_TIME_FACTOR * theirs_s),
    )


def _idle_target(on: ConfigurationFigures | None, off: ConfigurationFigures | None) -> TargetRow:
    if on is None or on.idle is None:
        return TargetRow(
            "no statements while clients wait on idle sessions", "not measured", "not measured"
        )
    idle = on.idle
    theirs = (
        f"off {off.idle.counts.total:,} ({off.idle.per_second:.1f}/s)"
        if off is not None and off.idle is not None
        else "off not measured"
    )
    return TargetRow(
        f"no statements while {idle.clients} clients wait on idle sessions (the cache off beside)",
        f"cache+notify {idle.counts.total:,} in {idle.seconds:.0f} s; {theirs}",
        _verdict(idle.counts.total == 0),
    )


def _latency_summary(figures: ConfigurationFigures, latency: float) -> str:
    values = figures.reply_latencies(latency)
    return (
        f"p50 {_ms(percentile(values, 0.5))} (max {_ms(max(values, default=None))}) "
        f"at L={latency:g} ms"
    )


def _reply_latency_target(
    on: ConfigurationFigures | None, off: ConfigurationFigures | None
) -> TargetRow:
    if on is None or not on.measured():
        return TargetRow("reply latency p50 at most 50 ms", "not measured", "not measured")
    lowest = min(on.latencies())
    p50 = percentile(on.reply_latencies(lowest), 0.5)
    assert p50 is not None
    measured = "; ".join(_latency_summary(on, lat) for lat in on.latencies())
    if off is not None and off.measured():
        measured += "; off " + "; ".join(_latency_summary(off, lat) for lat in off.latencies())
    return TargetRow(
        f"reply latency p50 at most {_REPLY_LATENCY_TARGET_SECONDS * 1000:.0f} ms (the agent "
        f"message's `creation_utc` to the waiting client holding it), judged at L={lowest:g} ms",
        f"cache+notify {measured}",
        _verdict(p50 <= _REPLY_LATENCY_TARGET_SECONDS),
    )


def _memory_targets(memory: Sequence[MemoryFigure]) -> list[TargetRow]:
    label = "read cache memory within its bound"
    if not memory:
        return [TargetRow(label, "not measured", "not measured")]
    accounted = "; ".join(
        f"{_bound(m.max_bytes)}: {_mib(m.used_bytes)} kept, {m.evictions:,} evictions"
        for m in memory
    )
    held = "; ".join(
        f"{_bound(m.max_bytes)}: {_mib(m.retained_bytes)} retained "
        f"({m.retained_bytes / m.max_bytes:.1f}x the bound), peak {_mib(m.peak_bytes)}"
        for m in memory
    )
    return [
        TargetRow(
            f"{label}, as the cache accounts it (`budget.used`)",
            accounted,
            _verdict(all(m.used_bytes <= m.max_bytes for m in memory)),
        ),
        TargetRow(
            f"{label}, as process memory (tracemalloc: what reading every partition left "
            "allocated)",
            held,
            _verdict(all(m.retained_bytes <= m.max_bytes for m in memory)),
        ),
    ]


def server_turns_findings(results: ServerTurnsResults) -> list[str]:
    """Why the server-turns figures are what they are, computed from this run."""
    on = results.configuration(CACHE_NOTIFY.name)
    off = results.configuration(OFF.name)
    notes = [
        *(_failure_finding(f) for f in results.configurations.values()),
        _remaining_statements_finding(on) if on is not None else None,
        _off_statements_finding(off) if off is not None else None,
        _idle_finding(off) if off is not None else None,
        _reply_latency_finding(on, off),
        _turn_time_finding(on),
        _memory_finding(results.memory),
        *(_quiet_finding(f) for f in results.configurations.values()),
        _server_errors_finding(results),
    ]
    return [note for note in notes if note is not None]


def _failure_finding(figures: ConfigurationFigures) -> str | None:
    if not figures.failures:
        return None
    return (
        f"**{figures.configuration.name} failed** ({'; '.join(map(_cell, figures.failures))})"
        ". Its figures are those of the turns that completed; a step that failed does not "
        "stop the next one, which has sessions of its own."
    )


def _remaining_statements_finding(on: ConfigurationFigures) -> str | None:
    if not on.measured():
        return None
    latency = min(on.latencies())
    shapes = on.mean_by_shape(latency)
    writes = sum(n for (_, shape), n in shapes.items() if _is_write(shape))
    reads = {key: n for key, n in shapes.items() if not _is_write(key[1])}
    total = sum(shapes.values())
    read_list = "; ".join(
        f"{n:.1f} x {_shape(shape)} ({store})"
        for (store, shape), n in sorted(reads.items(), key=lambda item: -item[1])
    )
    inserts = ", ".join(
        str(sum(n for (_, shape), n in turn.counts.by_shape.items() if _is_insert(shape)))
        for turn in on.measured(latency)
    )
    return (
        f"**What is left with the cache on ({total:.1f} statements per turn at "
        f"L={latency:g} ms)**: {writes:.1f} writes, which a write-through cache cannot save "
        f"(one INSERT per event the turn creates: {inserts} in the measured turns, as many "
        "as the events Parlant's engine wrote; and the session's UPDATE), and "
        f"{sum(reads.values()):.1f} reads" + (f": {read_list}." if read_list else ".")
    )


def _off_statements_finding(off: ConfigurationFigures) -> str | None:
    if not off.measured():
        return None
    latency = min(off.latencies())
    shapes = sorted(off.mean_by_shape(latency).items(), key=lambda item: -item[1])
    total = sum(n for _, n in shapes)
    top = "; ".join(f"{n:.1f} x {_shape(shape)} ({store})" for (store, shape), n in shapes[:3])
    return (
        f"**With the cache off ({total:.1f} statements per turn at L={latency:g} ms)** the "
        f"most frequent statements are {top}. The session row and its events are read by "
        "almost every store call of the turn, and again by the waiting client's polling "
        "listener (`read_session`, then `list_events` every 0.25 s); the agent, its tags and "
        "the configuration collections are read again at every step of the engine."
    )


def _idle_finding(off: ConfigurationFigures) -> str | None:
    idle = off.idle
    if idle is None or not idle.counts.total:
        return None
    busy = idle.counts.emulator_seconds / idle.seconds if idle.seconds else 0.0
    saturated = (
        f" The emulator was busy {busy:.0%} of the window answering them (one thread in the "
        "bench process): it is close to its limit, so this is a lower bound of what polling "
        "asks of a warehouse."
        if busy >= 0.7
        else f" The emulator was busy {busy:.0%} of the window: not its limit."
    )
    shapes = sorted(idle.counts.by_shape.items(), key=lambda item: -item[1])
    kinds = "; ".join(f"{n / idle.seconds:.1f}/s {_shape(shape)}" for (_, shape), n in shapes[:2])
    return (
        f"**Waiting with the cache off**: {idle.per_second:.1f} statements/s for "
        f"{idle.clients} waiting clients, {idle.per_second / idle.clients:.1f}/s each ({kinds})"
        f": Parlant's polling listener reads the session's events every 0.25 s per waiting "
        f"client.{saturated} With `notify`, a waiting client is woken by the server's own "
        "writes, and a re-issued long poll is answered from the cache."
    )


def _reply_latency_finding(
    on: ConfigurationFigures | None, off: ConfigurationFigures | None
) -> str | None:
    if on is None or not on.measured():
        return None
    cost = _emulator_per_statement(on) or 0.0
    parts = [
        "**Reply latency**: with `notify` the waiting client is woken by the server's own "
        "write of the message. The server stamps `creation_utc` before its INSERT, so one "
        f"round trip (L plus the emulator's ~{_ms(cost)}) is the floor."
    ]
    explained = False
    for latency in on.latencies():
        p50 = percentile(on.reply_latencies(latency), 0.5)
        if p50 is None:
            continue
        trips = p50 / (latency / 1000 + cost) if latency or cost else 0.0
        text = f"At L={latency:g} ms the p50 is {_ms(p50)}: {trips:.1f} round trips"
        if trips >= 1.5 and not explained:
            explained = True
            text += (
                ". The woken client's re-check (`list_events`, answered from the cache "
                "without a statement) takes the session's reader lock, and the session "
                "store's `aiorwlock.RWLock` serves queued writers first: it waits until the "
                "engine's back-to-back `create_event`s of typing, message and ready (each "
                "holding the session's writer lock for its INSERT's round trip) are done, and "
                "the client then holds all three at once"
            )
        parts.append(text + ".")
    if off is not None and off.measured():
        parts.append(
            "With `poll` it is the listener's 0.25 s period plus the poll's own statements "
            f"({'; '.join(_latency_summary(off, lat) for lat in off.latencies())})."
        )
    return " ".join(parts)


def _turn_time_finding(on: ConfigurationFigures | None) -> str | None:
    if on is None or not on.measured():
        return None
    lowest = min(on.latencies())
    return (
        f"**Turn time at L={lowest:g} ms is Parlant's engine**: "
        f"{_secs(on.mean_ready_seconds(lowest))} from posting to `ready` for "
        f"{on.mean_statements(lowest):.1f} statements of ~"
        f"{_ms(_emulator_per_statement(on))} each in the emulator; the offline NLP service "
        "answers at once, so the rest is the engine's own pipeline. What L costs a turn is "
        "the difference between the latency columns."
    )


def _emulator_per_statement(figures: ConfigurationFigures) -> float | None:
    turns = figures.measured()
    statements = sum(t.counts.total for t in turns)
    seconds = sum(t.counts.emulator_seconds for t in turns)
    return seconds / statements if statements else None


def _memory_finding(memory: Sequence[MemoryFigure]) -> str | None:
    if not memory:
        return None
    largest = max(memory, key=lambda m: m.used_bytes)
    if not largest.used_bytes:
        return None
    factor = largest.retained_bytes / largest.used_bytes
    return (
        "**Cache memory**: documents are kept as their JSON text and charged its memory plus "
        f"their share of the cache's indexes ({_mib(largest.used_bytes)} charged under the "
        f"{_bound(largest.max_bytes)} bound for {_mib(largest.json_bytes)} of JSON); what "
        f"reading every partition left allocated is {factor:.2f}x the charge "
        f"({_mib(largest.retained_bytes)}), so the bound holds for process memory too."
    )


def _quiet_finding(figures: ConfigurationFigures) -> str | None:
    loud = [t for t in figures.turns if not t.quiet]
    if not loud:
        return None
    return (
        f"**{figures.configuration.name}: {len(loud)} turn(s) never went quiet** (statements "
        "kept arriving): those turns are counted up to the quiet wait's timeout."
    )


def _server_errors_finding(results: ServerTurnsResults) -> str:
    lines = {n: f.error_lines for n, f in results.configurations.items() if f.error_lines}
    if not lines:
        statuses = ", ".join(f"{n} {f.exit_status}" for n, f in results.configurations.items())
        return f"**Server logs**: no error line in either server's log (exit status: {statuses})."
    return "**Server errors**: " + "; ".join(
        f"{name}: {len(found)} error line(s), first: `{_cell(found[0][:200])}`"
        for name, found in lines.items()
    )


def _server_turns_parameters(p: Parameters) -> list[str]:
    return [
        f"- **Sizes**: per configuration and latency, {p.server_warmup_turns} warm-up + "
        f"{p.server_turns} measured turn(s) on a fresh session; L = "
        f"{', '.join(f'{v:g}' for v in p.server_latencies_ms)} ms; a turn ends after "
        f"{p.quiet_seconds:g} s without a statement; {p.idle_clients} idle clients for "
        f"{p.idle_window_seconds:g} s (`wait_for_data={p.idle_wait_seconds}`, L = 0); cache "
        f"memory over {p.memory_sessions:,} sessions x {p.memory_events} events, bounds "
        f"{', '.join(_bound(b) for b in p.memory_bounds_bytes)}.",
    ]


def _server_stores(results: ServerTurnsResults) -> list[str]:
    """Every store a measured turn touched, the busiest (over all configurations) first."""
    totals: Counter[str] = Counter()
    for figures in results.configurations.values():
        for turn in figures.measured():
            totals.update(turn.counts.by_store)
    return [store for store, _ in totals.most_common()]


def _configuration_table(figures: ConfigurationFigures, stores: Sequence[str]) -> list[str]:
    latencies = figures.latencies()
    # Only the stores this configuration's turns sent statements to, busiest first.
    stores = [s for s in stores if any(figures.mean_by_store(lat).get(s) for lat in latencies)]

    def statements(latency: float) -> str:
        counts = figures.statements(latency)
        if not counts:
            return "-"
        return f"**{statistics.fmean(counts):.1f}** (min {min(counts)}, max {max(counts)})"

    def store_time(latency: float) -> str:
        mean = figures.mean_statements(latency)
        return _secs(mean * latency / 1000) if mean is not None and latency else "-"

    def latency_cell(latency: float) -> str:
        values = figures.reply_latencies(latency)
        return f"{_ms(percentile(values, 0.5))} / {_ms(max(values, default=None))}"

    rows = [
        ["statements per turn: mean (min, max)", *map(statements, latencies)],
        *(
            [
                f"of which `{store}`",
                *(f"{figures.mean_by_store(lat).get(store, 0):.1f}" for lat in latencies),
            ]
            for store in stores
        ),
        ["store time per turn (statements x L)", *map(store_time, latencies)],
        [
            "turn time, posting to `ready` (mean)",
            *(_secs(figures.mean_ready_seconds(lat)) for lat in latencies),
        ],
        [
            "posting to holding the agent's message (mean)",
            *(_secs(figures.mean_reply_seconds(lat)) for lat in latencies),
        ],
        ["reply latency p50 / max", *map(latency_cell, latencies)],
    ]
    return _table(["", *(f"L={lat:g} ms" for lat in latencies)], rows)


def _configuration_notes(figures: ConfigurationFigures) -> str:
    warm = (
        ", ".join(f"{t.counts.total} (L={t.latency_ms:g} ms)" for t in figures.turns if t.warm_up)
        or "-"
    )
    idle = figures.idle
    idle_text = (
        f"{idle.clients} clients waiting {idle.seconds:.0f} s: **{idle.counts.total:,} "
        f"statements** ({idle.per_second:.1f}/s; {idle.polls} long polls answered by 504)"
        if idle is not None
        else "not measured"
    )
    failed = "".join(f"**Failed**: {_cell(failure)}. " for failure in figures.failures)
    return failed + (
        f"Warm-up turns: {warm} statements. Server start: {figures.startup_seconds:.1f} s, "
        f"{figures.startup_statements} statements. Idle: {idle_text}."
    )


def _shapes_table(counts: Mapping[tuple[str, str], float], unit: str, limit: int) -> list[str]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    rows = [[f"{n:.1f}", store, _shape(shape)] for (store, shape), n in ordered[:limit]]
    rest = ordered[limit:]
    if rest:
        rows.append([f"{sum(n for _, n in rest):.1f}", "", f"{len(rest)} other kinds"])
    return _table([unit, "store", "statement (literals as ?, numbers as N)"], rows)


def _shapes_blocks(results: ServerTurnsResults) -> list[str | Sequence[str]]:
    blocks: list[str | Sequence[str]] = []
    for figures in results.configurations.values():
        if not figures.measured():
            continue
        latency = min(figures.latencies())
        blocks += [
            f"**{figures.configuration.name}**, per measured turn at L={latency:g} ms:",
            _shapes_table(figures.mean_by_shape(latency), "per turn", 12),
        ]
        idle = figures.idle
        if idle is not None and idle.counts.total and idle.seconds:
            per_second = {k: n / idle.seconds for k, n in idle.counts.by_shape.items()}
            blocks += [
                f"**{figures.configuration.name}**, while {idle.clients} clients wait:",
                _shapes_table(per_second, "per second", 6),
            ]
    return blocks


def _memory_table(memory: Sequence[MemoryFigure]) -> list[str]:
    rows = [
        [
            _bound(m.max_bytes),
            f"{m.sessions:,} x {m.events_per_session}",
            _mib(m.json_bytes),
            _mib(m.used_bytes),
            f"{m.evictions:,}",
            _mib(m.retained_bytes),
            _mib(m.peak_bytes),
            f"{m.retained_bytes / m.used_bytes:.1f}x" if m.used_bytes else "-",
        ]
        for m in memory
    ]
    header = [
        "bound",
        "sessions x events",
        "JSON size of all",
        "kept (`budget.used`)",
        "evictions",
        "retained (tracemalloc)",
        "peak (tracemalloc)",
        "retained / kept",
    ]
    return _table(header, rows)


def server_turns_section(results: ServerTurnsResults) -> list[str]:
    """The report's section on whole turns through real servers (bench/server_turns.py)."""
    p = results.parameters
    stores = _server_stores(results)
    target_rows = [
        (t.target, t.measured, f"**{t.verdict}**") for t in server_turns_targets(results)
    ]
    lines = _section(
        "Whole turns through real servers",
        f"`bench/server_turns.py` ({results.seconds:.0f} s): `parlant-router run -c "
        "parlant.yaml` processes, every store on the `warehouse` Snowflake backend, driven by "
        "Parlant's official client (`parlant-client`) as a chat front end drives them.",
        [
            "- **One emulator, counted at its door**: the bench starts one `SnowflakeEmulator` "
            "with `wrap_app=`, an ASGI middleware around fakesnow's app that counts every "
            "`POST /queries/v1/query-request`, files it under the store whose "
            "`PARLANT_<STORE>_` table its SQL names, and sleeps L ms before fakesnow runs it "
            "(Snowflake's round trip). What it counts is what a warehouse would see.",
            "- **Servers**: `--set backends.warehouse.emulator=null` and the emulator's "
            "address (account, user, a dummy password from `${BENCH_PASSWORD}`, "
            "host, port, `protocol=http`, warehouse, database, schema, "
            "`session_parameters.CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED=false`), checked with "
            "`parlant-router routes` first; one server at a time, on the same tables. "
            f"**{CACHE_NOTIFY.name}**: {CACHE_NOTIFY.description}. **{OFF.name}**: "
            f"{OFF.description}.",
            "- **A turn**: the client posts a customer message, then long-polls `list_events` "
            "(`wait_for_data`, re-issued on 504) until the agent's message and the `ready` "
            "status after it arrive; the turn's statements are those from posting until "
            f"none has arrived for {p.quiet_seconds:g} s (the waiting client's included).",
            "- **Idle**: clients long-poll their own empty session; statements during the "
            "window, after a settling wait.",
            "- **Reply latency**: the agent message's `creation_utc` (stamped by the server) "
            "to the moment the waiting client holds it; one machine, one clock.",
            "- **Cache memory**: in the bench process, `CachedDocumentDatabase` with the "
            "sessions store's partitions over Parlant's `TransientDocumentDatabase` (behind "
            "an index answering the partition loads with fresh copies, as a driver decodes "
            "rows), filled with documents shaped as `ConcurrentSessionDocumentStore` writes a "
            "turn; every session and its events read once under each bound.",
            *_server_turns_parameters(p),
        ],
    )
    lines += _blocks(
        "### Targets (read cache and notifying listener)",
        _table(["target", "measured", "verdict"], target_rows),
    )
    for figures in results.configurations.values():
        lines += _blocks(
            f"### {figures.configuration.name}",
            _configuration_table(figures, stores) if figures.turns else "No turn completed.",
            _configuration_notes(figures),
        )
    shapes = _shapes_blocks(results)
    if shapes:
        lines += _blocks("### Statements by kind", *shapes)
    if results.memory:
        lines += _blocks(
            "### Read cache memory",
            "Every partition read once through a fresh cache under each bound.",
            _memory_table(results.memory),
        )
    lines += _blocks(
        "### Why (server turns)", [f"- {note}" for note in server_turns_findings(results)]
    )
    return lines


def _server_turns_title(results: ServerTurnsResults, command: str) -> list[str]:
    return _blocks(
        "# Benchmarks: whole turns through real servers",
        f"Generated by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{results.seconds:.0f} s.",
    )


# --- Several replicas (bench/replicas.py) ----------------------------------------------------

_TURN_ALLOWANCE = 3.0
"""Statements per turn `replicas: many` may add to `replicas: one`'s."""
_STATEMENTS_PER_INTERVAL = 1.0
_THROUGHPUT_RATIO = 1.6
_NOT_WOKEN_FACTOR = 10
"""A staleness this many times the bound: the waiting client was not woken by the feed."""


def _feed_split(turns: Sequence[TurnFigure]) -> tuple[float, float, float] | None:
    """Mean change-feed reads, change-feed writes and other statements per turn."""
    if not turns:
        return None
    reads = writes = other = 0
    for turn in turns:
        for (store, shape), n in turn.counts.by_shape.items():
            if store != CHANGE_FEED:
                other += n
            elif _is_write(shape):
                writes += n
            else:
                reads += n
    count = len(turns)
    return reads / count, writes / count, other / count


def _mean_turn(turns: Sequence[TurnFigure]) -> float | None:
    return statistics.fmean(t.counts.total for t in turns) if turns else None


def _spread(values: Sequence[float]) -> str:
    """p50 / p90 / max of ``values`` (seconds) in milliseconds."""
    if not values:
        return "-"
    return (
        f"p50 {_ms(percentile(values, 0.5))}, p90 {_ms(percentile(values, 0.9))}, "
        f"max {_ms(max(values))}"
    )


def replicas_targets(results: ReplicasResults) -> list[TargetRow]:
    """The targets of `server.replicas: many`, judged on this run."""
    safety = results.safety
    return [
        _replicas_completion_target(results),
        *(
            [_safety_target(f) for f in safety]
            or [
                TargetRow("offsets and events safe across replicas", "not measured", "not measured")
            ]
        ),
        *(
            [_patch_target(f) for f in safety]
            or [TargetRow("no metadata key lost", "not measured", "not measured")]
        ),
        _staleness_target(results),
        _replica_turn_target(results),
        _replica_idle_target(results),
        _throughput_target(results),
    ]


def _replica_problems(results: ReplicasResults) -> list[str]:
    """Everything that went wrong on the product's side, each in one line."""
    problems = list(results.failures)
    for server in results.servers:
        if server.mode_logged is False:
            problems.append(f"{server.name} did not log its `Replicas:` mode")
        if server.error_lines:
            problems.append(f"{server.name}: {len(server.error_lines)} error line(s) in its log")
    for figure in results.safety:
        where = f"safety with {figure.replicas} replicas"
        problems += [f"{where}: {failure}" for failure in figure.failures]
        if figure.post_failures:
            problems.append(
                f"{where}: {len(figure.post_failures)} customer message(s) refused, first: "
                f"{figure.post_failures[0]}"
            )
    if results.staleness is not None:
        problems += [f"staleness: {failure}" for failure in results.staleness.failures]
    for mode, throughput in results.throughput.items():
        problems += [f"throughput ({mode}): {failure}" for failure in throughput.failures]
    return problems


def _replicas_completion_target(results: ReplicasResults) -> TargetRow:
    problems = _replica_problems(results)
    statuses = ", ".join(f"{s.name} {s.exit_status}" for s in results.servers)
    return TargetRow(
        "(precondition) every step completes; every server starts in its mode, logs no error "
        "and exits with 0 on SIGTERM",
        "; ".join(map(_cell, problems)) or f"every step completed; exit status: {statuses}",
        _verdict(not problems),
    )


def _safety_target(figure: SafetyFigure) -> TargetRow:
    return TargetRow(
        f"{figure.replicas} replicas, {figure.sessions} sessions x {figure.messages} customer "
        "messages round robin: no duplicate offset, no gap, no acknowledged event missing, none "
        "stored twice, every replica lists the same events",
        f"{figure.duplicate_offsets} duplicate offsets, {figure.missing_offsets} missing, "
        f"{figure.acknowledged_missing} acknowledged missing, {figure.stored_twice} stored "
        f"twice, {figure.disagreeing_sessions} sessions listed differently ({figure.events:,} "
        f"events, {figure.acknowledged:,} acknowledged customer messages)",
        _verdict(figure.unsafe - (figure.keys_lost or 0) == 0),
    )


def _patch_target(figure: SafetyFigure) -> TargetRow:
    label = (
        f"{figure.replicas} replicas patching one session's metadata at once "
        f"({figure.keys_each} keys each): no key lost"
    )
    if figure.keys_lost is None:
        return TargetRow(label, "not measured", "not measured")
    disagree = "; the replicas read different keys" if figure.patch_disagreement else ""
    return TargetRow(
        label,
        f"{figure.keys_lost} of {figure.patch_keys} keys lost (the worst replica's read){disagree}",
        _verdict(figure.keys_lost == 0 and not figure.patch_disagreement),
    )


def _staleness_target(results: ReplicasResults) -> TargetRow:
    bound = results.parameters.staleness
    label = (
        f"a write on replica 1 reaches a client waiting on replica 2 within `max_staleness` "
        f"({bound:g} s), from the writer's acknowledgement"
    )
    figure = results.staleness
    if figure is None or not figure.after_ack:
        return TargetRow(label, "not measured", "not measured")
    missed = f"; {len(figure.failures)} trial(s) failed" if figure.failures else ""
    return TargetRow(
        label,
        f"{_spread(figure.after_ack)} over {len(figure.after_ack)} trials{missed}",
        _verdict(max(figure.after_ack) <= bound and not figure.failures),
    )


def _replica_turn_target(results: ReplicasResults) -> TargetRow:
    label = (
        f"statements per sequential turn at L=0 ms, `replicas: many` (2 replicas, turns on "
        f"one, the other idle) within +{_TURN_ALLOWANCE:g} of `replicas: one` (the change "
        "feed's polls and inserts of both processes counted)"
    )
    one = _mean_turn(results.measured_turns("one"))
    many_ = _mean_turn(results.measured_turns("many"))
    split = _feed_split(results.measured_turns("many"))
    if one is None or many_ is None or split is None:
        return TargetRow(label, "not measured for both", "not measured")
    reads, writes, other = split
    return TargetRow(
        label,
        f"one {one:.1f}, many {many_:.1f} ({many_ - one:+.1f}): change-feed polls {reads:.1f}, "
        f"change-feed inserts {writes:.1f}, the rest {other:.1f} ({other - one:+.1f} over one)",
        _verdict(many_ - one <= _TURN_ALLOWANCE),
    )


def _replica_idle_target(results: ReplicasResults) -> TargetRow:
    idle = results.idle
    interval = results.parameters.interval
    label = (
        f"at most {_STATEMENTS_PER_INTERVAL:g} statement per poll interval "
        f"({interval:g} s, half of `max_staleness`) per replica while clients wait"
    )
    if idle is None:
        return TargetRow(label, "not measured", "not measured")
    per_replica = ", ".join(f"{name} {idle.per_interval(name):.2f}" for name in idle.replicas)
    unattributed = idle.by_process.get(UNATTRIBUTED, 0)
    extra = f"; {unattributed} statements not attributed" if unattributed else ""
    worst = max(idle.per_interval(name) for name in idle.replicas)
    return TargetRow(
        f"{label} ({idle.idle.clients} clients spread over {len(idle.replicas)} replicas)",
        f"{per_replica} per interval ({idle.idle.counts.total:,} statements in "
        f"{idle.idle.seconds:.0f} s){extra}",
        _verdict(worst <= _STATEMENTS_PER_INTERVAL and not unattributed),
    )


def _throughput_target(results: ReplicasResults) -> TargetRow:
    p = results.parameters
    label = (
        f"turns/s at C={p.throughput_sessions} sessions, L={p.throughput_latency_ms:g} ms: "
        f"2 replicas at least {_THROUGHPUT_RATIO:g}x one server"
    )
    one = results.throughput.get("one")
    two = results.throughput.get("many")
    mine = two.turns_per_second if two is not None else None
    theirs = one.turns_per_second if one is not None else None
    if mine is None or theirs is None:
        return TargetRow(label, "not measured for both", "not measured")
    return TargetRow(
        label,
        f"one {theirs:.2f}/s, 2 replicas {mine:.2f}/s: {_ratio(mine, theirs)}",
        _verdict(mine >= _THROUGHPUT_RATIO * theirs),
    )


def _event_merges(counts: WireCounts) -> int:
    """Conditional appends of an event (``MERGE INTO ..._EVENTS``) among ``counts``."""
    return sum(
        n
        for (store, shape), n in counts.by_shape.items()
        if store == "sessions"
        and shape.removeprefix("[describe] ").upper().startswith("MERGE")
        and "_EVENTS" in shape.upper()
    )


def _busy(counts: WireCounts, seconds: float) -> str:
    return f"{counts.emulator_seconds / seconds:.0%}" if seconds > 0 else "-"


def _safety_table(figures: Sequence[SafetyFigure]) -> list[str]:
    def row(label: str, cell: Callable[[SafetyFigure], str]) -> list[str]:
        return [label, *(cell(f) for f in figures)]

    def per_message(f: SafetyFigure) -> str:
        return f"{f.counts.total / f.acknowledged:.1f}" if f.acknowledged else "-"

    def merges(f: SafetyFigure) -> str:
        return f"{_event_merges(f.counts):,} for {f.events:,}"

    rows = [
        row("sessions x customer messages", lambda f: f"{f.sessions} x {f.messages}"),
        row("acknowledged customer messages", lambda f: f"{f.acknowledged:,}"),
        row("events stored (customer messages and turns)", lambda f: f"{f.events:,}"),
        row("**duplicate offsets**", lambda f: f"**{f.duplicate_offsets}**"),
        row("**missing offsets (gaps)**", lambda f: f"**{f.missing_offsets}**"),
        row("**acknowledged events missing**", lambda f: f"**{f.acknowledged_missing}**"),
        row("**events stored twice**", lambda f: f"**{f.stored_twice}**"),
        row(
            "**sessions the replicas list differently**", lambda f: f"**{f.disagreeing_sessions}**"
        ),
        row("posting every message", lambda f: _secs(f.posting_seconds)),
        row(
            "then until the turns were over",
            lambda f: _secs(f.drain_seconds) + ("" if f.quiet else " (never quiet)"),
        ),
        row("statements per customer message (every process)", per_message),
        row("event MERGEs for the events stored", merges),
        row(
            "emulator busy (posting and turns)",
            lambda f: _busy(f.counts, f.posting_seconds + f.drain_seconds),
        ),
        row("metadata keys set at once (all replicas)", lambda f: str(f.patch_keys)),
        row(
            "**metadata keys lost**",
            lambda f: "-" if f.keys_lost is None else f"**{f.keys_lost}**",
        ),
        row(
            "refused requests",
            lambda f: str(len(f.post_failures) + len(f.failures)),
        ),
    ]
    return _table(["", *(f"{f.replicas} replicas" for f in figures)], rows)


def _staleness_table(figure: StalenessFigure) -> list[str]:
    def cells(values: Sequence[float]) -> list[str]:
        if not values:
            return ["-", "-", "-"]
        return [
            _ms(percentile(values, 0.5)),
            _ms(percentile(values, 0.9)),
            _ms(max(values)),
        ]

    rows = [
        ["the writer's acknowledgement", *cells(figure.after_ack)],
        ["posting the write", *cells(figure.after_post)],
    ]
    return _table(["to the waiting client holding the event, from", "p50", "p90", "max"], rows)


def _replica_turns_table(results: ReplicasResults) -> list[str]:
    one = results.measured_turns("one")
    many_ = results.measured_turns("many")

    def total(turns: Sequence[TurnFigure]) -> str:
        if not turns:
            return "-"
        counts = [t.counts.total for t in turns]
        return f"**{statistics.fmean(counts):.1f}** (min {min(counts)}, max {max(counts)})"

    def part(turns: Sequence[TurnFigure], index: int) -> str:
        split = _feed_split(turns)
        return "-" if split is None else f"{split[index]:.1f}"

    def ready(turns: Sequence[TurnFigure]) -> str:
        return _secs(statistics.fmean(t.ready_seconds for t in turns)) if turns else "-"

    def warm(mode: str) -> str:
        counts = [str(t.counts.total) for t in results.turns.get(mode, []) if t.warm_up]
        return ", ".join(counts) or "-"

    mine, theirs = _mean_turn(many_), _mean_turn(one)
    difference = "-" if mine is None or theirs is None else f"{mine - theirs:+.1f}"
    rows = [
        ["statements per turn: mean (min, max)", total(one), total(many_), difference],
        ["of which change-feed polls (SELECT)", part(one, 0), part(many_, 0), ""],
        ["of which change-feed inserts", part(one, 1), part(many_, 1), ""],
        ["of which the rest (the turn's own)", part(one, 2), part(many_, 2), ""],
        ["turn time, posting to `ready` (mean)", ready(one), ready(many_), ""],
        ["warm-up turn(s)", warm("one"), warm("many"), ""],
    ]
    return _table(["", "`replicas: one`", "`replicas: many` (2 replicas)", "many - one"], rows)


def _replica_idle_table(idle: IdleReplicasFigure) -> list[str]:
    names = [*idle.replicas, *(n for n in idle.by_process if n not in idle.replicas)]
    rows = [
        [
            name,
            f"{idle.by_process.get(name, 0):,}",
            f"{idle.intervals:.1f}",
            f"**{idle.per_interval(name):.2f}**",
        ]
        for name in names
    ]
    return _table(
        ["process", "statements", f"poll intervals ({idle.interval:g} s)", "per interval"], rows
    )


def _throughput_table(one: ThroughputFigure | None, two: ThroughputFigure | None) -> list[str]:
    figures = [f for f in (one, two) if f is not None]

    def row(label: str, cell: Callable[[ThroughputFigure], str]) -> list[str]:
        return [label, *(cell(f) for f in figures)]

    def per_turn(f: ThroughputFigure) -> str:
        return f"{f.counts.total / f.completed:.1f}" if f.completed else "-"

    rows = [
        row("server processes", lambda f: str(f.replicas)),
        row("concurrent sessions (C), L", lambda f: f"{f.sessions}, {f.latency_ms:g} ms"),
        row("window", lambda f: f"{f.window_seconds:g} s"),
        row("turns completed in the window", lambda f: str(f.completed)),
        row("**turns/s**", lambda f: f"**{_fmt(f.turns_per_second)}**"),
        row("turn time, posting to `ready` (mean)", lambda f: _secs(f.mean_turn_seconds)),
        row("statements in the window (every process)", lambda f: f"{f.counts.total:,}"),
        row("statements per completed turn", per_turn),
        row("emulator busy in the window", lambda f: _busy(f.counts, f.window_seconds)),
    ]
    return _table(["", *(f.label for f in figures)], rows)


def _servers_table(servers: Sequence[ServerFigure]) -> list[str]:
    rows = [
        [
            s.name,
            s.configuration,
            _secs(s.startup_seconds),
            {True: "yes", False: "**no**", None: "-"}[s.mode_logged],
            str(s.exit_status),
            f"{len(s.error_lines)}"
            + (f": `{_cell(s.error_lines[0][:160])}`" if s.error_lines else ""),
        ]
        for s in servers
    ]
    return _table(
        ["server", "configuration", "ready after", "mode in its log", "exit status", "error lines"],
        rows,
    )


def replicas_findings(results: ReplicasResults) -> list[str]:
    """Why the replicas figures are what they are, computed from this run."""
    notes = [
        _replica_failures_finding(results),
        _idle_polls_finding(results),
        _turn_polls_finding(results),
        _staleness_finding(results),
        _safety_cost_finding(results),
        _throughput_finding(results),
    ]
    return [note for note in notes if note is not None]


def _replica_failures_finding(results: ReplicasResults) -> str | None:
    problems = _replica_problems(results)
    if not problems:
        return None
    return (
        f"**What failed** ({len(problems)}): "
        + "; ".join(map(_cell, problems[:8]))
        + ("; ..." if len(problems) > 8 else "")
        + ". A step that fails is reported and the next one still runs."
    )


def _idle_polls_finding(results: ReplicasResults) -> str | None:
    idle = results.idle
    if idle is None or not idle.intervals:
        return None
    shapes = {k: n / idle.intervals for k, n in idle.idle.counts.by_shape.items()}
    top = sorted(shapes.items(), key=lambda item: -item[1])[:2]
    kinds = "; ".join(f"{n:.1f} x {_shape(shape)} ({store})" for (store, shape), n in top)
    per_replica = statistics.fmean(idle.per_interval(name) for name in idle.replicas)
    polls = sum(
        n
        for (store, shape), n in idle.idle.counts.by_shape.items()
        if store == CHANGE_FEED and not _is_write(shape)
    )
    busy = idle.idle.counts.emulator_seconds / idle.idle.seconds
    if per_replica <= _STATEMENTS_PER_INTERVAL:
        return (
            f"**Waiting costs the change feed's poll only**: {per_replica:.2f} statements per "
            f"interval per replica ({kinds} per interval, all replicas)."
        )
    share = polls / idle.idle.counts.total if idle.idle.counts.total else 0.0
    return (
        f"**Idle replicas send {per_replica:.1f} statements per interval each, not one**: "
        f"per interval, all replicas: {kinds}. {share:.0%} of them are the change table's "
        f"poll, which the design sends once per interval per process: each process polls "
        f"{per_replica:.0f} times as often. The emulator was busy {busy:.0%} of the window."
    )


def _turn_polls_finding(results: ReplicasResults) -> str | None:
    many_ = results.measured_turns("many")
    one = _mean_turn(results.measured_turns("one"))
    split = _feed_split(many_)
    if split is None or one is None:
        return None
    reads, writes, other = split
    interval = results.parameters.interval
    seconds = statistics.fmean(t.ready_seconds for t in many_) + results.parameters.quiet_seconds
    expected = 2 * seconds / interval
    return (
        f"**Statements per turn with `replicas: many`**: the turn's own statements are "
        f"{other:.1f} ({other - one:+.1f} over `replicas: one`) and the change feed inserts "
        f"{writes:.1f} per turn; its polls ({reads:.1f} per turn) are time, not turns: a turn "
        f"counted from posting until {results.parameters.quiet_seconds:g} s without a statement "
        f"lasts about {seconds:.1f} s here, {expected:.0f} polls at one per {interval:g} s per "
        "process for 2 processes."
    )


def _staleness_finding(results: ReplicasResults) -> str | None:
    figure = results.staleness
    if figure is None or not figure.after_ack:
        return None
    bound = figure.max_staleness
    late = [v for v in figure.after_ack if v > bound]
    if not late:
        return (
            f"**Staleness**: every write reached the waiting client within the bound "
            f"({_spread(figure.after_ack)}; bound {bound:g} s)."
        )
    stuck = [v for v in late if v > _NOT_WOKEN_FACTOR * bound]
    stuck_text = (
        f" {len(stuck)} of them ({', '.join(f'{v:.1f} s' for v in stuck)}) came only when "
        "the long poll's `wait_for_data` ran out: the waiting client was not woken by the "
        "change feed."
        if stuck
        else ""
    )
    return (
        f"**Staleness**: {len(late)} of {len(figure.after_ack)} writes reached the waiting "
        f"client after the {bound:g} s bound, by at most {_ms(max(late) - bound)} (the "
        "documented guarantee is the bound plus two statements' time; the times here include "
        f"the HTTP round trips of both clients).{stuck_text}"
    )


def _safety_cost_finding(results: ReplicasResults) -> str | None:
    figures = [f for f in results.safety if f.acknowledged and f.events]
    if not figures:
        return None
    parts = []
    for f in figures:
        merges = _event_merges(f.counts)
        seconds = f.posting_seconds + f.drain_seconds
        parts.append(
            f"with {f.replicas} replicas a session's message acknowledged every "
            f"{f.posting_seconds / f.acknowledged * f.sessions:.2f} s, "
            f"{f.counts.total / f.acknowledged:.1f} statements per "
            f"message, {merges:,} event MERGEs for {f.events:,} events stored "
            f"({merges - f.events:,} lost races, each costing a re-read and another MERGE), "
            f"the emulator busy {_busy(f.counts, seconds)}"
        )
    return (
        "**What the safety runs cost**: every session has turns running on every replica at "
        "once (its messages land on each in turn), so the replicas race for the session's "
        f"next offsets: {'; '.join(parts)}. The emulator runs every MERGE, UPDATE and DELETE "
        "under one lock (Snowflake's table lock, coarser), so the races queue there."
    )


def _throughput_finding(results: ReplicasResults) -> str | None:
    one = results.throughput.get("one")
    two = results.throughput.get("many")
    if one is None or two is None:
        return None
    cores = os.cpu_count()
    return (
        f"**Throughput**: {one.completed} turns completed in {one.window_seconds:g} s on one "
        f"server, {two.completed} on 2 replicas; the mean turn took "
        f"{_secs(one.mean_turn_seconds)} vs {_secs(two.mean_turn_seconds)}, the emulator was "
        f"busy {_busy(one.counts, one.window_seconds)} vs "
        f"{_busy(two.counts, two.window_seconds)} of the window. Every server and the "
        f"emulator share this machine's {cores} CPU core(s)."
    )


def replicas_section(results: ReplicasResults, command: str) -> list[str]:
    """The report's section on `server.replicas: many` (bench/replicas.py)."""
    p = results.parameters
    target_rows = [(t.target, t.measured, f"**{t.verdict}**") for t in replicas_targets(results)]
    lines = _section(
        "Several replicas",
        f"`bench/replicas.py`, run by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC "
        f"({results.seconds:.0f} s): `parlant-router run -c parlant.yaml` processes with "
        f"`--set server.replicas=many` (`max_staleness` {p.staleness:g} s, polls every "
        f"{p.interval:g} s), each with its own port, tool service port and `server.home`, on "
        "one instrumented emulator, driven by Parlant's official client; `replicas: one` (the "
        "shipped defaults, one server) beside them.",
        [
            "- **Counted at the emulator's door** as in the server-turns section; the change "
            f"table's statements under `{CHANGE_FEED}`. Each statement is also attributed to "
            "the server process that sent it (its connection's client port, looked up in "
            "`/proc`).",
            "- **Order**: `replicas: one` alone (turns, throughput); then replica 1 alone "
            "(it creates the change table) and replica 2: turns posted to replica 1 with "
            "replica 2 idle, idle clients, staleness, throughput; then more replicas for the "
            "larger safety runs. One configuration at a time on the same tables.",
            f"- **Safety**: {p.sessions} sessions x {p.messages} customer messages, posted "
            "to every replica in turn (each session's messages one after the other, the "
            "sessions at once) while the turns they start run; once no statement but the "
            f"change feed's has arrived for {p.settle_seconds:g} s, and two bounds later, "
            "every replica lists every session's events. Then every replica sets "
            f"{p.patch_keys} metadata keys of one session (`PATCH /sessions/{{id}}`, one key "
            "each), all replicas at once, and every replica reads the session back.",
            f"- **Staleness**: {p.staleness_trials} trials, {p.staleness_parallel} at a time "
            "on sessions of their own: a client long-polls replica 2 "
            "(`list_events(min_offset, source=human_agent, wait_for_data=30)`), and after a "
            "random delay (any phase of the polls) a human agent's message is posted on "
            "replica 1.",
            f"- **Statements per turn**: {p.warmup_turns} warm-up + {p.measured_turns} "
            "measured sequential turns at L = 0 on a fresh session, counted as in the "
            f"server-turns section (posting until {p.quiet_seconds:g} s without a statement "
            "other than the change feed's), every process's statements included.",
            f"- **Idle**: {p.idle_clients} clients long-poll their own empty session "
            f"(`wait_for_data={p.idle_wait_seconds}`), spread over 2 replicas, for "
            f"{p.idle_window_seconds:g} s.",
            f"- **Throughput**: C = {p.throughput_sessions} sessions, split over the "
            f"replicas, each running turns back to back at L = {p.throughput_latency_ms:g} "
            f"ms for {p.throughput_window_seconds:g} s after {p.throughput_warmup_turns} "
            "warm-up turn(s) each; turns/s "
            "is each session's turns completed in the window over the time to its last one, "
            "summed.",
        ],
    )
    lines += _blocks(
        "### Targets (several replicas)", _table(["target", "measured", "verdict"], target_rows)
    )
    if results.safety:
        lines += _blocks("### Safety", _safety_table(results.safety))
    if results.staleness is not None:
        figure = results.staleness
        lines += _blocks(
            "### Staleness",
            f"A write on replica 1, a client waiting on replica 2; {len(figure.after_ack)} of "
            f"{figure.trials} trials answered; `max_staleness` {figure.max_staleness:g} s.",
            _staleness_table(figure),
        )
    if results.turns:
        lines += _blocks("### Statements per turn (L = 0)", _replica_turns_table(results))
    if results.idle is not None:
        idle = results.idle
        per_interval = {k: n / idle.intervals for k, n in idle.idle.counts.by_shape.items()}
        lines += _blocks(
            "### Idle replicas",
            f"{idle.idle.clients} clients waiting, spread over {', '.join(idle.replicas)}, "
            f"for {idle.idle.seconds:.0f} s ({idle.idle.polls} long polls answered by 504).",
            _replica_idle_table(idle),
            _shapes_table(per_interval, "per interval", 4) if per_interval else "No statement.",
        )
    if results.throughput:
        one, two = results.throughput.get("one"), results.throughput.get("many")
        lines += _blocks(
            "### Throughput",
            _throughput_table(one, two),
            "2 replicas / one server: "
            + _ratio(
                two.turns_per_second if two is not None else None,
                one.turns_per_second if one is not None else None,
            )
            + ".",
        )
    lines += _blocks("### Servers", _servers_table(results.servers))
    lines += _blocks(
        "### Why (several replicas)", [f"- {note}" for note in replicas_findings(results)]
    )
    return lines


def _replicas_title(results: ReplicasResults, command: str) -> list[str]:
    return _blocks(
        "# Benchmarks: several replicas",
        f"Generated by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{results.seconds:.0f} s.",
    )


# --- Stores that have grown (bench/growth.py) ------------------------------------------------

_STARTUP_ROWS_TARGET = 1_000
_STARTUP_SECONDS_ALLOWANCE = 1.0
_FLAT_MEMORY = 0.10
"""Peak memory is "flat" when the largest store's is at most this fraction above the empty's."""
_STATEMENTS_PER_THOUSAND = 1.0
_BOUNDED_MEMORY = 0.25
"""A migration's peak memory is "bounded" when the largest size's is at most this fraction
above the smallest's (while the documents grow several times over)."""
_BOUND_PER_UPDATED_ROW = 5
"""Values a migration's UPDATE binds per document (old id, new ID, VERSION, CREATION_UTC, DATA;
docs/snowflake.md)."""
ISSUE_MIGRATION_DOCUMENTS = 1_000_000
"""The size issue 13 sets the migration target at."""


def _percent(value: float, base: float) -> str:
    return f"{100 * (value - base) / base:+.0f}%" if base else "-"


def _by_size(figures: Sequence[StartupFigure], cell: Callable[[StartupFigure], str]) -> str:
    return "; ".join(f"{f.events:,}: {cell(f)}" for f in figures)


def _empty(results: GrowthResults) -> StartupFigure | None:
    """The start over no stored event, if it was measured and a start completed."""
    return next((f for f in results.startup if f.events == 0 and f.runs), None)


def growth_targets(results: GrowthResults) -> list[TargetRow]:
    """Issue 13's targets, judged on this run (the parts it ran)."""
    rows: list[TargetRow] = []
    if STARTUP in results.parts:
        rows += _startup_targets(results)
    if MIGRATION in results.parts:
        rows += _large_migration_targets(results)
    if PRUNE in results.parts:
        rows += _prune_targets(results)
    return rows


def _prune_targets(results: GrowthResults) -> list[TargetRow]:
    p, figure = results.parameters, results.prune
    label = (
        f"prune of {p.prune_sessions:,} expired sessions "
        f"({p.prune_sessions * p.prune_events_per_session:,} events): statements and time "
        "reported, nothing unexpired touched (verified)"
    )
    if figure is None:
        return [TargetRow(label, "not completed", "missed")]
    measured = (
        f"{figure.statements} statements, {figure.seconds:.1f} s; deleted "
        f"{figure.deleted_sessions:,} sessions and {figure.deleted_events:,} events; left "
        f"{figure.sessions_left:,} sessions and {figure.events_left:,} events, "
        + (
            f"all of the {figure.kept_sessions:,} kept sessions"
            if figure.verified()
            else f"of which {figure.kept_sessions_left:,} sessions and "
            f"{figure.kept_events_left:,} events of the {figure.kept_sessions:,} kept sessions"
        )
    )
    return [TargetRow(label, measured, _verdict(figure.verified()))]


def _prune_table(figure: PruneFigure) -> list[str]:
    return _table(
        [
            "expired sessions",
            "their events",
            "kept sessions (events)",
            "statements",
            "seconds",
            "deleted",
            "left",
            "verified",
        ],
        [
            [
                f"{figure.expired_sessions:,}",
                f"{figure.expired_sessions * figure.events_per_session:,}",
                f"{figure.kept_sessions:,} ({figure.kept_sessions * figure.events_per_session:,})",
                str(figure.statements),
                f"{figure.seconds:.1f}",
                f"{figure.deleted_sessions:,} sessions, {figure.deleted_events:,} events",
                f"{figure.sessions_left:,} sessions, {figure.events_left:,} events",
                "yes" if figure.verified() else "**no**",
            ]
        ],
    )


def _startup_targets(results: GrowthResults) -> list[TargetRow]:
    figures = results.startup
    sizes = ", ".join(f"{f.events:,}" for f in figures) or "none"
    completed = bool(figures) and all(f.runs for f in figures) and not results.failures
    rows_label = (
        f"rows fetched at startup: at most {_STARTUP_ROWS_TARGET:,}, whatever the events "
        f"stored ({sizes})"
    )
    if not figures or not any(f.runs for f in figures):
        return [TargetRow(rows_label, "no start completed", "missed")]
    most = max((f.max_rows() or 0) for f in figures)
    rows = [
        TargetRow(
            rows_label,
            _by_size(figures, lambda f: _fmt(f.max_rows(), "{:,}")),
            _verdict(completed and most <= _STARTUP_ROWS_TARGET),
        )
    ]
    empty = _empty(results)
    time_label = (
        f"startup time (to `GET /agents` answering) within +{_STARTUP_SECONDS_ALLOWANCE:g} s of "
        "the empty store's"
    )
    memory_label = (
        "the server's peak memory (VmHWM) flat: at most "
        f"{100 * _FLAT_MEMORY:.0f}% above the empty store's at every size"
    )
    if empty is None:
        rows.append(TargetRow(time_label, "the empty store was not measured", "not measured"))
        rows.append(TargetRow(memory_label, "the empty store was not measured", "not measured"))
        return rows
    base_seconds = empty.mean_seconds() or 0.0
    worst = max((f.mean_seconds() or 0.0) - base_seconds for f in figures if f.runs)
    rows.append(
        TargetRow(
            time_label,
            _by_size(
                figures,
                lambda f: (
                    f"{_fmt(f.mean_seconds(), '{:.2f}')} s"
                    + (
                        ""
                        if f is empty or not f.runs
                        else f" ({(f.mean_seconds() or 0.0) - base_seconds:+.2f})"
                    )
                ),
            ),
            _verdict(completed and worst <= _STARTUP_SECONDS_ALLOWANCE),
        )
    )
    base_peak = empty.max_peak()
    peaks = [f.max_peak() for f in figures]
    if base_peak is None or any(p is None for p in peaks):
        rows.append(TargetRow(memory_label, "VmHWM could not be read", "not measured"))
        return rows
    rows.append(
        TargetRow(
            memory_label,
            _by_size(
                figures,
                lambda f: (
                    _mib(f.max_peak() or 0)
                    + ("" if f is empty else f" ({_percent(f.max_peak() or 0, base_peak)})")
                ),
            ),
            _verdict(completed and max(p or 0 for p in peaks) <= base_peak * (1 + _FLAT_MEMORY)),
        )
    )
    return rows


def _large_migration_targets(results: GrowthResults) -> list[TargetRow]:
    figures = results.migrations
    statements_label = (
        f"opening a store whose documents all need migration: at most "
        f"{_STATEMENTS_PER_THOUSAND:g} statement per 1,000 documents, at the sizes run"
    )
    if not figures:
        return [TargetRow(statements_label, "no open completed", "missed")]
    complete = not results.failures and all(m.migrated == m.documents for m in figures)
    rows = [
        TargetRow(
            statements_label,
            "; ".join(
                f"{m.documents:,}: {m.counts.statements} statements, "
                f"{m.per_thousand():.2f} per 1,000"
                for m in figures
            ),
            _verdict(
                complete and all(m.per_thousand() <= _STATEMENTS_PER_THOUSAND for m in figures)
            ),
        )
    ]
    issue_label = f"the same at the issue's {ISSUE_MIGRATION_DOCUMENTS:,} documents"
    at_issue = next((m for m in figures if m.documents == ISSUE_MIGRATION_DOCUMENTS), None)
    if at_issue is None:
        largest = figures[-1]
        scale = ISSUE_MIGRATION_DOCUMENTS / largest.documents
        rows.append(
            TargetRow(
                issue_label,
                f"not in this run (`--large-migration-docs {ISSUE_MIGRATION_DOCUMENTS}`); "
                f"linear from {largest.documents:,}: about "
                f"{largest.counts.statements * scale:,.0f} statements, "
                f"{largest.seconds * scale / 60:.0f} min",
                "not measured",
            )
        )
    else:
        rows.append(
            TargetRow(
                issue_label,
                f"{at_issue.counts.statements} statements, {at_issue.per_thousand():.2f} per "
                f"1,000, {at_issue.seconds:.0f} s",
                _verdict(
                    at_issue.migrated == at_issue.documents
                    and at_issue.per_thousand() <= _STATEMENTS_PER_THOUSAND
                ),
            )
        )
    memory_label = (
        "the migrating process's peak memory (VmHWM) bounded: at the largest size at most "
        f"{100 * _BOUNDED_MEMORY:.0f}% above the smallest's"
    )
    peaks = [m.peak_rss_bytes for m in figures]
    if len(figures) < 2 or any(p is None for p in peaks):
        rows.append(TargetRow(memory_label, "fewer than two sizes measured", "not measured"))
        return rows
    first, last = figures[0], figures[-1]
    assert first.peak_rss_bytes is not None and last.peak_rss_bytes is not None
    rows.append(
        TargetRow(
            memory_label,
            "; ".join(f"{m.documents:,}: {_mib(m.peak_rss_bytes or 0)}" for m in figures)
            + f" ({_percent(last.peak_rss_bytes, first.peak_rss_bytes)} for "
            f"{last.documents / first.documents:.0f}x the documents)",
            _verdict(
                complete and last.peak_rss_bytes <= first.peak_rss_bytes * (1 + _BOUNDED_MEMORY)
            ),
        )
    )
    return rows


def _startup_table(results: GrowthResults) -> list[str]:
    empty = _empty(results)
    rows: list[list[str]] = []
    for f in results.startup:
        if not f.runs:
            rows.append([f"{f.events:,}", f"{f.sessions:,}", "0", "-", "-", "-", "-", "-"])
            continue
        seconds = [r.seconds for r in f.runs]
        peak = f.max_peak()
        base_peak = empty.max_peak() if empty is not None else None
        rows.append(
            [
                f"{f.events:,}",
                f"{f.sessions:,}",
                str(len(f.runs)),
                _spread_ints([r.counts.rows for r in f.runs]),
                _spread_ints([r.counts.statements for r in f.runs]),
                f"{statistics.fmean(seconds):.2f} s ({min(seconds):.2f}-{max(seconds):.2f})",
                "-" if peak is None else _mib(peak),
                "-"
                if peak is None or base_peak is None or f is empty
                else _percent(peak, base_peak),
            ]
        )
    header = [
        "events stored",
        "sessions",
        "starts",
        "rows fetched",
        "statements",
        "to ready: mean (min-max)",
        "peak memory (VmHWM)",
        "vs empty",
    ]
    return _table(header, rows)


def _spread_ints(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _large_migration_table(results: GrowthResults) -> list[str]:
    rows = [
        [
            f"{m.documents:,}",
            str(m.counts.statements),
            f"{m.per_thousand():.2f}",
            str(m.shape_count("SELECT")),
            str(m.shape_count("UPDATE")),
            f"{m.counts.rows:,}",
            f"{m.seconds:.1f} s",
            f"{1000 * m.seconds / m.documents:.2f}",
            "-" if m.rss_before_bytes is None else _mib(m.rss_before_bytes),
            "-" if m.peak_rss_bytes is None else _mib(m.peak_rss_bytes),
            "yes" if m.migrated == m.documents else f"no ({m.migrated:,})",
        ]
        for m in results.migrations
    ]
    header = [
        "documents",
        "statements",
        "per 1,000 documents",
        "SELECTs",
        "UPDATEs",
        "rows fetched",
        "time",
        "ms per document",
        "memory before the open",
        "peak memory (VmHWM)",
        "all migrated",
    ]
    return _table(header, rows)


def growth_findings(results: GrowthResults) -> list[str]:
    """Why the growing stores' figures are what they are, computed from this run."""
    notes = [
        *(f"**Failed**: {failure}." for failure in results.failures),
        _startup_rows_finding(results),
        _startup_time_finding(results),
        _startup_servers_finding(results),
        _seeding_finding(results),
        _migration_cost_finding(results),
        _migration_memory_finding(results),
        _prune_finding(results),
    ]
    return [note for note in notes if note is not None]


def _prune_finding(results: GrowthResults) -> str | None:
    figure = results.prune
    if figure is None:
        return None
    pages = figure.expired_sessions // SQL_PAGE_ROWS + 1
    full = -(-figure.expired_sessions // SQL_PAGE_ROWS)
    return (
        f"**Prune statements**: {figure.statements} for {figure.expired_sessions:,} sessions: "
        f"pages of {SQL_PAGE_ROWS:,} expired ids read by one SELECT each ({pages}, the last "
        f"one short or empty), two DELETEs per page that found any ({full} x 2: the page's "
        "sessions still expired when the DELETE runs, then the events of the page's ID range "
        "whose session is gone), and one sweep of old events left without a session; "
        f"expected {pages + 2 * full + 1}. No id list is bound: each DELETE names its page's "
        f"ID range by its two ends. **Time**: {figure.seconds:.1f} s, of which the emulator "
        f"was busy {figure.execute_seconds:.1f} s (DuckDB scanning and deleting behind "
        "fakesnow); on Snowflake, the same statements at one round trip each."
    )


def _startup_rows_finding(results: GrowthResults) -> str | None:
    empty = _empty(results)
    largest = next((f for f in reversed(results.startup) if f.runs), None)
    if empty is None or largest is None or largest is empty:
        return None
    run = largest.runs[-1]
    top = sorted(run.counts.wire.by_shape.items(), key=lambda item: -item[1])[:2]
    shapes = "; ".join(
        f"{n} x {_shape(shape)} " + (store if store.startswith("(") else f"({store})")
        for (store, shape), n in top
    )
    return (
        f"**Rows at startup**: {_fmt(empty.max_rows(), '{:,}')} over an empty store, "
        f"{_fmt(largest.max_rows(), '{:,}')} over {largest.events:,} events: opening a "
        "collection reads one row per document version (`GROUP BY` the version, one sample "
        "each), and the stored events are all at the current version. The rest are the "
        "catalog (every store's tables and columns, one query per database) and the small "
        "stores the server reads as it starts. Statements: "
        f"{_fmt(empty.max_statements(), '{:,}')} and {_fmt(largest.max_statements(), '{:,}')}; "
        f"the most frequent at {largest.events:,}: {shapes}."
    )


def _startup_time_finding(results: GrowthResults) -> str | None:
    empty = _empty(results)
    timed = [f for f in results.startup if f.runs]
    if empty is None or len(timed) < 2:
        return None
    largest = timed[-1]
    spread = max(max(r.seconds for r in f.runs) - min(r.seconds for r in f.runs) for f in timed)
    return (
        f"**Startup time**: {_fmt(empty.mean_seconds())} s to ready over an empty store, "
        f"{_fmt(largest.mean_seconds())} s over {largest.events:,} events (means of "
        f"{len(largest.runs)} start(s)); starts at one size differ by up to {spread:.2f} s. "
        "Readiness is polled every 0.2 s. The emulator was busy (a statement inside it) "
        f"{_emulator_seconds(empty):.2f} s of the empty store's starts and "
        f"{_emulator_seconds(largest):.2f} s of the largest's (means); the rest is the "
        "server's own work (imports, the container, the tool service)."
    )


def _startup_servers_finding(results: GrowthResults) -> str | None:
    runs = [run for figure in results.startup for run in figure.runs]
    if not runs:
        return None
    statuses = sorted({str(run.exit_status) for run in runs})
    errors = [line for run in runs for line in run.error_lines]
    first = f"; the first: `{_cell(errors[0][:200])}`" if errors else ""
    return (
        f"**Servers**: {len(runs)} measured start(s), exit status on SIGTERM "
        f"{', '.join(statuses)}; {len(errors)} error line(s) in their logs{first}."
    )


def _seeding_finding(results: GrowthResults) -> str | None:
    parts = [
        f"up to {f.events:,} events {f.seed_seconds:.1f} s" for f in results.startup if f.events
    ]
    parts += [
        f"{m.documents:,} sessions at {OLD_SESSION_VERSION} {m.seed_seconds:.1f} s"
        for m in results.migrations
    ]
    if not parts:
        return None
    return (
        "**Seeding** (one `INSERT ... SELECT ... FROM TABLE(GENERATOR(...))` per table and "
        f"size, by the bench, outside the measured windows): {'; '.join(parts)}."
    )


def _emulator_seconds(figure: StartupFigure) -> float:
    return statistics.fmean(r.counts.wire.emulator_seconds for r in figure.runs)


def _migration_cost_finding(results: GrowthResults) -> str | None:
    if not results.migrations:
        return None
    first, largest = results.migrations[0], results.migrations[-1]
    ms = 1000 * largest.seconds / largest.documents
    busy = largest.counts.wire.emulator_seconds
    updates = largest.shape_count("UPDATE")
    per_batch = largest.documents / updates if updates else 0.0
    most_rows = min(MAX_BATCH_ROWS, MAX_BATCH_BINDS // _BOUND_PER_UPDATED_ROW)
    cut = (
        f" (a batch is cut at {MAX_BATCH_BYTES:,} bytes of statement and values before it "
        f"reaches {most_rows:,} rows)"
        if 0 < per_batch < most_rows - 1
        else ""
    )
    trend = (
        f"; per 1,000 documents {first.per_thousand():.2f} at {first.documents:,} and "
        f"{largest.per_thousand():.2f} at {largest.documents:,}, the few statements of any "
        "open (the catalog, the versions, the metadata) weighing less as the table grows"
        if largest is not first
        else ""
    )
    return (
        f"**Migration statements**: {largest.counts.statements} for {largest.documents:,} "
        f"documents: {largest.shape_count('SELECT')} SELECTs (pages of at most "
        f"{MIGRATION_PAGE_ROWS:,} rows or {MIGRATION_PAGE_CHARS:,} characters of JSON, and "
        f"the open's own reads) and {updates} `UPDATE ... FROM VALUES` of "
        f"{per_batch:,.0f} documents on average{cut}{trend}. **Time**: {ms:.2f} ms per "
        f"document ({largest.seconds:.0f} s), of which the emulator was busy {busy:.0f} s "
        f"({_percent_of(busy, largest.seconds)}): fakesnow parses the text of every "
        "statement with sqlglot in Python before DuckDB runs it, and each batched UPDATE is "
        "up to that many bytes. The statements are what Snowflake would see; the seconds are "
        "this emulator's."
    )


def _percent_of(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _migration_memory_finding(results: GrowthResults) -> str | None:
    measured = [m for m in results.migrations if m.peak_rss_bytes and m.rss_before_bytes]
    if not measured:
        return None
    added = "; ".join(
        f"{m.documents:,}: +{_mib((m.peak_rss_bytes or 0) - (m.rss_before_bytes or 0))}"
        for m in measured
    )
    return (
        "**Migration memory** is measured in the process that opens the store (`python -m "
        "bench.open_store`), not the bench's, which runs the emulator: its `VmHWM` (the "
        "resident high-water mark, interpreter and imports included) against its resident "
        f"memory just before the open. What the open added: {added}. It holds one page read "
        f"(at most {MIGRATION_PAGE_ROWS:,} rows or {MIGRATION_PAGE_CHARS:,} characters of JSON) "
        "and one unwritten batch, whatever the table's size."
    )


def growth_section(results: GrowthResults, command: str) -> list[str]:
    """The report's section on stores that have grown (bench/growth.py)."""
    p = results.parameters
    target_rows = [(t.target, t.measured, f"**{t.verdict}**") for t in growth_targets(results)]
    method = [
        "- **Counted at the emulator's door**, as in the server-turns section: statements, and "
        "the rows of every result set (the response's `total`; the count of affected rows "
        "that a write answers is not a row fetched).",
    ]
    if STARTUP in results.parts:
        method.append(
            "- **Startup**: `parlant-router run -c parlant.yaml` with the warehouse backend "
            "pointed at the emulator (as in the server-turns section). A first start, not "
            "measured, creates every store's tables. Then events are written straight into "
            "the sessions store's events table in the adapters' layout (`INSERT ... SELECT "
            "... FROM TABLE(GENERATOR(ROWCOUNT => n))`, at `SessionDocumentStore`'s current "
            f"version, spread over {p.startup_sessions:,} sessions written the same way), "
            f"cumulatively, and the server is started {p.startup_runs} time(s) per size. Per "
            "start: seconds from launching the process until `GET /agents` answers 200; "
            "statements and rows from launching it until none has arrived for "
            f"{p.quiet_seconds:g} s (the readiness polls included); the process's `VmHWM` "
            "from `/proc/<pid>/status` before it is stopped (SIGTERM)."
        )
    if MIGRATION in results.parts:
        method.append(
            f"- **Migration**: sessions written at version {OLD_SESSION_VERSION} (as in "
            "the adapters' migration workload, in bulk), with the store's metadata at "
            f"{OLD_SESSION_VERSION}, are opened by our adapter under "
            "`SessionDocumentStore(allow_migration=True)` in a process of its own "
            "(`python -m bench.open_store`), which migrates every one to "
            f"{SessionDocumentStore.VERSION.to_string()}, checked afterwards by counting the "
            "rows at that version. Time: the open, measured in that process. Memory: that "
            "process's `VmHWM` (the emulator's memory is the bench process's, not counted)."
        )
    if PRUNE in results.parts:
        method.append(
            f"- **Prune**: {p.prune_sessions:,} sessions last active in 2024 and "
            f"{p.prune_kept_sessions:,} active yesterday, each with "
            f"{p.prune_events_per_session} events, written in bulk into our adapter's tables; "
            "one pass of `SqlPruning` (what the server's background task and "
            "`parlant-router prune` run) with a 90-day retention, statements metered at the "
            "connector, L=0; then every table is counted: exactly the expired sessions and "
            "their events must be gone, every kept one still there."
        )
    durations = {
        STARTUP: results.startup_seconds,
        MIGRATION: results.migration_seconds,
        PRUNE: results.prune_seconds,
    }
    parts = ", ".join(f"{part} {durations[part]:.0f} s" for part in results.parts)
    lines = _section(
        "Stores that have grown",
        f"`bench/growth.py`, run by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC "
        f"({results.seconds:.0f} s: {parts}) against one instrumented `SnowflakeEmulator`.",
        method,
    )
    lines += _blocks(
        "### Targets (issue 13)", _table(["target", "measured", "verdict"], target_rows)
    )
    if results.startup:
        lines += _blocks(
            "### Startup over stored events",
            "Rows and statements: the range over the starts at that size (one value when "
            "they agree). Peak memory: the highest of the starts.",
            _startup_table(results),
        )
    if results.migrations:
        lines += _blocks(
            "### Opening a large store that needs migration",
            _large_migration_table(results),
        )
    if results.prune is not None:
        lines += _blocks("### Pruning a retention's expired sessions", _prune_table(results.prune))
    lines += _blocks(
        "### Why (stores that have grown)", [f"- {note}" for note in growth_findings(results)]
    )
    return lines


def _growth_title(results: GrowthResults, command: str) -> list[str]:
    return _blocks(
        "# Benchmarks: stores that have grown",
        f"Generated by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{results.seconds:.0f} s.",
    )


# --- Vector stores (bench/vectors.py) --------------------------------------------------------


def _texts(figure: ModeFigure) -> str:
    e = figure.restart_embeddings
    return "-" if e is None else f"{e.document_texts:,} in {e.document_calls:,} call(s)"


def _expected_listing(p: Parameters) -> tuple[int, int, int]:
    return (p.vector_glossary_terms, p.vector_journeys, p.vector_canned_responses)


def _intact(figure: ModeFigure, p: Parameters) -> bool:
    listed = figure.listed
    return listed is not None and (
        listed.terms,
        listed.journeys,
        listed.canned_responses,
    ) == _expected_listing(p)


def vectors_targets(results: VectorResults) -> list[TargetRow]:
    """Issue 14's targets, judged on this run."""
    p = results.parameters
    stored = results.mode(SNOWFLAKE_MODE)
    rebuilt = results.mode(TRANSIENT_MODE)
    sizes = (
        f"{p.vector_glossary_terms:,} terms, {p.vector_journeys:,} journeys, "
        f"{p.vector_canned_responses:,} canned responses"
    )
    rows: list[TargetRow] = []
    label = f"restart with nothing changed ({sizes}): 0 document embeddings"
    if stored is None or stored.restart_embeddings is None:
        rows.append(TargetRow(label, "not completed", "missed"))
    else:
        today = (
            f"; today's rebuild (`vector: transient`): {_texts(rebuilt)}"
            if rebuilt is not None
            else ""
        )
        rows.append(
            TargetRow(
                label,
                f"{_texts(stored)}{today}",
                _verdict(stored.restart_embeddings.document_calls == 0),
            )
        )
    label = "startup time reported against today's rebuild"
    if stored is None or rebuilt is None or rebuilt.restart_embeddings is None:
        rows.append(TargetRow(label, "not completed", "not measured"))
    else:
        rows.append(
            TargetRow(
                label,
                f"`vector: snowflake` {stored.restart_seconds:.2f} s, `vector: transient` "
                f"{rebuilt.restart_seconds:.2f} s "
                f"({rebuilt.restart_seconds - stored.restart_seconds:+.2f} s)",
                "reported",
            )
        )
    label = "the data intact after the restart (listed through the client)"
    checked = [m for m in results.modes if m.listed is not None]
    rows.append(
        TargetRow(
            label,
            "; ".join(
                f"{m.mode}: {m.listed.terms:,} terms, {m.listed.journeys:,} journeys, "
                f"{m.listed.canned_responses:,} canned responses"
                for m in checked
                if m.listed is not None
            )
            or "not completed",
            _verdict(
                len(checked) == len(results.modes) > 0 and all(_intact(m, p) for m in checked)
            ),
        )
    )
    search = results.search("stored (vector: snowflake)")
    label = f"search latency p50/p99 for k = {p.vector_k} at {p.vector_documents:,} documents"
    if search is None:
        rows.append(TargetRow(label, "not completed", "not measured"))
    else:
        transient = results.search("Parlant's TransientVectorDatabase")
        versus = (
            f" (Parlant's transient: {_fmt(transient.p(0.5))} / {_fmt(transient.p(0.99))} ms)"
            if transient is not None
            else ""
        )
        rows.append(
            TargetRow(
                label,
                f"{_fmt(search.p(0.5))} / {_fmt(search.p(0.99))} ms over {search.searches} "
                f"searches{versus}",
                "reported",
            )
        )
        rows.append(
            TargetRow(
                "statements per search: 0 (the collection is held in memory)",
                f"at most {search.max_statements()} over {search.searches} searches",
                _verdict(search.max_statements() == 0),
            )
        )
    return rows


def _mode_table(results: VectorResults) -> list[str]:
    p = results.parameters
    rows = []
    for m in results.modes:
        counts = m.restart_counts
        seed = m.seed_embeddings
        rows.append(
            [
                f"`vector: {m.mode}`",
                f"{m.seed_seconds:.1f} s",
                "-" if seed is None else f"{seed.document_texts:,}",
                f"{m.restart_seconds:.2f} s ({m.restart_range()[0]:.2f}-{m.restart_range()[1]:.2f})",
                _fmt(m.emulator_seconds(), "{:.2f} s"),
                _texts(m),
                "-" if counts is None else f"{counts.statements:,}",
                f"{m.vector_statements():,}",
                "-" if counts is None else f"{counts.rows:,}",
                "-" if m.restart_peak_rss_bytes is None else _mib(m.restart_peak_rss_bytes),
                "-"
                if m.listed is None
                else f"{m.listed.terms:,} / {m.listed.journeys:,} / {m.listed.canned_responses:,}"
                + ("" if _intact(m, p) else " (**not all**)"),
            ]
        )
    return _table(
        [
            "mode",
            "seeding (HTTP)",
            "texts embedded seeding",
            "restart to ready: mean (min-max)",
            "emulator busy",
            "document embeddings at a restart (most)",
            "statements at restart",
            "of the vector stores",
            "rows fetched at restart",
            "peak memory (VmHWM)",
            "listed after: terms / journeys / canned",
        ],
        rows,
    )


def _search_row(s: SearchFigure) -> list[str]:
    return [
        s.name,
        f"{s.documents:,}",
        f"{s.fill}: {s.fill_seconds:.1f} s",
        "-" if s.load_seconds is None else f"{s.load_seconds:.2f} s",
        "-" if s.load_statements is None else str(s.load_statements),
        f"{s.searches} (k = {s.k})",
        _fmt(s.p(0.5)),
        _fmt(s.p(0.99)),
        "-" if s.name.startswith("Parlant") else str(s.max_statements()),
        f"{s.nonempty}",
    ]


def _search_table(results: VectorResults) -> list[str]:
    return _table(
        [
            "collection",
            "documents",
            "filled by",
            "open (load)",
            "statements to open",
            "searches",
            "p50 ms",
            "p99 ms",
            "statements per search (max)",
            "searches that found documents",
        ],
        [_search_row(s) for s in results.searches],
    )


def vectors_findings(results: VectorResults) -> list[str]:
    notes: list[str] = []
    stored, rebuilt = results.mode(SNOWFLAKE_MODE), results.mode(TRANSIENT_MODE)
    if stored is not None and rebuilt is not None:
        notes.append(
            f"**Restart**: `vector: snowflake` reads each vector store's rows with their "
            f"embeddings and embeds nothing ({_texts(stored)}); `vector: transient` reads "
            f"the same rows without embeddings and embeds every stored text again "
            f"({_texts(rebuilt)}), in batches. Restart to ready: "
            f"{stored.restart_seconds:.2f} s against {rebuilt.restart_seconds:.2f} s for "
            f"today's rebuild (emulator busy {_fmt(stored.emulator_seconds())} s and "
            f"{_fmt(rebuilt.emulator_seconds())} s). The offline embedder (hashed n-grams, in "
            "process) makes the rebuild cheap here; with a hosted embedder each of those "
            "calls is a network round trip, billed, before the server is ready."
        )
    servers = [status for m in results.modes for status in m.exit_statuses]
    errors = [line for m in results.modes for line in m.error_lines]
    if servers:
        notes.append(
            f"**Servers**: {len(servers)} started, exit status on SIGTERM "
            f"{', '.join(str(s) for s in sorted(set(servers)))}; {len(errors)} error line(s) "
            "in their logs."
        )
    search = results.search("stored (vector: snowflake)")
    if search is not None:
        notes.append(
            "**Searches** return every matching document ranked (as Parlant's transient "
            "database does: `k` does not cut there, the stores cut after merging the results "
            "of a message's query chunks): an unfiltered search builds "
            f"{search.documents:,} results, a category one about a twentieth of them (see "
            "the table by filter). Filters (a category, a rank range, three categories, or "
            "none, at random) are evaluated in Python on every held document before the "
            "scoring."
        )
    notes.append(
        f"**Embedding** the in-process part's {results.parameters.vector_documents:,} "
        f"documents with the offline embedder took {results.embed_seconds:.1f} s (outside "
        "the measured windows)."
    )
    notes += [f"**Failed**: {failure}" for failure in results.failures]
    return notes


def vectors_section(results: VectorResults, command: str) -> list[str]:
    """The report's section on vector stores (bench/vectors.py)."""
    p = results.parameters
    target_rows = [(t.target, t.measured, f"**{t.verdict}**") for t in vectors_targets(results)]
    stores = ", ".join(VECTOR_STORES)
    method = [
        "- **Servers**: `parlant-router run -c parlant.yaml` with every store on one "
        f"`SnowflakeEmulator` per mode ({stores} among them), `server.nlp: "
        "bench.counting_nlp:counting_nlp_service` (the offline embedder, logging each call "
        "through `PARLANT_ROUTER_EMBED_LOG`) and `stores.<store>.vector` set to the mode for "
        f"the four vector stores. Seeded through HTTP by the official `AsyncParlantClient` "
        f"({p.vector_seed_concurrency} requests in flight): {p.vector_glossary_terms:,} "
        f"glossary terms (every other one with a synonym), {p.vector_journeys:,} journeys "
        f"(one condition each), {p.vector_canned_responses:,} canned responses (every third "
        "with two signals). Then the server is stopped (SIGTERM) and started again: seconds "
        "from launching it until `GET /agents` answers 200, its embedder's calls until it "
        f"is quiet, statements and rows at the emulator's door until none arrived for "
        f"{p.quiet_seconds:g} s; then terms, journeys and canned responses are listed "
        "through the client and counted.",
        f"- **In process**: one `StoredVectorCollection` (embeddings kept) over our "
        f"`SnowflakeDocumentDatabase` on an emulator, {p.vector_documents:,} documents "
        "embedded by the offline embedder (256 dimensions) written in bulk in the "
        "collection's row layout (multi-row `INSERT ... SELECT ... FROM VALUES`, an "
        "unmetered connection), then opened by a fresh database (the load: time and "
        f"`statements_sent`) and searched {p.vector_searches} times with k = {p.vector_k}, "
        "random queries and filters, `statements_sent` read before and after each. Parlant's "
        "`TransientVectorDatabase` is filled with the same documents (`insert_one` each) and "
        "searched with the same queries.",
    ]
    lines = _section(
        "Vector stores",
        f"`bench/vectors.py`, run by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC "
        f"({results.seconds:.0f} s: servers {results.server_seconds:.0f} s, searches "
        f"{results.search_seconds:.0f} s).",
        method,
    )
    lines += _blocks(
        "### Targets (issue 14)", _table(["target", "measured", "verdict"], target_rows)
    )
    if results.modes:
        lines += _blocks(
            "### Restart with nothing changed",
            f"{p.vector_restarts} restart(s) per mode. Statements, rows and embeddings: the "
            "restart that had the most; peak memory: the highest.",
            _mode_table(results),
        )
    if results.searches:
        lines += _blocks("### Searches", _search_table(results))
    kinds = [
        [s.name, kind, str(n), _fmt(p50), _fmt(p99)]
        for s in results.searches
        for kind, (n, p50, p99) in s.by_kind().items()
    ]
    if kinds:
        lines += _blocks(
            "By filter (a search returns every document its filter matches, ranked):",
            _table(["collection", "filter", "searches", "p50 ms", "p99 ms"], kinds),
        )
    lines += _blocks("### Why (vector stores)", [f"- {note}" for note in vectors_findings(results)])
    return lines


def _vectors_title(results: VectorResults, command: str) -> list[str]:
    return _blocks(
        "# Benchmarks: vector stores",
        f"Generated by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{results.seconds:.0f} s.",
    )


# --- Moving data: copy (bench/copy.py) ---------------------------------------------------------

COPY_MAX_STATEMENTS = 300
"""The issue's bound on the statements of the full-size copy."""
COPY_RESUME_FACTOR = 1.2
"""A killed copy and its resumption together: at most this many times an uninterrupted one's."""
COPY_FLAT_MEMORY_FACTOR = 1.5
"""Memory is flat when the full copy's peak is under this many times the smaller one's (the
data is ``copy_small_divisor`` times larger)."""


def _copy_mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def copy_targets(results: CopyResults) -> list[TargetRow]:
    """The issue's targets for ``parlant-router copy``, measured."""
    p = results.parameters
    full, small = results.run(FULL_RUN), results.run(SMALL_RUN)
    killed, resumed = results.run(KILLED_RUN), results.run(RESUMED_RUN)
    size = (
        f"{p.copy_events:,} events in {p.copy_sessions:,} sessions plus "
        f"{p.copy_customers:,} customers, JSON files to the Snowflake emulator"
    )
    rows: list[TargetRow] = []
    if full is not None:
        rows.append(
            TargetRow(
                f"{size}: statements sent <= {COPY_MAX_STATEMENTS}, verified",
                f"{full.statements} statements; {full.documents_per_second:,.0f} documents/s "
                f"({full.documents:,} in {full.seconds:.1f} s); "
                f"{full.stores_verified}/{full.stores} stores verified",
                _verdict(full.statements <= COPY_MAX_STATEMENTS and full.verified),
            )
        )
    if full is not None and small is not None:
        ratio = full.peak_rss_bytes / small.peak_rss_bytes if small.peak_rss_bytes else 0.0
        rows.append(
            TargetRow(
                "peak memory flat (streaming), not proportional to the data",
                f"{_copy_mib(full.peak_rss_bytes)} at {full.documents:,} documents, "
                f"{_copy_mib(small.peak_rss_bytes)} at {small.documents:,} "
                f"(x{ratio:.2f} for x{full.documents / max(1, small.documents):.1f} the data)",
                _verdict(0 < ratio <= COPY_FLAT_MEMORY_FACTOR),
            )
        )
    if full is not None and killed is not None and resumed is not None:
        total = killed.statements + resumed.statements
        factor = total / full.statements if full.statements else 0.0
        half = killed.events_held or 0
        rows.append(
            TargetRow(
                f"resume after SIGKILL at 50%: statements <= {COPY_RESUME_FACTOR}x an "
                "uninterrupted copy, verification passes",
                f"killed with {half:,} of {p.copy_events:,} events in; {killed.statements} + "
                f"{resumed.statements} = {total} statements (x{factor:.2f}); resumed run exit "
                f"{resumed.exit_status}, {resumed.stores_verified}/{resumed.stores} verified",
                _verdict(factor <= COPY_RESUME_FACTOR and resumed.verified),
            )
        )
    return rows


def _copy_table(results: CopyResults) -> list[str]:
    rows = [
        [
            run.label,
            f"{run.documents:,}",
            str(run.statements),
            f"{run.seconds:.1f}",
            f"{run.documents_per_second:,.0f}",
            _copy_mib(run.peak_rss_bytes),
            str(run.exit_status),
            f"{run.stores_verified}/{run.stores}",
        ]
        for run in results.runs
    ]
    return _table(
        [
            "run",
            "source documents",
            "statements",
            "seconds",
            "documents/s",
            "peak RSS",
            "exit",
            "verified",
        ],
        rows,
    )


def copy_section(results: CopyResults, command: str) -> list[str]:
    """The report's section on moving data (bench/copy.py)."""
    p = results.parameters
    target_rows = [(t.target, t.measured, f"**{t.verdict}**") for t in copy_targets(results)]
    sizes = ", ".join(
        f"{label} {size / 1e6:.1f} MB" for label, size in results.source_bytes.items()
    )
    return _section(
        "Moving data: copy (issue 15)",
        f"`bench/copy.py`, run by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the "
        f"workload took {results.seconds:.0f} s.",
        [
            f"- **Source**: a plain Parlant home, `sessions.json` ({p.copy_events:,} events in "
            f"{p.copy_sessions:,} sessions) and `customers.json` ({p.copy_customers:,} "
            "customers), documents shaped as Parlant's own stores write them (one of each "
            f"created through them, copied under new ids); source files: {sizes}.",
            "- **Copy**: `parlant-router copy --from-parlant-home HOME --to-config FILE`, a "
            "subprocess attached to the bench's Snowflake emulator, statements counted at the "
            "emulator's door (growth's `WireMeter`); peak memory is the process's `VmHWM`. "
            f"The `small` run copies a home {p.copy_small_divisor} times smaller.",
            "- **Resume**: the `killed` run is SIGKILLed once half the events are in their "
            "table (watched by another connection, its polls not counted); `resumed` is the "
            "same command run again.",
        ],
        _table(["target", "measured", "verdict"], target_rows),
        _copy_table(results),
    )


def _copy_title(results: CopyResults, command: str) -> list[str]:
    return _blocks(
        "# Benchmarks: moving data",
        f"Generated by `{command}` on {results.started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{results.seconds:.0f} s.",
    )
