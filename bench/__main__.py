"""``python -m bench``: run the benchmarks and write docs/benchmarks.md.

``python -m bench record`` re-records bench/turn_sequence.json from a real engine turn.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.adapters import OURS, UPSTREAM, available
from bench.parameters import FULL, QUICK, Parameters
from bench.turns import TURN_SEQUENCE_PATH, TurnSequence

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


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
    parser.add_argument("--sessions", type=int, help="N sessions replayed sequentially")
    parser.add_argument("--turns", type=int, help="T turns per session at each latency")
    parser.add_argument("--high-latency-turns", type=int, help="turns per session at L >= 80")
    parser.add_argument("--latencies", type=_floats, help="L values in ms, e.g. 0,20,80")
    parser.add_argument("--concurrency", type=_ints, help="C values, e.g. 1,8,32")
    parser.add_argument("--concurrency-latency", type=float, help="L for the C runs, ms")
    parser.add_argument("--turn-window", type=float, help="seconds per concurrent-turn run")
    parser.add_argument("--read-window", type=float, help="seconds per concurrent-read run")
    parser.add_argument("--append-sizes", type=_ints, help="events in session, e.g. 100,1000")
    parser.add_argument("--appends", type=int, help="create_event calls timed per size")
    parser.add_argument("--migration-docs", type=int, help="migrating documents (ours)")
    parser.add_argument("--upstream-migration-docs", type=int, help="migrating docs (upstream)")
    parser.add_argument("--pool-size", type=int, help="our adapter's pool size")
    parser.add_argument(
        "--no-session-locks",
        dest="session_locks",
        action="store_false",
        default=None,
        help="skip ours' concurrency runs with ConcurrentSessionDocumentStore",
    )
    return parser


def parameters_from(args: argparse.Namespace) -> Parameters:
    """The preset (full or quick) with the flags given applied."""
    base = QUICK if args.quick else FULL
    overrides = {
        "sessions": args.sessions,
        "turns": args.turns,
        "high_latency_turns": args.high_latency_turns,
        "latencies_ms": args.latencies,
        "concurrency": args.concurrency,
        "concurrency_latency_ms": args.concurrency_latency,
        "turn_window_seconds": args.turn_window,
        "read_window_seconds": args.read_window,
        "append_sizes": args.append_sizes,
        "appends": args.appends,
        "migration_documents": args.migration_docs,
        "upstream_migration_documents": args.upstream_migration_docs,
        "pool_size": args.pool_size,
        "session_locks": args.session_locks,
    }
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    args = _parser().parse_args(argv)
    # fakesnow warns about an Arrow copy on every query result.
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
    if args.command == "record":
        from bench.record import record

        sequence = record(args.sequence)
        print(
            f"recorded {len(sequence.setup)} setup and {len(sequence.turn)} turn calls "
            f"into {args.sequence}"
        )
        return 0

    from bench.report import render
    from bench.run import run

    names = [n.strip() for n in args.adapters.split(",") if n.strip()]
    for name in names:
        if name not in (UPSTREAM, OURS):
            print(f"python -m bench: unknown adapter {name!r}", file=sys.stderr)
            return 2
        if not available(name):
            print(f"python -m bench: adapter {name!r} is not importable", file=sys.stderr)
            return 2
    sequence = TurnSequence.load(args.sequence)
    parameters = parameters_from(args)
    results = asyncio.run(run(parameters, sequence, names))
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    command = "make bench" if not shown else f"python -m bench {shown}"
    text = render(results, command=command)
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        print(f"[bench] report written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
