"""The one emulator every adapter of a run talks to."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from parlant_router.snowflake.emulator import SnowflakeEmulator

# DuckDB's files on tmpfs when there is one: the benchmark measures adapters, not disks.
_RAM_DIR = Path("/dev/shm")


@contextmanager
def running_emulator() -> Iterator[dict[str, Any]]:
    """Start a SnowflakeEmulator in a fresh temporary directory; yield connector kwargs."""
    base = str(_RAM_DIR) if _RAM_DIR.is_dir() else None
    with (
        tempfile.TemporaryDirectory(prefix="parlant-bench-", dir=base) as directory,
        SnowflakeEmulator(Path(directory)) as params,
    ):
        yield params


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
