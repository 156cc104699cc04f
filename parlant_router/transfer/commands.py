"""`copy`, `export` and `import`: which stores move, from where to where.

Each side is a set of store endpoints: the routed stores of a config (snowflake and json
backends), a plain `parlant-server` home (`--from-parlant-home`: its JSON files), or an
export directory. Stores move one at a time (`copier.copy_store`); the first refused or
failing store stops the command with one line (exit 2), the stores before it are done and
verified, and running the command again resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from parlant_router.backends.base import Backend
from parlant_router.config.loading import LoadedConfig
from parlant_router.config.routes import ResolvedRoute, resolve_routes
from parlant_router.config.store_selection import selected_stores
from parlant_router.transfer.copier import Mode, Progress, StoreOutcome, copy_store
from parlant_router.transfer.endpoints import StoreDestination, StoreSource
from parlant_router.transfer.errors import TransferError
from parlant_router.transfer.export_directory import (
    ExportedStore,
    export_directory_problem,
    read_manifest,
)
from parlant_router.transfer.json_file import JsonFileStore, parlant_home_files

#: Why a store named in `--stores` cannot move.
NOT_ON_BOTH_SIDES = "is not on both sides (available: {available})"


@dataclass
class RoutedStores:
    """Opens the routed stores of one config as endpoints (their backends once each)."""

    loaded: LoadedConfig
    stack: AsyncExitStack
    opened: dict[str, Backend] = field(default_factory=dict)
    """Backends opened so far, by their settings: a source and a destination on one
    backend (two prefixes of one account or emulator) share it, as one server would."""

    def __post_init__(self) -> None:
        self.routes = {r.store: r for r in resolve_routes(self.loaded.config)}

    async def endpoint(self, store: str) -> StoreDestination:
        route = self.routes[store]
        kind = route.backend.type
        if route.vector in ("chroma", "qdrant"):
            raise TransferError(
                f"stores.{store}: its vectors are kept by {route.vector} in "
                f"{route.vector_directory}, which copy does not read or write; route it with "
                "vector: snowflake or transient on both sides"
            )
        if kind == "json":
            assert route.json_file is not None
            return JsonFileStore(store, route.json_file)
        if kind == "snowflake":
            from parlant_router.snowflake import SnowflakeDocumentDatabase
            from parlant_router.transfer.snowflake_endpoint import SnowflakeStore, describe

            backend = await self._backend(route)
            database = await backend.database(route)
            assert isinstance(database, SnowflakeDocumentDatabase)
            # Another store's longer prefix (PARLANT_SESSIONS_ under PARLANT_) names
            # tables that are not this store's.
            others = [
                r.table_prefix
                for r in self.routes.values()
                if r.backend_name == route.backend_name
                and r.store != store
                and r.table_prefix is not None
            ]
            store_endpoint: StoreDestination = SnowflakeStore(
                store,
                database,
                describe(database, backend.describe()),
                other_prefixes=others,
            )
            return store_endpoint
        if kind == "transient":
            raise TransferError(
                f"stores.{store}: backend '{route.backend_name}' is transient (memory): it "
                "holds nothing to copy, and nothing copied to it would last"
            )
        raise TransferError(
            f"stores.{store}: backend '{route.backend_name}' is {kind}; copy, export and "
            "import move snowflake and json stores"
        )

    async def _backend(self, route: ResolvedRoute) -> Backend:
        key = route.backend.model_dump_json()
        if key not in self.opened:
            from parlant.core.loggers import LogLevel, StdoutLogger
            from parlant.core.tracer import LocalTracer

            from parlant_router.backends import BackendContext, open_backend

            logger = StdoutLogger(LocalTracer(), LogLevel.ERROR, logger_id="parlant-router copy")
            try:
                self.opened[key] = await open_backend(
                    route.backend_name,
                    route.backend,
                    BackendContext(logger=logger, stack=self.stack),
                )
            except Exception as error:
                from parlant_router.config.secrets import backend_secrets
                from parlant_router.errors import ParlantRouterError, describe_exception

                reason = describe_exception(
                    error,
                    secrets=backend_secrets(self.loaded.config),
                    with_type=not isinstance(error, ParlantRouterError),
                )
                prefix = f"backends.{route.backend_name}: "
                raise TransferError(
                    reason if reason.startswith(prefix) else f"{prefix}cannot open: {reason}"
                ) from None
        return self.opened[key]


async def _run(
    stores: Sequence[str],
    source_of: Callable[[str], Awaitable[StoreSource]],
    destination_of: Callable[[str], Awaitable[StoreDestination]],
    *,
    mode: Mode,
    dry_run: bool,
    progress: Progress | None,
) -> list[StoreOutcome]:
    outcomes: list[StoreOutcome] = []
    for store in stores:
        source = await source_of(store)
        destination = await destination_of(store)
        if source.description == destination.description:
            raise TransferError(
                f"stores.{store}: the source and the destination are the same "
                f"({source.description})"
            )
        outcomes.append(
            await copy_store(source, destination, mode=mode, dry_run=dry_run, progress=progress)
        )
    return outcomes


async def copy_between_configs(
    source: LoadedConfig | Path,
    destination: LoadedConfig,
    *,
    only: Collection[str] | None,
    mode: Mode,
    dry_run: bool,
    progress: Progress | None = None,
) -> list[StoreOutcome]:
    """`parlant-router copy`: from the routed stores of `source` (or a plain Parlant home
    directory) to those of `destination`."""
    async with AsyncExitStack() as stack:
        to = RoutedStores(destination, stack)
        if isinstance(source, Path):
            if not source.is_dir():
                raise TransferError(f"{source}: no such directory (--from-parlant-home)")
            files = parlant_home_files()
            available = [s for s in to.routes if s in files and (source / files[s]).exists()]
            if not available:
                raise TransferError(
                    f"{source}: no Parlant store file here ({', '.join(sorted(set(files.values())))})"
                )

            async def source_of(store: str) -> StoreSource:
                return JsonFileStore(store, source / files[store])
        else:
            origin = RoutedStores(source, stack, to.opened)
            available = [s for s in origin.routes if s in to.routes]
            source_of = origin.endpoint
        return await _run(
            selected_stores(available, only, unavailable=NOT_ON_BOTH_SIDES),
            source_of,
            to.endpoint,
            mode=mode,
            dry_run=dry_run,
            progress=progress,
        )


async def export_stores(
    loaded: LoadedConfig,
    directory: Path,
    *,
    only: Collection[str] | None,
    replace: bool,
    dry_run: bool,
    progress: Progress | None = None,
) -> list[StoreOutcome]:
    """`parlant-router export DIR`."""
    problem = export_directory_problem(directory)
    if problem is not None:
        raise TransferError(problem)
    from importlib.metadata import version

    async with AsyncExitStack() as stack:
        origin = RoutedStores(loaded, stack)

        async def destination_of(store: str) -> StoreDestination:
            return ExportedStore(store, directory, parlant_version=version("parlant"))

        return await _run(
            selected_stores(list(origin.routes), only, unavailable=NOT_ON_BOTH_SIDES),
            origin.endpoint,
            destination_of,
            mode="replace" if replace else "refuse",
            dry_run=dry_run,
            progress=progress,
        )


async def import_stores(
    loaded: LoadedConfig,
    directory: Path,
    *,
    only: Collection[str] | None,
    mode: Mode,
    dry_run: bool,
    progress: Progress | None = None,
) -> list[StoreOutcome]:
    """`parlant-router import DIR`."""
    exported = list(read_manifest(directory)["stores"])
    async with AsyncExitStack() as stack:
        to = RoutedStores(loaded, stack)

        async def source_of(store: str) -> StoreSource:
            return ExportedStore(store, directory)

        return await _run(
            selected_stores(
                [s for s in exported if s in to.routes], only, unavailable=NOT_ON_BOTH_SIDES
            ),
            source_of,
            to.endpoint,
            mode=mode,
            dry_run=dry_run,
            progress=progress,
        )
