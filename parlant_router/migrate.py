"""`parlant-router migrate`: run the migrations of every routed store once, explicitly.

Each routed store is opened exactly as the server opens it (`Router.open_store`: the same
backend, table prefix or file, durable wrappers and Parlant store class), with
`allow_migration=True`: opening a store is what runs Parlant's migrations, through its
own loaders, and moves its metadata to the store's version. Then everything is closed.
So a deployment migrates once, before it rolls out replicas that run with
`server.migrate: false`.

Vector-backed stores (journeys, glossary, canned_responses, capabilities) open as the
router opens them, so they need the NLP service of `server.nlp` (its embedder): with
`vector: transient` their mirrored vector documents are migrated and re-embedded, as at
every server start.

What is reported, per store, collection and stored version, comes from the databases:
`SnowflakeDocumentDatabase` tells its `migration_observer` (a group of documents it
leaves unread counts whole), any other database is observed through the loaders it runs
on each document.

`dry_run=True` writes nothing where the data lives (an emulator still starts, with its lock
files). Each store opens on a `DryRunDocumentDatabase` (`durable/dry_run.py`):
every collection the store opens is planned from the stored documents and handed to the
store in memory (Parlant's TransientDocumentDatabase), so the store's own open proceeds
(its metadata check included) while its writes land in memory only:

- Snowflake: `SnowflakeDocumentDatabase.plan_migration` reads what the open would read
  (one row per stored version, and every document of the versions the loader changes or
  rejects, in pages) and runs the store's loader on them, writing nothing. The counts
  are then the ones a migration would write, not guesses from one sample per version.
  The in-memory collections hold the store's `metadata` document only: the others start
  empty, which a store's open does not read (it creates indexes and its metadata).
- JSON: the store file is read (never opened through the adapter, which saves on close)
  and the loader runs on each document in memory.
- MongoDB and custom backends are not planned: Parlant's MongoDB adapter rewrites
  documents when it opens a collection, and a custom one may too.
- chroma and qdrant vectors stay in memory: their files are not opened.

Transient backends hold nothing between starts: there is nothing to migrate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from parlant_router.config.loading import LoadedConfig
from parlant_router.config.routes import ResolvedRoute, resolve_routes
from parlant_router.config.secrets import backend_secrets
from parlant_router.config.store_selection import selected_stores
from parlant_router.errors import describe_exception
from parlant_router.snowflake.identifiers import failed_table_name
from parlant_router.snowflake.migration_report import Outcome

if TYPE_CHECKING:
    from lagom import Container
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.backends import Backend
    from parlant_router.router import Router

ProgressObserver = Callable[[str, int, int], None]
"""Called with (table, documents done, documents to do) as a migration reads its pages."""

_MAX_REASON = 300
_NOT_PLANNED = {
    "mongodb": "Parlant's MongoDB adapter rewrites documents when it opens a collection",
    "custom": "a custom backend may write when it opens a collection",
}


@dataclass(frozen=True)
class MigrationRow:
    """One line of the report: documents of one stored version of one collection."""

    store: str
    collection: str
    version: str
    """The stored version as shown: `0.8.0`, `missing`, or a JSON text (`3`, `null`)."""
    documents: int
    outcome: str


@dataclass
class StoreReport:
    """What `migrate` did (or, in a dry run, would do) to one routed store."""

    store: str
    backend: str
    rows: list[MigrationRow] = field(default_factory=list)
    error: str | None = None
    """One line, secret-free, when the store could not be opened (or planned)."""
    note: str | None = None
    """Why the store was not opened at all (nothing stored, or not plannable)."""

    @property
    def changed(self) -> bool:
        """Whether any document or the store's metadata was (or would be) written."""
        return any(row.outcome != "unchanged" for row in self.rows)


class _Tally:
    """A store's `MigrationObserver`: documents by (collection, stored version, outcome)."""

    def __init__(self, progress: ProgressObserver | None) -> None:
        self.counts: dict[tuple[str, str | None, Outcome], int] = {}
        self._progress = progress

    def counted(
        self, collection: str, version: str | None, outcome: Outcome, documents: int
    ) -> None:
        key = (collection, version, outcome)
        self.counts[key] = self.counts.get(key, 0) + documents

    def progress(self, table: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(table, done, total)


async def migrate_stores(
    loaded: LoadedConfig,
    *,
    dry_run: bool = False,
    stores: Sequence[str] | None = None,
    progress: ProgressObserver | None = None,
) -> list[StoreReport]:
    """Open every routed store (or those named in `stores`) with migration allowed, one at
    a time; one StoreReport each, in route order. A store that fails does not stop the
    others. `ConfigError` for a name in `stores` that is not a routed store."""
    routes = _selected(resolve_routes(loaded.config), stores)
    if not routes:
        return []
    _bind_home(loaded)

    from parlant_router.router import Router

    secret_values = backend_secrets(loaded.config)
    reports: list[StoreReport] = []
    backend_errors: dict[str, str] = {}
    async with Router(loaded) as router:
        c = _container()
        for route in routes:
            reports.append(
                await _migrate_store(
                    router, c, route, dry_run, progress, backend_errors, secret_values
                )
            )
    return reports


def _selected(routes: list[ResolvedRoute], stores: Sequence[str] | None) -> list[ResolvedRoute]:
    names = selected_stores(
        [route.store for route in routes],
        stores,
        unavailable="is not routed in the config (it keeps Parlant's default)",
    )
    return [route for route in routes if route.store in names]


def _bind_home(loaded: LoadedConfig) -> None:
    from parlant_router.nlp import bind_command_home

    bind_command_home(loaded.config.server.home, loaded.config.server.nlp, "migrate")


def _container() -> Container:
    """What Parlant's stores and the offline NLP service need of a server's container."""
    from lagom import Container
    from parlant.core.common import IdGenerator
    from parlant.core.loggers import Logger, LogLevel, StdoutLogger
    from parlant.core.meter import LocalMeter, Meter
    from parlant.core.tracer import LocalTracer, Tracer

    c = Container()
    tracer = LocalTracer()
    # Errors only (on stderr): the report says what happened; a failed document's reason
    # is an error line of its own.
    logger = StdoutLogger(tracer, LogLevel.ERROR, logger_id="parlant-router migrate")
    c[Tracer] = tracer  # type: ignore[type-abstract]
    c[Logger] = logger  # type: ignore[type-abstract]
    c[Meter] = LocalMeter(logger)  # type: ignore[type-abstract]
    c[IdGenerator] = IdGenerator()
    return c


async def _migrate_store(
    router: Router,
    c: Container,
    route: ResolvedRoute,
    dry_run: bool,
    progress: ProgressObserver | None,
    backend_errors: dict[str, str],
    secret_values: list[str],
) -> StoreReport:
    report = StoreReport(route.store, route.backend_name)
    kind = route.backend.type
    if kind == "transient":
        report.note = "nothing stored (transient backend)"
        return report
    if dry_run and kind in _NOT_PLANNED:
        report.note = f"not planned: {_NOT_PLANNED[kind]}"
        return report
    if route.backend_name in backend_errors:
        report.error = backend_errors[route.backend_name]
        return report
    try:
        backend = await router.open_backend(c, route)
    except Exception as error:
        report.error = backend_errors[route.backend_name] = _reason(error, secret_values)
        return report
    tally = _Tally(progress)
    try:
        database = await _database(route, backend, tally, dry_run)
        store = await router.open_store(
            c,
            route,
            backend,
            allow_migration=True,
            database=database,
            durable_vectors=not dry_run,
        )
    except Exception as error:
        report.error = _reason(error, secret_values)
        return report
    report.rows = _rows(route, tally, type(store).VERSION.to_string(), dry_run)
    return report


def _reason(error: BaseException, secret_values: list[str]) -> str:
    return describe_exception(error, secrets=secret_values, limit=_MAX_REASON)


async def _database(
    route: ResolvedRoute, backend: Backend, tally: _Tally, dry_run: bool
) -> DocumentDatabase:
    """The database the store opens on: the backend's, observed; or a dry run's (see the
    module)."""
    from parlant_router.backends.json_atomic import read_store_file
    from parlant_router.durable.dry_run import (
        DryRunDocumentDatabase,
        RecordingDocumentDatabase,
        SnowflakeSource,
        StoredDocumentsSource,
    )
    from parlant_router.snowflake import SnowflakeDocumentDatabase

    if dry_run and route.json_file is not None:
        # Read, not opened through the adapter: Parlant's saves the file when it closes.
        path = route.json_file
        collections = read_store_file(path)[1] if path.exists() else {}
        return DryRunDocumentDatabase(StoredDocumentsSource(collections, tally))
    inner = await backend.database(route)
    if isinstance(inner, SnowflakeDocumentDatabase):
        inner.migration_observer = tally
        return DryRunDocumentDatabase(SnowflakeSource(inner)) if dry_run else inner
    return RecordingDocumentDatabase(inner, tally)


def _rows(route: ResolvedRoute, tally: _Tally, current: str, dry_run: bool) -> list[MigrationRow]:
    """The report's rows: the store's version first (its `metadata` collection), then each
    collection's stored versions in the order the store opened them."""
    rows: list[MigrationRow] = []
    current_key = json.dumps(current)
    metadata = {k[1]: n for k, n in tally.counts.items() if k[0] == "metadata"}
    if not metadata:
        outcome = f"{'would create' if dry_run else 'created'} at {current}"
        rows.append(MigrationRow(route.store, "metadata", "none", 0, outcome))
    for version, count in sorted(metadata.items(), key=lambda item: str(item[0])):
        if version == current_key:
            outcome = "unchanged"
        else:
            outcome = f"{'would migrate' if dry_run else 'migrated'} to {current}"
        rows.append(MigrationRow(route.store, "metadata", _shown(version), count, outcome))
    others = [(k, n) for k, n in tally.counts.items() if k[0] != "metadata"]
    order = {name: index for index, name in enumerate(dict.fromkeys(k[0] for k, _ in others))}
    for (collection, version, outcome_), count in sorted(
        others, key=lambda item: (order[item[0][0]], str(item[0][1]), item[0][2].kind)
    ):
        rows.append(
            MigrationRow(
                route.store,
                collection,
                _shown(version),
                count,
                _outcome_text(route, collection, outcome_, dry_run),
            )
        )
    return rows


def _outcome_text(route: ResolvedRoute, collection: str, outcome: Outcome, dry_run: bool) -> str:
    if outcome.kind == "unchanged":
        return "unchanged"
    if outcome.kind == "migrated":
        return f"{'would migrate' if dry_run else 'migrated'} to {_shown(outcome.version)}"
    place = _failed_place(route, collection)
    return f"would fail → {place}" if dry_run else f"failed → moved to {place}"


def _failed_place(route: ResolvedRoute, collection: str) -> str:
    """Where the adapter of `route` keeps the documents of `collection` it failed to load."""
    if route.backend.type == "snowflake" and route.table_prefix is not None:
        return failed_table_name(route.table_prefix, collection)
    if route.json_file is not None:
        return f"failed_migrations in {route.json_file}"
    # MongoDB and custom adapters name it themselves.
    return "the adapter's failed-migrations collection"


def _shown(version: str | None) -> str:
    """A stored version as the report shows it (see `MigrationRow.version`)."""
    if version is None:
        return "missing"
    value = json.loads(version)
    return value if isinstance(value, str) else version


class _RateColumn(ProgressColumn):
    """Documents per second of a task, once rich has measured it."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} docs/s")


class ProgressDisplay:
    """Shows a migration's progress on `console` (stderr): on a terminal one rich bar per
    table (documents done of total, documents/s, time left); elsewhere one plain line per
    page read. A context manager; call it as the `progress` of `migrate_stores` (`copy`,
    `export` and `import` call it per store, with their own `verb`)."""

    def __init__(self, console: Console, *, dry_run: bool, verb: str | None = None) -> None:
        self._console = console
        self._verb = verb or ("Reading" if dry_run else "Migrating")
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressDisplay:
        if self._console.is_terminal:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, table: str, done: int, total: int) -> None:
        if self._bars is None:
            self._console.print(
                f"{self._verb} {table}: {done:,} of {total:,} documents", highlight=False
            )
            return
        task = self._tasks.get(table)
        if task is None:
            # The table alone: with the counts, the rate and the time left, a line of 80.
            task = self._tasks[table] = self._bars.add_task(table, total=total)
        self._bars.update(task, completed=done, total=total)
