"""Fixtures of the Snowflake tests: one emulator per session, reached through the real connector."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from snowflake_test_logger import RecordingLogger

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator

OpenDatabase = Callable[..., AbstractAsyncContextManager[SnowflakeDocumentDatabase]]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowflakeEmulator]:
    """One fakesnow HTTP server for the whole session, persisting to a temporary directory."""
    emulator = SnowflakeEmulator(tmp_path_factory.mktemp("snowflake-emulator"))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def connection_params(emulator: SnowflakeEmulator) -> dict[str, Any]:
    """Fresh connector keyword arguments for the session's emulator."""
    return emulator.connect_kwargs()


@pytest.fixture
def emulator_directory(tmp_path: Path) -> Path:
    return tmp_path / "emulator"


@pytest.fixture
def logger() -> RecordingLogger:
    return RecordingLogger()


@pytest.fixture
def table_prefix() -> str:
    """A prefix of its own for each test: tests share one emulator, never a table."""
    return f"T{uuid.uuid4().hex[:10].upper()}_"


@pytest.fixture
def open_database(
    connection_params: dict[str, Any], logger: RecordingLogger, table_prefix: str
) -> OpenDatabase:
    """Open our database on the emulator; keyword arguments go to its constructor."""

    @asynccontextmanager
    async def open_(**kwargs: Any) -> AsyncIterator[SnowflakeDocumentDatabase]:
        options: dict[str, Any] = {"table_prefix": table_prefix}
        if "credentials" not in kwargs:
            options["connection_params"] = connection_params
        options.update(kwargs)
        async with SnowflakeDocumentDatabase(logger, **options) as database:
            yield database

    return open_


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # fakesnow warns about an internal Arrow copy on every query result.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Arrow output:UserWarning"))
