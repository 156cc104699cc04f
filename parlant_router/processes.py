"""Whether a process still runs, for files that belong to a process until it exits (the
emulator directory's advertisement, a JSON store's temporary files)."""

from __future__ import annotations

import os


def is_running(pid: int) -> bool:
    """Whether process `pid` exists (a signal-0 probe; another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, and another user's
    return True


__all__ = ["is_running"]
