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
    with tempfile.TemporaryDirectory(prefix="parlant-bench-", dir=base) as directory:
        emulator = SnowflakeEmulator(Path(directory))
        params = emulator.start()
        try:
            _disable_nagle(emulator)
            yield params
        finally:
            emulator.stop()


def _disable_nagle(emulator: SnowflakeEmulator) -> None:
    # The emulator binds its listening socket with proto 0, so asyncio does not set
    # TCP_NODELAY on accepted connections; Nagle's algorithm then meets the client's delayed
    # ACK and every statement stalls ~40 ms -- a fake round trip that would be added to
    # every measurement. Linux copies TCP_NODELAY from the listener to accepted sockets.
    # (Reported to the emulator's owner; harmless once the emulator sets it itself.)
    server = getattr(emulator, "_server", None)
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
