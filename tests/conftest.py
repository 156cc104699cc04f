"""Fixtures shared by the test packages: one Snowflake emulator per session, our database on
it, a recording logger.

Parlant is imported lazily here: some directories bind PARLANT_HOME before they import it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
    from tests.support.databases import OpenDatabase
    from tests.support.logger import RecordingLogger
    from tests.support.loop_thread import LoopThread

#: The directories whose tests query the emulator.
EMULATOR_DIRECTORIES = tuple(
    Path(__file__).parent / name for name in ("cache", "snowflake", "stores", "transfer", "vectors")
)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowflakeEmulator]:
    """One fakesnow HTTP server for the whole session, persisting to a temporary directory."""
    from parlant_router.snowflake import SnowflakeEmulator

    # Tests log in with key pairs, tokens and passwords of their own: the shared test emulator
    # cannot check those, so it accepts any login (a served one checks its generated password).
    emulator = SnowflakeEmulator(
        tmp_path_factory.mktemp("snowflake-emulator"), accept_any_login=True
    )
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
def table_prefix() -> str:
    """A prefix of its own for each test: tests share one emulator, never a table."""
    return f"T{uuid.uuid4().hex[:10].upper()}_"


@pytest.fixture
def logger() -> RecordingLogger:
    from tests.support.logger import RecordingLogger

    return RecordingLogger()


@pytest.fixture
def open_database(
    connection_params: dict[str, Any], logger: RecordingLogger, table_prefix: str
) -> OpenDatabase:
    """Open our database on the emulator (the test's table prefix unless given); keyword
    arguments go to its constructor."""
    from parlant_router.snowflake import SnowflakeDocumentDatabase

    @asynccontextmanager
    async def open_(**kwargs: Any) -> AsyncIterator[SnowflakeDocumentDatabase]:
        options: dict[str, Any] = {"table_prefix": table_prefix}
        if "credentials" not in kwargs:
            options["connection_params"] = connection_params
        options.update(kwargs)
        async with SnowflakeDocumentDatabase(logger, **options) as database:
            yield database

    return open_


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """One loop in a thread for the module: hypothesis examples are synchronous."""
    from tests.support.loop_thread import LoopThread

    thread = LoopThread()
    yield thread
    thread.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # fakesnow warns about an internal Arrow copy on every query result.
    for item in items:
        path = Path(str(item.fspath))
        if any(directory in path.parents for directory in EMULATOR_DIRECTORIES):
            item.add_marker(pytest.mark.filterwarnings("ignore:Arrow output:UserWarning"))
