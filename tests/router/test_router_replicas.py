"""The router in `server.replicas: many`: what it builds and how it starts.

The stores of one backend open concurrently; they must share one change feed (one poll per
interval, one writer name for the process). With several, a process would read its own
writes as another's, and a client's wake-up could race ahead of the cache's drop (the bug
this file pins down: tests/e2e/test_replicas.py showed waiters woken only at their timeout).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from parlant.core.agents import AgentId
from parlant.core.customers import CustomerId

from tests.router.conftest import WriteConfig, routed_container

STORES = ["sessions", "customers", "agents", "tags", "context_variables"]


async def test_stores_of_one_backend_share_one_change_feed(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    loaded = write_config(
        {
            "server": {"home": str(tmp_path / "home"), "replicas": "many", "max_staleness": 0.2},
            "backends": {"sf": {"type": "snowflake", "emulator": str(tmp_path / "sf")}},
            "stores": {store: "sf" for store in STORES},
        }
    )
    async with routed_container(loaded) as (router, _):
        assert list(router.change_feeds) == ["sf"]
        feed = router.change_feeds["sf"]
        store = router.stores["sessions"]
        assert store.replica_safe
        await store.create_session(CustomerId("c"), AgentId("a"))
        await router.stores["customers"].create_customer(name="Bob")
        await asyncio.sleep(4 * feed.interval)
        assert feed.flushes >= 1
        # This process is the only writer: nothing it reads is another's.
        assert feed.changes_seen == 0


async def test_replicas_one_builds_no_feed(write_config: WriteConfig, tmp_path: Path) -> None:
    loaded = write_config(
        {
            "backends": {"sf": {"type": "snowflake", "emulator": str(tmp_path / "sf")}},
            "stores": {"sessions": "sf"},
        }
    )
    async with routed_container(loaded) as (router, _):
        assert router.change_feeds == {}
        assert not router.stores["sessions"].replica_safe
