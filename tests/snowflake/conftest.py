from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parlant_router.snowflake import SnowflakeEmulator


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
