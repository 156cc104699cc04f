"""Fixtures of the session-store tests: each test runs on Parlant's transient database and on
our SnowflakeDocumentDatabase over the emulator (real connector), wrapped in a GatedDatabase."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from parlant.adapters.db.transient import TransientDocumentDatabase
from stores_gated_database import GatedDatabase
from stores_logger import SilentLogger

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator


@pytest.fixture(scope="session")
def stores_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowflakeEmulator]:
    """One fakesnow HTTP server for the directory's tests."""
    emulator = SnowflakeEmulator(Path(tmp_path_factory.mktemp("stores-emulator")))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(params=["transient", "snowflake"])
async def database(
    request: pytest.FixtureRequest, stores_emulator: SnowflakeEmulator
) -> AsyncIterator[GatedDatabase]:
    """A fresh database of each kind (own table prefix on the shared emulator)."""
    if request.param == "transient":
        yield GatedDatabase(TransientDocumentDatabase())
        return
    prefix = f"S{uuid.uuid4().hex[:10].upper()}_"
    async with SnowflakeDocumentDatabase(
        SilentLogger(), stores_emulator.connect_kwargs(), table_prefix=prefix
    ) as snowflake:
        yield GatedDatabase(snowflake)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # fakesnow warns about an internal Arrow copy on every query result.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Arrow output:UserWarning"))
