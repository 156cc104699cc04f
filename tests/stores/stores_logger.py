"""A Parlant logger that drops everything (the tests assert on store answers, not logs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from parlant.core.loggers import Logger, LogLevel


class SilentLogger(Logger):
    """Discards every message."""

    def set_level(self, log_level: LogLevel) -> None:
        pass

    def trace(self, message: str) -> None:
        pass

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass

    def critical(self, message: str) -> None:
        pass

    @contextmanager
    def scope(self, scope_id: str) -> Iterator[None]:
        yield
