"""Fixtures of the session-store tests: each test runs on Parlant's transient database and on
our SnowflakeDocumentDatabase over the session's emulator (real connector), wrapped in a
GatedDatabase."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from parlant.adapters.db.transient import TransientDocumentDatabase

from tests.stores.gated_database import GatedDatabase

if TYPE_CHECKING:
    from tests.support.databases import OpenDatabase


@pytest.fixture(params=["transient", "snowflake"])
async def database(
    request: pytest.FixtureRequest, open_database: OpenDatabase
) -> AsyncIterator[GatedDatabase]:
    """A fresh database of each kind (own table prefix on the shared emulator)."""
    if request.param == "transient":
        yield GatedDatabase(TransientDocumentDatabase())
        return
    async with open_database() as snowflake:
        yield GatedDatabase(snowflake)
