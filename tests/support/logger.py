"""The tests' one Parlant logger: it records what it is told, for assertions (or nothing reads it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from parlant.core.loggers import Logger, LogLevel


class RecordingLogger(Logger):
    """A Parlant logger that keeps (level, message) pairs for assertions."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def set_level(self, log_level: LogLevel) -> None:
        pass

    def trace(self, message: str) -> None:
        self.records.append(("trace", message))

    def debug(self, message: str) -> None:
        self.records.append(("debug", message))

    def info(self, message: str) -> None:
        self.records.append(("info", message))

    def warning(self, message: str) -> None:
        self.records.append(("warning", message))

    def error(self, message: str) -> None:
        self.records.append(("error", message))

    def critical(self, message: str) -> None:
        self.records.append(("critical", message))

    @contextmanager
    def scope(self, scope_id: str) -> Iterator[None]:
        yield

    def messages(self, level: str) -> list[str]:
        return [message for recorded, message in self.records if recorded == level]
