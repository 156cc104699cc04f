"""``python -m bench``: run the benchmarks and write docs/benchmarks.md.

``python -m bench record`` re-records bench/turn_sequence.json from a real engine turn.
``python -m bench --server-turns`` runs only the server-turns workload (real servers, the
official client; bench/server_turns.py) and prints its report; ``--no-server-turns`` leaves
it out of a full run. ``--replicas-only`` runs only the replicas workload (several servers with
``server.replicas: many``; bench/replicas.py); ``--no-replicas`` leaves it out.
``--only startup,migration`` runs only the workloads named (see ``ONLY``); ``--no-growth`` leaves
the startup, large-migration and prune workloads (bench/growth.py) out of a full run;
``--no-vectors`` the vector stores' workload (bench/vectors.py); ``--no-copy`` the copy
workload (bench/copy.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.adapters import OURS, UPSTREAM, available
from bench.parameters import FULL, QUICK, Parameters
from bench.turns import TURN_SEQUENCE_PATH, TurnSequence

if TYPE_CHECKING:
    from bench.replicas import ReplicaParameters

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


# Flags that override one field of the preset: (flag, Parameters field, parser, help).
_OVERRIDES: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--sessions", "sessions", int, "N sessions replayed sequentially"),
    ("--turns", "turns", int, "T turns per session at each latency"),
    ("--high-latency-turns", "high_latency_turns", int, "turns per session at L >= 80"),
    ("--latencies", "latencies_ms", _floats, "L values in ms, e.g. 0,20,80"),
    ("--concurrency", "concurrency", _ints, "C values, e.g. 1,8,32"),
    ("--concurrency-latency", "concurrency_latency_ms", float, "L for the C runs, ms"),
    ("--turn-window", "turn_window_seconds", float, "seconds per concurrent-turn run"),
    ("--read-window", "read_window_seconds", float, "seconds per concurrent-read run"),
    ("--append-sizes", "append_sizes", _ints, "events in session, e.g. 100,1000"),
    ("--appends", "appends", int, "create_event calls timed per size"),
    ("--migration-docs", "migration_documents", int, "migrating documents (ours)"),
    (
        "--upstream-migration-docs",
        "upstream_migration_documents",
        int,
        "migrating docs (upstream)",
    ),
    ("--pool-size", "pool_size", int, "our adapter's pool size"),
    ("--server-measured-turns", "server_turns", int, "server turns measured per L (+ warm-up)"),
    ("--server-latencies", "server_latencies_ms", _floats, "server-turns L values in ms"),
    ("--idle-clients", "idle_clients", int, "clients waiting on idle sessions"),
    ("--idle-window", "idle_window_seconds", float, "seconds of the idle window"),
    ("--memory-sessions", "memory_sessions", int, "sessions in the cache memory measurement"),
    ("--memory-events", "memory_events", int, "events per session there"),
    (
        "--startup-events",
        "startup_events",
        _ints,
        "events stored before the measured starts, e.g. 0,100000,1000000",
    ),
    ("--startup-sessions", "startup_sessions", int, "sessions the stored events are spread over"),
    ("--startup-runs", "startup_runs", int, "server starts measured per size"),
    (
        "--large-migration-docs",
        "large_migration_documents",
        _ints,
        "migrating documents opened in a process of their own, e.g. 30000,1000000",
    ),
    ("--prune-sessions", "prune_sessions", int, "expired sessions one pruning pass deletes"),
    ("--prune-events", "prune_events_per_session", int, "events of each pruned session"),
    ("--vector-terms", "vector_glossary_terms", int, "glossary terms seeded (vectors)"),
    ("--vector-journeys", "vector_journeys", int, "journeys seeded (vectors)"),
    ("--vector-canned", "vector_canned_responses", int, "canned responses seeded (vectors)"),
    ("--vector-restarts", "vector_restarts", int, "restarts measured per vector mode"),
    ("--vector-docs", "vector_documents", int, "documents of the searched collection"),
    ("--vector-searches", "vector_searches", int, "searches timed per collection"),
    ("--copy-events", "copy_events", int, "events of the copied home (copy)"),
    ("--copy-sessions", "copy_sessions", int, "sessions they are spread over (copy)"),
    ("--copy-customers", "copy_customers", int, "customers of the copied home (copy)"),
)

ONLY: dict[str, str] = {
    "migration": "the adapters' migration workload, then the large-store one (bench/growth.py)",
    "startup": "real servers starting over stored events (bench/growth.py)",
    "prune": "one retention pass over expired sessions (bench/prune.py)",
    "server-turns": "whole turns through real servers (bench/server_turns.py)",
    "replicas": "several servers with server.replicas: many (bench/replicas.py)",
    "vectors": "vector stores: restarts that embed nothing, searches (bench/vectors.py)",
    "copy": "parlant-router copy, JSON files to Snowflake, killed and resumed (bench/copy.py)",
}
"""What ``--only`` may name, and what each runs."""


# Flags that override one field of the replicas preset: (flag, ReplicaParameters field, parser,
# help). Their destinations are prefixed: `sessions` is also a field of Parameters.
_REPLICA_OVERRIDES: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--replica-counts", "replica_counts", _ints, "replicas in the safety runs, e.g. 2,4"),
    ("--replica-sessions", "sessions", int, "sessions in each safety run"),
    ("--replica-messages", "messages", int, "customer messages per session there"),
    ("--staleness-trials", "staleness_trials", int, "writes awaited on another replica"),
    ("--max-staleness", "max_staleness", float, "server.max_staleness (default: the product's)"),
    ("--replica-idle-window", "idle_window_seconds", float, "seconds of the replicas' idle window"),
    ("--throughput-sessions", "throughput_sessions", int, "C of the throughput runs"),
    ("--throughput-latency", "throughput_latency_ms", float, "L of the throughput runs, ms"),
    ("--throughput-window", "throughput_window_seconds", float, "seconds per throughput run"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark our SnowflakeDocumentDatabase against Parlant's upstream adapter.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["run", "record"],
        default="run",
        help="run the benchmarks (default) or re-record bench/turn_sequence.json",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"report path (default {DEFAULT_OUTPUT.name} in docs/ for a full run, "
        "standard output for --quick)",
    )
    parser.add_argument(
        "--adapters",
        default=f"{UPSTREAM},{OURS}",
        help="comma-separated adapters to measure (default: both)",
    )
    parser.add_argument("--sequence", type=Path, default=TURN_SEQUENCE_PATH)
    for flag, name, parse, help_text in _OVERRIDES:
        metavar = flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(flag, dest=name, type=parse, metavar=metavar, help=help_text)
    parser.add_argument(
        "--no-session-locks",
        dest="session_locks",
        action="store_false",
        default=None,
        help="skip ours' concurrency runs with ConcurrentSessionDocumentStore",
    )
    for flag, name, parse, help_text in _REPLICA_OVERRIDES:
        metavar = flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(
            flag, dest=f"replica_{name}", type=parse, metavar=metavar, help=help_text
        )
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument(
        "--server-turns",
        dest="only_server_turns",
        action="store_true",
        help="run only the server-turns workload (report on standard output by default)",
    )
    selection.add_argument(
        "--no-server-turns",
        dest="with_server_turns",
        action="store_false",
        help="leave the server-turns workload out of the run",
    )
    selection.add_argument(
        "--replicas-only",
        dest="only_replicas",
        action="store_true",
        help="run only the replicas workload (report on standard output by default)",
    )
    selection.add_argument(
        "--only",
        type=_only_names,
        default=None,
        metavar="NAMES",
        help="run only these workloads, comma-separated (report on standard output by "
        "default): " + "; ".join(f"{name}: {text}" for name, text in ONLY.items()),
    )
    parser.add_argument(
        "--no-replicas",
        dest="with_replicas",
        action="store_false",
        help="leave the replicas workload out of the run",
    )
    parser.add_argument(
        "--no-growth",
        dest="with_growth",
        action="store_false",
        help="leave the startup, large-migration and prune workloads out of the run",
    )
    parser.add_argument(
        "--no-copy",
        dest="with_copy",
        action="store_false",
        help="leave the copy workload out of the run",
    )
    parser.add_argument(
        "--no-vectors",
        dest="with_vectors",
        action="store_false",
        help="leave the vector stores' workload out of the run",
    )
    return parser


def _only_names(text: str) -> frozenset[str]:
    """The workloads ``--only`` names (argparse reports an unknown one)."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(ONLY))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(ONLY)}"
        )
    return names


def selected_workloads(args: argparse.Namespace) -> frozenset[str] | None:
    """The workloads a partial run selects (``--only``, ``--server-turns``, ``--replicas-only``),
    or None for a full run."""
    if args.only is not None:
        return frozenset(args.only)
    if args.only_server_turns:
        return frozenset({"server-turns"})
    if args.only_replicas:
        return frozenset({"replicas"})
    return None


def parameters_from(args: argparse.Namespace) -> Parameters:
    """The preset (full or quick) with the flags given applied."""
    base = QUICK if args.quick else FULL
    fields = [name for _, name, _, _ in _OVERRIDES] + ["session_locks"]
    overrides = {name: getattr(args, name) for name in fields}
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def replica_parameters_from(args: argparse.Namespace) -> ReplicaParameters:
    """The replicas preset (full or quick) with the flags given applied."""
    from bench.replicas import FULL_REPLICAS, QUICK_REPLICAS

    base = QUICK_REPLICAS if args.quick else FULL_REPLICAS
    overrides = {name: getattr(args, f"replica_{name}") for _, name, _, _ in _REPLICA_OVERRIDES}
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _adapter_names(text: str) -> list[str] | None:
    """The adapters named in ``--adapters``, or None (after saying why) if one is unusable."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in (UPSTREAM, OURS):
            print(f"python -m bench: unknown adapter {name!r}", file=sys.stderr)
            return None
        if not available(name):
            print(f"python -m bench: adapter {name!r} is not importable", file=sys.stderr)
            return None
    return names


def _record(args: argparse.Namespace) -> int:
    from bench.record import record

    sequence = record(args.sequence)
    print(
        f"recorded {len(sequence.setup)} setup and {len(sequence.turn)} turn calls "
        f"into {args.sequence}"
    )
    return 0


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from bench.copy import COPY, CopyResults, run_copy
    from bench.growth import MIGRATION, PARTS, GrowthResults, run_growth
    from bench.replicas import ReplicasResults, run_replicas
    from bench.report import render
    from bench.run import ADAPTER_WORKLOADS, RunResults, run
    from bench.server_turns import ServerTurnsResults, run_server_turns
    from bench.vectors import VECTORS, VectorResults, run_vectors

    if args.only_replicas and not args.with_replicas:
        print("python -m bench: --replicas-only and --no-replicas contradict", file=sys.stderr)
        return 2
    parameters = parameters_from(args)
    only = selected_workloads(args)
    results: RunResults | None = None
    if only is None or MIGRATION in only:
        names = _adapter_names(args.adapters)
        if names is None:
            return 2
        sequence = TurnSequence.load(args.sequence)
        workloads = ADAPTER_WORKLOADS if only is None else ("migration",)
        results = asyncio.run(run(parameters, sequence, names, workloads))
    server_turns: ServerTurnsResults | None = None
    if (only is None and args.with_server_turns) or (only and "server-turns" in only):
        server_turns = asyncio.run(run_server_turns(parameters))
    replicas: ReplicasResults | None = None
    if (only is None and args.with_replicas) or (only and "replicas" in only):
        replicas = asyncio.run(run_replicas(replica_parameters_from(args)))
    growth: GrowthResults | None = None
    parts = PARTS if only is None else tuple(part for part in PARTS if part in only)
    if parts and (only is not None or args.with_growth):
        growth = asyncio.run(run_growth(parameters, parts=parts))
    vectors: VectorResults | None = None
    if (only is None and args.with_vectors) or (only and VECTORS in only):
        vectors = asyncio.run(run_vectors(parameters))
    copy: CopyResults | None = None
    if (only is None and args.with_copy) or (only and COPY in only):
        copy = run_copy(parameters)
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    command = "make bench" if not shown else f"python -m bench {shown}"
    text = render(
        results,
        command=command,
        server_turns=server_turns,
        replicas=replicas,
        growth=growth,
        vectors=vectors,
        copy=copy,
    )
    # A partial report is not the whole docs/benchmarks.md: never written there unless
    # --output says so.
    partial = args.quick or only is not None
    output = args.output if args.output is not None else (None if partial else DEFAULT_OUTPUT)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        print(f"[bench] report written to {output}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    args = _parser().parse_args(argv)
    # fakesnow warns about an Arrow copy on every query result.
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
    return _record(args) if args.command == "record" else _run(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
