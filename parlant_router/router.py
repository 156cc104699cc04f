"""The Router: builds Parlant's container from parlant.yaml and owns what it opens.

    async with Router.from_file("parlant.yaml") as router:
        async with p.Server(nlp_service=..., configure_container=router.configure_container):
            ...

    async with Router.from_file("parlant.yaml").server() as server:   # the file drives p.Server
        ...

`configure_container` opens one `Backend` per backend name in use (the Snowflake emulator
and connection settings, a MongoDB client, ...), one DocumentDatabase per routed store, and
Parlant's own store class on it, registered under the store's interface and implementation
type. Everything is entered into the Router's own `AsyncExitStack`: closed when the Router
exits, or at once when configuring fails. Stores the file does not name keep Parlant's
default.

Parlant reads `PARLANT_HOME` when `parlant.bin.server` is first imported, so this module
imports Parlant only inside functions, after the home has been bound.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import signal
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from parlant_router.config.loading import LoadedConfig, load_config
from parlant_router.config.routes import ResolvedRoute, resolve_routes
from parlant_router.errors import RouterError
from parlant_router.import_paths import ImportPathError, import_object
from parlant_router.stores.catalog import STORES

if TYPE_CHECKING:
    import parlant.sdk as p
    from fastapi import FastAPI
    from lagom import Container
    from parlant.core.loggers import Logger
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.backends import Backend, BackendContext
    from parlant_router.retention import Pruner
    from parlant_router.snowflake.change_feed import ChangeFeed
    from parlant_router.stores.read_cache import CachedDocumentDatabase


def _import(path: str) -> Any:
    try:
        return import_object(path)
    except ImportPathError as error:
        # The catalog names Parlant's own classes: one missing means a Parlant not supported.
        raise RouterError(f"unsupported Parlant version: {error}") from None


def _get(c: Container, key: Any) -> Any:
    # Parlant registers abstract interfaces (Logger, NLPService, ...) in lagom, which
    # mypy refuses as `type[T]` arguments; the call sites annotate the result instead.
    return c[key]


class Router:
    """Routes Parlant's stores to the backends of one loaded parlant.yaml.

    One Router serves one container (one server). It is an async context manager: every
    database, pool, client and emulator it opens is closed when it exits.
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        stores: Collection[str] | None = None,
        background_pruning: bool = True,
    ) -> None:
        """`stores`: route only these (default: every store the file routes), for commands
        that need a few. `background_pruning`: run the retention's pruning task while open
        (commands that prune, or only read, turn it off)."""
        self.loaded = loaded
        self.routes: list[ResolvedRoute] = [
            route
            for route in resolve_routes(loaded.config)
            if stores is None or route.store in stores
        ]
        self._background_pruning = background_pruning
        self._stack: AsyncExitStack | None = None
        self._backends: dict[str, Backend] = {}
        self._configured = False
        self._container: Container | None = None
        self.stores: dict[str, Any] = {}
        """The routed store instances by store name, once `configure_container` has run."""
        self.databases: dict[str, DocumentDatabase] = {}
        """Each routed store's database as its backend opened it, under the read cache and
        the other wrappers (pruning deletes there)."""
        self.caches: dict[str, CachedDocumentDatabase] = {}
        """The read cache of each store that has one, by store name (for stats and tests)."""
        self.change_feeds: dict[str, ChangeFeed] = {}
        """With `server.replicas: many`: the change feed of each backend, by backend name."""

    @classmethod
    def from_file(
        cls,
        path: str | Path | None = None,
        *,
        env: str | None = None,
        overrides: Sequence[str] = (),
    ) -> Router:
        """Load parlant.yaml (see `load_config` for the defaults) and build a Router for it."""
        return cls(load_config(path, env=env, overrides=overrides))

    async def __aenter__(self) -> Router:
        if self._stack is not None:
            raise RouterError("this Router is already open")
        self._stack = AsyncExitStack()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every resource the Router opened, in reverse order (idempotent)."""
        stack, self._stack = self._stack, None
        self._configured = False
        self._container = None
        self._backends.clear()
        self.stores.clear()
        self.databases.clear()
        self.caches.clear()
        self.change_feeds.clear()
        if stack is not None:
            await stack.aclose()

    async def configure_container(self, container: Container) -> Container:
        """A clone of `container` with every routed store built and registered.

        Pass it as `p.Server(configure_container=...)`. On failure, whatever was opened
        so far is closed before the error propagates.
        """
        if self._stack is None:
            raise RouterError("open the Router first: 'async with router:'")
        if self._configured:
            raise RouterError("a Router configures one container; create one Router per server")
        self._configured = True
        c = container.clone()
        self._container = c
        try:
            await self._build(c)
        except BaseException:
            await self.aclose()
            raise
        return c

    async def configure_api(self, app: FastAPI) -> None:
        """Pass it as `p.Server(configure_api=...)`: a request carrying a value the stores
        cannot hold is answered HTTP 422 with the store's reason (`api_errors`)."""
        from parlant.core.loggers import Logger

        from parlant_router.api_errors import answer_unstorable_input

        if self._container is None:
            raise RouterError("configure the container first: configure_container(...)")
        answer_unstorable_input(app, _get(self._container, Logger))

    async def _backend(self, route: ResolvedRoute, context: BackendContext) -> Backend:
        from parlant_router.backends import open_backend

        backend = self._backends.get(route.backend_name)
        if backend is None:
            backend = await open_backend(route.backend_name, route.backend, context)
            self._backends[route.backend_name] = backend
        return backend

    async def open_backend(self, c: Container, route: ResolvedRoute) -> Backend:
        """The backend `route` is routed to, opened once per backend name (with `c`'s
        Logger) into this Router's stack: for tools that open stores one at a time."""
        from parlant.core.loggers import Logger

        from parlant_router.backends import BackendContext

        if self._stack is None:
            raise RouterError("open the Router first: 'async with router:'")
        return await self._backend(route, BackendContext(logger=_get(c, Logger), stack=self._stack))

    async def open_store(
        self,
        c: Container,
        route: ResolvedRoute,
        backend: Backend,
        *,
        allow_migration: bool,
        database: DocumentDatabase | None = None,
        durable_vectors: bool = True,
    ) -> Any:
        """Parlant's store of `route`, built as the server builds it and entered into this
        Router's stack (opening a store is what runs Parlant's migrations).

        The same backend database, table prefix or file, wrappers and store class as
        `configure_container`, with `allow_migration` instead of `server.migrate` and no
        read cache (it serves a running server's reads). `database`, when given, stands
        for the backend's database under the wrappers (a dry run's); with `durable_vectors`
        False a chroma or qdrant store keeps its vectors in memory, its files untouched.
        `c` provides Parlant's Logger, Tracer and IdGenerator, and the NLPService of a
        vector-backed store (from `server.nlp` when `c` defines none). Failures are
        RouterErrors naming the store.
        """
        if self._stack is None:
            raise RouterError("open the Router first: 'async with router:'")
        if STORES[route.store].vector_backed:
            self._ensure_nlp_service(c)
        if database is None:
            database = await backend.database(route)
        if not durable_vectors and route.vector is not None:
            route = dataclasses.replace(route, vector="transient", vector_directory=None)
        return await self._enter_store(c, route, backend, database, allow_migration=allow_migration)

    async def _build(self, c: Container) -> None:
        from parlant.core.loggers import Logger

        from parlant_router.backends import BackendContext

        assert self._stack is not None
        logger = _get(c, Logger)
        context = BackendContext(logger=logger, stack=self._stack)
        if any(STORES[r.store].vector_backed for r in self.routes):
            self._ensure_nlp_service(c)
        # Backends first, one at a time: each is opened once (one emulator, one client).
        backends = [await self._backend(route, context) for route in self.routes]
        # Stores concurrently: each waits on its own round trips (connect, DDL, loading).
        # All of them finish before a failure is raised, so none is still opening while
        # the stack closes.
        built = await asyncio.gather(
            *(self._build_store(c, r, b) for r, b in zip(self.routes, backends, strict=True)),
            return_exceptions=True,
        )
        for outcome in built:
            if isinstance(outcome, BaseException):
                raise outcome
        for route, store in zip(self.routes, built, strict=True):
            spec = STORES[route.store]
            c[_import(spec.implementation)] = store
            c[_import(spec.interface)] = store
            self.stores[route.store] = store
            cache = (
                ""
                if route.cache_max_bytes is None
                else f" (read cache {route.cache_max_bytes} bytes)"
            )
            logger.info(f"Store '{route.store}' -> {route.location}{cache}")
        await self._rebind_event_emission(c)
        self._bind_session_listener(c)
        await self._follow_other_replicas(logger)
        if self._background_pruning:
            await self._start_pruning(logger)

    async def _start_pruning(self, logger: Logger) -> None:
        from parlant_router.config.durations import format_duration
        from parlant_router.retention import PruneTask

        assert self._stack is not None
        pruner = await self.pruner(logger)
        if pruner is None:
            return
        interval = self.loaded.config.server.prune_interval
        await self._stack.enter_async_context(PruneTask(pruner, logger, interval=interval))
        logger.info(
            "Retention: "
            + ", ".join(f"{r.store} after {format_duration(r.retention)}" for r in pruner.stores)
            + f"; pruned every {format_duration(interval)}"
        )

    async def pruner(self, logger: Logger) -> Pruner | None:
        """A `Pruner` of the routed stores that have a retention (None: no store has one).

        It deletes below the read caches and tells them, and, with `server.replicas: many`,
        the other processes (through the change feed) and takes its turn through a lease on
        the sessions' backend.
        """
        from parlant_router.backends import BackendContext
        from parlant_router.retention import Pruner, RetainedStore
        from parlant_router.retention.document_pruning import DocumentPruning
        from parlant_router.retention.pruner import LEASE_SECONDS
        from parlant_router.retention.sql_pruning import SqlPruning
        from parlant_router.snowflake import SnowflakeDocumentDatabase

        if not self._configured:
            raise RouterError("configure the container first: configure_container(...)")
        retained = []
        for route in self.routes:
            rule = STORES[route.store].retention
            if route.retention is None or rule is None:
                continue
            database = self.databases[route.store]
            pruning = (
                SqlPruning(database, rule)
                if isinstance(database, SnowflakeDocumentDatabase)
                else DocumentPruning(database, rule)
            )
            retained.append(RetainedStore(route.store, route.retention, pruning))
        if not retained:
            return None
        lease = None
        if self.loaded.config.server.replicas == "many":
            # On the sessions' backend (validated: snowflake), opened here when this Router
            # routes other stores only (`parlant-router prune --stores evaluations`).
            assert self._stack is not None
            sessions = next(r for r in resolve_routes(self.loaded.config) if r.store == "sessions")
            backend = await self._backend(
                sessions, BackendContext(logger=logger, stack=self._stack)
            )
            lease = await backend.lease("prune", LEASE_SECONDS)
        return Pruner(retained, logger, lease=lease, deleted=self._forget_deleted)

    def _forget_deleted(self, store: str, collection: str, ids: Sequence[str]) -> None:
        """Drop pruned documents from this process's read cache and announce them to the
        other processes' (one announcement of the whole collection for a large batch)."""
        cache = self.caches.get(store)
        if cache is not None:
            for identifier in ids:
                cache.drop(collection, identifier)
        route = next(r for r in self.routes if r.store == store)
        feed = self.change_feeds.get(route.backend_name)
        if feed is not None:
            scope = f"{store}.{collection}"
            if len(ids) > _ANNOUNCED_ONE_BY_ONE:
                feed.record(scope, None)
            else:
                for identifier in ids:
                    feed.record(scope, identifier)

    async def _follow_other_replicas(self, logger: Logger) -> None:
        """`server.replicas: many`: wake this process's waiting clients on other processes'
        writes to their session (the caches subscribed to the feed when they were built)."""
        server = self.loaded.config.server
        if server.replicas == "one":
            logger.info("Replicas: one (this process is the only writer of its stores)")
            return
        logger.info(
            f"Replicas: many (max staleness {server.max_staleness:g} s; events appended at "
            "free offsets, session updates merged)"
        )
        store = self.stores.get("sessions")
        route = next((r for r in self.routes if r.store == "sessions"), None)
        if store is None or route is None or route.cache_max_bytes is None:
            return
        feed = await self._backends[route.backend_name].change_feed(server.max_staleness)
        assert feed is not None, "config validation puts sessions on snowflake"
        changes = store.changes

        def wake(partition: str | None) -> None:
            if partition is None:
                changes.changed_all()
            else:
                changes.changed(partition)

        for collection in ("events", "sessions"):
            feed.subscribe(f"sessions.{collection}", wake)

    def _bind_session_listener(self, c: Container) -> None:
        # Waiting clients are woken by the routed store's own writes instead of polling it.
        from parlant.core.sessions import SessionListener

        from parlant_router.stores.session_listener import NotifyingSessionListener

        store = self.stores.get("sessions")
        if store is not None and self.loaded.config.server.listener == "notify":
            c[SessionListener] = NotifyingSessionListener(store, store.changes)  # type: ignore[type-abstract]

    def _ensure_nlp_service(self, c: Container) -> None:
        # p.Server defines NLPService before configure_container runs; `parlant-server
        # --module` does so only after modules are configured. Vector stores need its
        # embedder when they open, so in that mode the file's `server.nlp` provides it.
        from parlant.core.nlp.service import NLPService

        from parlant_router.nlp import resolve_nlp_service

        if NLPService not in c.defined_types:
            try:
                factory = resolve_nlp_service(self.loaded.config.server.nlp)
            except ValueError as error:
                raise RouterError(f"server.nlp: {error}") from None
            c[NLPService] = factory(c)  # type: ignore[type-abstract]

    async def _build_store(self, c: Container, route: ResolvedRoute, backend: Backend) -> Any:
        database = self.databases[route.store] = await backend.database(route)
        if route.cache_max_bytes is not None and STORES[route.store].cache_partitions:
            database = await self._cached(route, backend, database)
        return await self._enter_store(
            c,
            route,
            backend,
            database,
            allow_migration=self.loaded.config.server.migrate,
            serving=True,
        )

    async def _enter_store(
        self,
        c: Container,
        route: ResolvedRoute,
        backend: Backend,
        database: DocumentDatabase,
        *,
        allow_migration: bool,
        serving: bool = False,
    ) -> Any:
        """Parlant's store of `route` on `database` under the durable wrappers, entered;
        `serving`: for the server (its vectors follow other replicas' writes)."""
        from parlant.core.common import IdGenerator
        from parlant.core.loggers import Logger
        from parlant.core.persistence.common import MigrationRequired, ServerOutdated

        from parlant_router.durable.create_once import CreateOnceDocumentDatabase
        from parlant_router.durable.current_version import CurrentVersionDocumentDatabase

        assert self._stack is not None
        spec = STORES[route.store]
        implementation = _import(spec.built_as or spec.implementation)
        stored = database
        version = getattr(implementation, "VERSION", None)
        if version is not None and backend.durable:
            database = CurrentVersionDocumentDatabase(database, version.to_string())
        if spec.content_ids and backend.durable:
            database = CreateOnceDocumentDatabase(
                database, store=route.store, logger=_get(c, Logger)
            )
        if spec.vector_backed:
            store = await self._vector_store(
                c, route, backend, implementation, database, allow_migration, serving=serving
            )
        else:
            parameters = inspect.signature(implementation).parameters
            kwargs: dict[str, Any] = {"database": database, "allow_migration": allow_migration}
            if "id_generator" in parameters:
                kwargs["id_generator"] = _get(c, IdGenerator)
            if "replica_safe" in parameters:
                kwargs["replica_safe"] = self.loaded.config.server.replicas == "many"
            store = implementation(**kwargs)
        try:
            return await self._stack.enter_async_context(store)
        except RouterError:
            raise
        except (MigrationRequired, ServerOutdated) as error:
            raise RouterError(
                await self._version_refusal(route, implementation, stored, error)
            ) from None
        except Exception as error:
            raise RouterError(
                f"stores.{route.store}: cannot open on backend '{route.backend_name}' "
                f"({backend.describe()}): {type(error).__name__}: {error}"
            ) from error

    async def _version_refusal(
        self,
        route: ResolvedRoute,
        implementation: Any,
        database: DocumentDatabase,
        error: Exception,
    ) -> str:
        """One line for a store Parlant refuses to open at its stored version: which
        version, which one this Parlant runs, and what to do."""
        from parlant.core.persistence.common import ServerOutdated

        stored = await _metadata_versions(database)
        shown = ", ".join(stored) if stored else "unknown"
        name = STORES[route.store].implementation.rpartition(":")[2]
        current = implementation.VERSION.to_string()
        if isinstance(error, ServerOutdated):
            return (
                f"stores.{route.store}: stored at version {shown}, newer than this Parlant's "
                f"{name} ({current}): upgrade Parlant to open it"
            )
        command = f"parlant-router migrate -c {self.loaded.path}"
        if self.loaded.env:
            command += f" -e {self.loaded.env}"
        return (
            f"stores.{route.store}: stored at version {shown} but this Parlant's {name} is "
            f"at {current}, and server.migrate is false: run `{command}` first "
            "(or set server.migrate: true)"
        )

    async def _cached(
        self, route: ResolvedRoute, backend: Backend, database: DocumentDatabase
    ) -> CachedDocumentDatabase:
        """`database` under a read cache; with `server.replicas: many`, one that publishes
        its writes to the backend's change feed and forgets what other processes wrote."""
        from parlant_router.snowflake.change_feed import UNANNOUNCED_WRITE_BOUND_SECONDS
        from parlant_router.stores.read_cache import CachedDocumentDatabase

        assert route.cache_max_bytes is not None
        spec = STORES[route.store]
        server = self.loaded.config.server
        feed = None
        if server.replicas == "many":
            feed = await backend.change_feed(server.max_staleness)
            if feed is not None:
                self.change_feeds[route.backend_name] = feed
            else:
                raise RouterError(
                    f"stores.{route.store}: backend '{route.backend_name}' has no change feed; "
                    "with server.replicas: many its read cache would go stale"
                )
        # Under the wrappers: CreateOnce's existence checks are then answered from it too.
        cached = self.caches[route.store] = CachedDocumentDatabase(
            database,
            partitions=spec.cache_partitions,
            max_bytes=route.cache_max_bytes,
            observer=None if feed is None else feed.recorder(route.store),
            max_age=None if feed is None else UNANNOUNCED_WRITE_BOUND_SECONDS,
        )
        if feed is not None:
            for collection in spec.cache_partitions:
                feed.subscribe(f"{route.store}.{collection}", _dropper(cached, collection))
        return cached

    async def _vector_store(
        self,
        c: Container,
        route: ResolvedRoute,
        backend: Backend,
        implementation: Any,
        database: Any,
        allow_migration: bool,
        *,
        serving: bool,
    ) -> Any:
        from parlant.core.common import IdGenerator
        from parlant.core.loggers import Logger
        from parlant.core.nlp.embedding import (
            Embedder,
            EmbedderFactory,
            EmbeddingCache,
            NullEmbeddingCache,
        )
        from parlant.core.nlp.service import NLPService
        from parlant.core.tracer import Tracer

        from parlant_router.durable.vectors import VectorContext, open_vector_database

        assert self._stack is not None

        async def embedder_type() -> type[Embedder]:
            return type(await _get(c, NLPService).get_embedder())

        null_cache = NullEmbeddingCache()

        def embedding_cache() -> EmbeddingCache:
            # Parlant defines its cache after configure_container: a startup rebuild of
            # vectors runs without it, everything after uses it.
            if EmbeddingCache in c.defined_types:
                cache: EmbeddingCache = _get(c, EmbeddingCache)
                return cache
            return null_cache

        embedder_factory = EmbedderFactory(c)
        server = self.loaded.config.server
        # Under replicas: many each process keeps the vectors in memory: they follow the
        # others' writes through the backend's change feed (None on backends without one).
        announcements = (
            await backend.change_feed(server.max_staleness)
            if serving and server.replicas == "many"
            else None
        )
        vector_db = await open_vector_database(
            route,
            documents=database,
            documents_durable=backend.durable,
            context=VectorContext(
                logger=_get(c, Logger),
                tracer=_get(c, Tracer),
                embedder_factory=embedder_factory,
                embedding_cache_provider=embedding_cache,
                stack=self._stack,
                announcements=announcements,
            ),
        )
        return implementation(
            id_generator=_get(c, IdGenerator),
            vector_db=vector_db,
            document_db=database,
            embedder_type_provider=embedder_type,
            embedder_factory=embedder_factory,
            allow_migration=allow_migration,
        )

    async def _rebind_event_emission(self, c: Container) -> None:
        # Events the engine and tool services emit must land in the routed session store.
        # Bound lazily: under `parlant-server` the stores that are not routed are defined
        # only after configure_container, in this same container.
        from lagom import Singleton
        from parlant.core.agents import AgentStore
        from parlant.core.emission.event_publisher import EventPublisherFactory
        from parlant.core.emissions import EventEmitterFactory
        from parlant.core.sessions import SessionStore

        routed = {r.store for r in self.routes}
        if not routed & {"sessions", "agents"}:
            return
        c[EventEmitterFactory] = Singleton(  # type: ignore[type-abstract]
            lambda: EventPublisherFactory(
                agent_store=_get(c, AgentStore), session_store=_get(c, SessionStore)
            )
        )
        if "sessions" in routed:
            await self._rebind_service_registry(c)

    async def _rebind_service_registry(self, c: Container) -> None:
        # p.Server builds its ServiceRegistry before configure_container, around the
        # event emitter factory of its own in-memory session store: tool services would
        # emit into that store. Give the container one around the routed factory.
        from parlant.adapters.db.transient import TransientDocumentDatabase
        from parlant.core.emissions import EventEmitterFactory
        from parlant.core.loggers import Logger
        from parlant.core.nlp.service import NLPService
        from parlant.core.services.tools.service_registry import (
            ServiceDocumentRegistry,
            ServiceRegistry,
        )
        from parlant.core.tracer import Tracer

        if ServiceRegistry not in c.defined_types:
            return  # parlant-server builds it later from this container's factory
        assert self._stack is not None
        registry = await self._stack.enter_async_context(
            ServiceDocumentRegistry(
                database=TransientDocumentDatabase(),
                event_emitter_factory=_get(c, EventEmitterFactory),
                logger=_get(c, Logger),
                tracer=_get(c, Tracer),
                nlp_services_provider=lambda: {"__nlp__": _get(c, NLPService)},
                allow_migration=False,
            )
        )
        c[ServiceRegistry] = registry  # type: ignore[type-abstract]

    def server(self) -> AbstractAsyncContextManager[p.Server]:
        """`p.Server` configured from the file's `server:` section, with this Router's stores.

        Binds `PARLANT_HOME` to `server.home` (a sub-directory for NLP services that are not
        Parlant's, see parlant_router.nlp.home) and closes the Router when the server exits.
        """
        return _server(self)


async def _metadata_versions(database: DocumentDatabase) -> list[str]:
    """The versions in a store's `metadata` collection (Parlant keeps one document); empty
    when it cannot be read."""
    from parlant.core.persistence.document_database import BaseDocument, identity_loader

    try:
        metadata = await database.get_collection("metadata", BaseDocument, identity_loader)
        documents = list(await metadata.find({}))
    except Exception:
        return []  # the refusal stands without the version it would name
    return sorted({str(document.get("version")) for document in documents})


#: Pruned ids of one batch announced one by one at most; beyond, the whole collection is.
_ANNOUNCED_ONE_BY_ONE = 256


def _dropper(cached: CachedDocumentDatabase, collection: str) -> Callable[[str | None], None]:
    """Forgets what another process wrote to `collection` (a change feed subscriber)."""

    def drop(partition: str | None) -> None:
        cached.drop(collection, partition)

    return drop


def _log_level(name: str) -> Any:
    from parlant.core.loggers import LogLevel

    return {
        "trace": LogLevel.TRACE,
        "debug": LogLevel.DEBUG,
        "info": LogLevel.INFO,
        "warning": LogLevel.WARNING,
        "error": LogLevel.ERROR,
        "critical": LogLevel.CRITICAL,
    }[name]


@asynccontextmanager
async def _server(router: Router) -> AsyncIterator[p.Server]:
    from parlant_router.nlp import bind_parlant_home, nlp_home, resolve_nlp_service

    settings = router.loaded.config.server
    try:
        bind_parlant_home(nlp_home(settings.home, settings.nlp))
    except OSError as error:
        raise RouterError(f"server.home: cannot use {settings.home}: {error.strerror}") from None
    try:
        nlp_service = resolve_nlp_service(settings.nlp)
    except ValueError as error:
        raise RouterError(f"server.nlp: {error}") from None

    import parlant.sdk as p

    async with (
        router,
        p.Server(
            host=settings.host,
            port=settings.port,
            tool_service_port=settings.tool_service_port,
            nlp_service=nlp_service,
            log_level=_log_level(settings.log_level),
            modules=list(settings.modules),
            migrate=settings.migrate,
            configure_container=router.configure_container,
            configure_api=router.configure_api,
        ) as server,
    ):
        yield server


async def run_server(loaded: LoadedConfig) -> None:
    """Serve `loaded` until SIGTERM or SIGINT, then shut down cleanly.

    While it serves, uvicorn takes the signal (graceful HTTP shutdown) and re-raises it
    when done. Both then reach the handler installed here, which cancels the main task,
    as asyncio does for SIGINT: Parlant's shutdown path expects that cancellation (without
    it, it waits forever for its background tasks), and SIGTERM gets the same clean
    shutdown as Ctrl-C instead of the default immediate death. The stacks then unwind:
    Parlant's stores, then the Router's databases, pools and emulator. A signal during
    startup cancels the startup, which closes whatever was already open. Further signals
    are ignored so that they cannot cut the shutdown short.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    signalled = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal signalled
        if not signalled:
            signalled = True
            loop.call_soon_threadsafe(main.cancel)

    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        async with Router(loaded).server():
            pass  # p.Server serves when its block ends, until the signal
    except asyncio.CancelledError:
        if not signalled:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
