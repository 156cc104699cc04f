"""Fixtures of the Snowflake tests; the session's emulator, `connection_params`,
`open_database` and `logger` are shared from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def emulator_directory(tmp_path: Path) -> Path:
    """A directory of the test's own, for an emulator the test starts itself."""
    return tmp_path / "emulator"
