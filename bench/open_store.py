"""``python -m bench.open_store PREFIX``: open a `SessionDocumentStore` in a process of its own
and print what it cost, as one line of JSON (bench/growth.py's migration workload).

A process of its own, so that its peak resident memory (``VmHWM``) is the open's and the
interpreter's, not the emulator's, which runs in the bench process. The emulator's connection
(its password included) comes as JSON in the ``BENCH_CONNECTION`` variable, not in argv.

The answer: ``seconds`` (the open, until the store is usable), ``rss_before_bytes`` (resident
memory just before it: interpreter, imports) and ``peak_rss_bytes`` (the high-water mark after
it). Statements and rows are counted by the caller, at the emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from parlant.core.sessions import SessionDocumentStore

from bench.adapters import quiet_logger
from parlant_router.snowflake import SnowflakeDocumentDatabase

CONNECTION_VARIABLE = "BENCH_CONNECTION"
"""The emulator's connection (password included), as JSON."""


def status_bytes(pid: int, field_name: str) -> int | None:
    """A ``/proc/<pid>/status`` size field (``VmHWM``, ``VmRSS``) in bytes, None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) * 1024  # the kernel's "kB" are KiB
    return None


async def open_store(prefix: str, connection: Mapping[str, Any]) -> dict[str, Any]:
    """Open the sessions store whose tables are ``<prefix><NAME>``; what it cost."""
    rss_before = status_bytes(os.getpid(), "VmRSS")
    started = time.perf_counter()
    async with (
        SnowflakeDocumentDatabase(quiet_logger(), dict(connection), table_prefix=prefix) as db,
        SessionDocumentStore(db, allow_migration=True),
    ):
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": status_bytes(os.getpid(), "VmHWM"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: open the store named by the one argument, print the JSON answer."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or CONNECTION_VARIABLE not in os.environ:
        print(
            f"usage: {CONNECTION_VARIABLE}='{{...}}' python -m bench.open_store TABLE_PREFIX",
            file=sys.stderr,
        )
        return 2
    # fakesnow's connector path warns about an Arrow copy on every result.
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
    answer = asyncio.run(open_store(args[0], json.loads(os.environ[CONNECTION_VARIABLE])))
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
