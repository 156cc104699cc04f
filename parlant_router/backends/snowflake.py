"""`type: snowflake`: parlant_router.snowflake.SnowflakeDocumentDatabase, or its local emulator.

With `emulator: DIR` the backend starts the embedded emulator once (fakesnow's HTTP server
on a free loopback port, persisting under DIR) and every store routed here talks to it
through the real connector. Otherwise the backend's settings become `SnowflakeCredentials`
(none given: the `SNOWFLAKE_*` variables Parlant's upstream adapter reads, looked up at
connect time).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from parlant_router.backends.base import Backend
from parlant_router.errors import RouterError
from parlant_router.snowflake.errors import SnowflakeBackendError

if TYPE_CHECKING:
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.backends.base import BackendContext
    from parlant_router.config.models import BackendConfig, SnowflakeBackendConfig
    from parlant_router.config.routes import ResolvedRoute
    from parlant_router.snowflake import SnowflakeDocumentDatabase
    from parlant_router.snowflake.change_feed import ChangeFeed
    from parlant_router.snowflake.credentials import SnowflakeCredentials
    from parlant_router.snowflake.lease import Lease


class SnowflakeBackend(Backend):
    """One Snowflake account (or the local emulator) shared by every store routed to it."""

    _emulator_params: dict[str, Any] | None = None
    _credentials: SnowflakeCredentials | None = None
    _connections: SnowflakeDocumentDatabase | None = None
    _change_feed: ChangeFeed | None = None

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        super().__init__(name, config, context)
        self._change_feed_lock = asyncio.Lock()

    @property
    def _config(self) -> SnowflakeBackendConfig:
        return self.config  # type: ignore[return-value]

    async def open(self) -> None:
        config = self._config
        if config.emulator is None:
            try:
                self._credentials = config.credentials()
            except SnowflakeBackendError as error:
                raise RouterError(f"backends.{self.name}: {error}") from None
            await self._open_connections()
            return

        from parlant_router.snowflake import SnowflakeEmulator

        emulator = SnowflakeEmulator(
            config.emulator,
            database=config.database or "PARLANT",
            schema=config.schema_ or "PUBLIC",
        )
        try:
            params = await asyncio.to_thread(emulator.start)
        except SnowflakeBackendError as error:
            raise RouterError(f"backends.{self.name}: {error}") from None
        # Pushed before any database: the stack closes the emulator after all of them.
        self.context.stack.push_async_callback(asyncio.to_thread, emulator.stop)
        if config.session_parameters:
            params["session_parameters"] = {
                **params.get("session_parameters", {}),
                **config.session_parameters,
            }
        self._emulator_params = params
        where = f"{emulator.host}:{emulator.port}"
        server = (
            f"fakesnow served by this process on {where}"
            if emulator.serving
            else f"attached to the emulator served by pid {emulator.server_pid} on {where}"
        )
        self.context.logger.warning(
            f"Snowflake backend '{self.name}' is the LOCAL EMULATOR ({server}, data in "
            f"{emulator.directory}), NOT a Snowflake account"
        )
        await self._open_connections()

    async def _open_connections(self) -> None:
        # One pool per backend: every routed store's database is a table-prefix view of
        # this one (`with_table_prefix`), so pool_size bounds the backend's connections.
        from parlant_router.snowflake import SnowflakeDocumentDatabase

        config = self._config
        connections = SnowflakeDocumentDatabase(
            self.context.logger,
            connection_params=self._emulator_params,
            credentials=self._credentials,
            pool_size=config.pool_size,
            connection_wait_timeout=config.connection_wait_timeout,
            table_type=config.table_type,
        )
        try:
            self._connections = await self.context.stack.enter_async_context(connections)
        except SnowflakeBackendError as error:
            raise RouterError(f"backends.{self.name}: {error}") from None

    async def database(self, route: ResolvedRoute) -> DocumentDatabase:
        assert self._connections is not None, "open() first"
        prefix = route.table_prefix or self._connections.table_prefix
        database = self._connections.with_table_prefix(prefix)
        try:
            entered: DocumentDatabase = await self.context.stack.enter_async_context(database)
        except SnowflakeBackendError as error:
            raise RouterError(f"stores.{route.store}: backend '{self.name}': {error}") from None
        return entered

    async def change_feed(self, max_staleness: float) -> ChangeFeed | None:
        # Stores open concurrently: one of them creates the feed, the others wait for it.
        async with self._change_feed_lock:
            if self._change_feed is None:
                from parlant_router.snowflake.change_feed import ChangeFeed

                assert self._connections is not None, "open() first"
                feed = ChangeFeed(
                    self._connections, self.context.logger, max_staleness=max_staleness
                )
                try:
                    # Entered after the pool: it stops (publishing its last writes) before it.
                    self._change_feed = await self.context.stack.enter_async_context(feed)
                except SnowflakeBackendError as error:
                    raise RouterError(f"backends.{self.name}: change feed: {error}") from None
        return self._change_feed

    async def lease(self, name: str, ttl: float) -> Lease | None:
        from parlant_router.snowflake.lease import Lease

        assert self._connections is not None, "open() first"
        return Lease(self._connections, name, ttl=ttl)

    def describe(self) -> str:
        config = self._config
        if config.emulator is not None:
            return f"the local Snowflake emulator in {config.emulator}"
        return f"Snowflake account {config.account or '$SNOWFLAKE_ACCOUNT'}"
