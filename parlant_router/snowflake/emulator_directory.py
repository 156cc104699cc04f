"""Who serves an emulator directory, and how the other processes find it and log in.

Only one process can open the DuckDB files, so a directory is served by one process and
shared with the others: the serving process holds an exclusive ``flock`` on
``<directory>/emulator.lock`` for its whole life and advertises its address and a password it
generated in ``<directory>/emulator.json`` (mode 0600). An emulator started on the same
directory by another process finds the lock taken and attaches to that server instead.

This module owns those two files (the lock, and the advertisement: its format, writing,
reading and withdrawing), apart from the server itself, so that the protocol between
processes reads in one place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from parlant_router.processes import is_running
from parlant_router.snowflake.errors import SnowflakeEmulatorError

#: Loopback only: the emulator is a development tool, never a network service.
HOST = "127.0.0.1"

_LOCK_FILE = "emulator.lock"
_ADVERTISEMENT_FILE = "emulator.json"


@dataclass(frozen=True)
class Advertisement:
    """The contents of ``emulator.json``: where the serving process listens, and how to log in."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    pid: int
    database: str
    schema: str

    @classmethod
    def parse(cls, text: bytes) -> Advertisement:
        """The advertisement in ``text``; ValueError if it is not one (or not on loopback)."""
        content = json.loads(text)
        expected = fields(cls)
        if not isinstance(content, dict) or set(content) != {item.name for item in expected}:
            raise ValueError("not the advertised fields")
        # The annotations are the type names ("int", "str"): annotations are postponed.
        if any(type(content[item.name]).__name__ != item.type for item in expected):
            raise ValueError("a field of the wrong type")
        if content["host"] != HOST:
            raise ValueError("not on loopback")
        return cls(**content)


@dataclass(frozen=True)
class EmulatorDirectory:
    """The lock and the advertisement of the emulator directory ``path``.

    ``try_lock``, ``read`` and ``advertise`` raise ``SnowflakeEmulatorError`` naming the file
    they could not use.
    """

    path: Path

    @property
    def lock_file(self) -> Path:
        """Locked by the serving process for its whole life."""
        return self.path / _LOCK_FILE

    @property
    def advertisement_file(self) -> Path:
        """Where the serving process advertises its address and password."""
        return self.path / _ADVERTISEMENT_FILE

    def try_lock(self) -> int | None:
        """The locked ``emulator.lock`` (a descriptor), or None if another process holds it.

        The lock is held until the descriptor is closed: for as long as the caller serves.
        """
        path = self.lock_file
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise SnowflakeEmulatorError(f"cannot open {path}: {os_error_reason(error)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read(self) -> Advertisement | None:
        """The serving process's advertisement, or None while there is none (yet) to use."""
        path = self.advertisement_file
        try:
            with path.open("rb") as file:
                mode = os.fstat(file.fileno()).st_mode
                if mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise SnowflakeEmulatorError(
                        f"{path} is accessible to other users (mode "
                        f"{stat.S_IMODE(mode):04o}): refusing the emulator password in it"
                    )
                advertisement = Advertisement.parse(file.read())
        except FileNotFoundError:
            return None  # the serving process is starting
        except OSError as error:
            raise SnowflakeEmulatorError(f"cannot read {path}: {os_error_reason(error)}") from None
        except ValueError:
            raise SnowflakeEmulatorError(
                f"{path} is not a Snowflake emulator advertisement"
            ) from None
        # Written before a crash, read just before the new server removed it.
        return advertisement if is_running(advertisement.pid) else None

    def clear(self) -> None:
        """Remove ``emulator.json`` whatever it advertises (for the lock holder, before serving)."""
        with contextlib.suppress(FileNotFoundError):
            self.advertisement_file.unlink()

    def advertise(self, advertisement: Advertisement) -> None:
        """Write ``emulator.json`` atomically, readable by its owner only."""
        target = self.advertisement_file
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                # A leftover temporary file keeps its old mode through O_CREAT.
                os.fchmod(file.fileno(), 0o600)
                json.dump(asdict(advertisement), file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise SnowflakeEmulatorError(
                f"cannot write {target}: {os_error_reason(error)}"
            ) from None

    def withdraw(self, advertisement: Advertisement) -> None:
        """Remove ``emulator.json`` if it still advertises this server."""
        try:
            current = json.loads(self.advertisement_file.read_bytes())
        except (OSError, ValueError):
            return
        if current == asdict(advertisement):
            with contextlib.suppress(FileNotFoundError):
                self.advertisement_file.unlink()


def os_error_reason(error: OSError) -> str:
    """What went wrong, for a message that already names the file (``Permission denied``)."""
    return error.strerror or type(error).__name__


__all__ = ["HOST", "Advertisement", "EmulatorDirectory", "os_error_reason"]
