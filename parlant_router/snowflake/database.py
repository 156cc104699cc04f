"""``SnowflakeDocumentDatabase``: a drop-in for ``parlant.adapters.db.snowflake_db``'s class.

Same constructor (plus keyword extras), same tables (``<PREFIX><NAME>`` and
``<PREFIX><NAME>_FAILED_MIGRATIONS``, columns ID, VERSION, CREATION_UTC, DATA VARIANT), so
tables written by the upstream adapter open here unchanged. What differs is underneath:
filters, sorting and paging run in SQL; a pool of connections serves operations in parallel;
transient failures are retried; opening a collection reads only the versions its loader may
change, and migrations write in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

from parlant.core.loggers import Logger
from parlant.core.persistence.document_database import (
    BaseDocument,
    CollectionIndex,
    DocumentDatabase,
    TDocument,
)
from typing_extensions import Self

from parlant_router.snowflake.collection import (
    SnowflakeDocumentCollection,
    encode,
)
from parlant_router.snowflake.credentials import SnowflakeCredentials
from parlant_router.snowflake.errors import SnowflakeConfigurationError, SnowflakeOperationError
from parlant_router.snowflake.identifiers import (
    failed_table_name,
    quote_identifier,
    sanitize_identifier,
    table_name,
)
from parlant_router.snowflake.migration_report import (
    UNCHANGED,
    MigrationObserver,
    outcome_of,
    version_key,
)
from parlant_router.snowflake.pool import ConnectionPool
from parlant_router.snowflake.retry import RetryPolicy
from parlant_router.snowflake.runner import StatementRunner, Statements, describe_error
from parlant_router.snowflake.sql import (
    COLUMNS,
    PARAMSTYLE,
    Params,
    field_path,
    statement_bytes,
)

T = TypeVar("T")

TableType = Literal["standard", "hybrid"]
DocumentLoader = Callable[[BaseDocument], Awaitable[TDocument | None]]

#: Upper bound on one batched statement: its text plus its bound values, in UTF-8 bytes.
#: Values are bound server-side, yet Snowflake's 1 MB limit on a statement "also applies when
#: binding values" (docs.snowflake.com/en/user-guide/query-size-limits): both count.
MAX_BATCH_BYTES = 800_000
#: Snowflake accepts at most 16,384 expressions in one list: rows of a VALUES clause, items
#: of an IN list (SQL compilation error 001795).
MAX_BATCH_ROWS = 10_000
#: Upper bound on the values bound to one batched statement. Snowflake documents no limit on
#: the number of bind variables in a statement; as a precaution this borrows the limit it does
#: enforce on lists. At 5 values a row, it holds a batch to 3,276 rows.
MAX_BATCH_BINDS = 16_384
_BINDS_PER_ROW = 5

#: Rows one read of a migration fetches at most.
MIGRATION_PAGE_ROWS = 5_000
#: Characters of JSON one read of a migration fetches at most, beyond its first row (at most
#: ``MAX_DOCUMENT_BYTES``): with ``MIGRATION_PAGE_ROWS``, what a migration holds in memory.
MIGRATION_PAGE_CHARS = 4_000_000

_ALL_COLUMNS = ("ID", "VERSION", "CREATION_UTC", "DATA")
#: A document's version as its JSON text; NULL where the field is missing. Loaders read the
#: field, not the VERSION column, and the text tells "1" from 1.
_VERSION_JSON = "TO_JSON(DATA['version'])"


class SnowflakeDocumentDatabase(DocumentDatabase):
    """Parlant documents in Snowflake tables; an async context manager.

    Args:
        logger: Parlant's logger.
        connection_params: keyword arguments for ``snowflake.connector.connect`` (upstream's
            argument). Mutually exclusive with ``credentials``. With neither, the connection
            comes from the ``SNOWFLAKE_*`` environment variables, read as Parlant's upstream
            adapter reads them (``SnowflakeCredentials.from_env``).
            ``paramstyle`` is always ``numeric``: values are bound server-side (see ``sql.py``).
        table_prefix: prefix of every table name (default ``PARLANT_``), sanitized upper-case.
        connection_factory: called with the connection kwargs instead of
            ``snowflake.connector.connect`` (upstream's argument; useful for wrappers). It
            must hand every kwarg to the connector, ``paramstyle="numeric"`` included.
        credentials: a ``SnowflakeCredentials``; its kwargs are rebuilt at every connect, so
            token files are re-read on reconnect.
        pool_size: connections opened at most (lazily); operations beyond it wait.
        connection_wait_timeout: seconds an operation waits for a free connection before
            failing with ``ConnectionWaitTimeout`` (not retried).
        table_type: ``standard`` or ``hybrid`` (real primary key and indexes; falls back to
            standard, saying so once, where hybrid tables are unavailable).
        retry: the retry policy for transient failures.

    Attributes:
        migration_observer: told, when a collection is opened with a loader, how many
            documents of each stored version were kept, migrated or failed, and the progress
            of the pages a migration reads and writes (``MigrationObserver``). None (the
            default) tells nothing; the log lines of a migration are written either way. A
            database made by ``with_table_prefix`` starts with this one's observer.
    """

    migration_observer: MigrationObserver | None = None

    def __init__(
        self,
        logger: Logger,
        connection_params: Mapping[str, Any] | None = None,
        *,
        table_prefix: str | None = None,
        connection_factory: Callable[[Mapping[str, Any]], Any] | None = None,
        credentials: SnowflakeCredentials | None = None,
        pool_size: int = 4,
        connection_wait_timeout: float = 30.0,
        table_type: TableType | str = "standard",
        retry: RetryPolicy | None = None,
    ) -> None:
        if connection_params is not None and credentials is not None:
            raise SnowflakeConfigurationError(
                "SnowflakeDocumentDatabase: pass connection_params or credentials, not both"
            )
        if table_type not in ("standard", "hybrid"):
            raise SnowflakeConfigurationError(
                f"SnowflakeDocumentDatabase: table_type must be 'standard' or 'hybrid', got {table_type!r}"
            )
        self._logger = logger
        if connection_params is not None:
            fixed = dict(connection_params)
            self._connect_kwargs: Callable[[], dict[str, Any]] = lambda: dict(fixed)
            self._location = _location(fixed)
            self._auth: str | None = None
        else:
            resolved = credentials if credentials is not None else SnowflakeCredentials.from_env()
            self._connect_kwargs = resolved.to_connect_kwargs
            self._location = _location({"database": resolved.database, "schema": resolved.schema})
            self._auth = resolved.method
        self._connection_factory = connection_factory
        self.table_prefix = sanitize_identifier(table_prefix) if table_prefix else "PARLANT_"
        self.table_type: TableType = "hybrid" if table_type == "hybrid" else "standard"
        self._pool = ConnectionPool(self._connect, pool_size, connection_wait_timeout)
        self._owns_pool = True
        self._runner = StatementRunner(self._pool, retry or RetryPolicy(), logger)
        self._forget_collections()

    def _forget_collections(self) -> None:
        # Everything that depends on the table prefix.
        self._collections: dict[str, SnowflakeDocumentCollection[Any]] = {}
        self._open_locks: dict[str, asyncio.Lock] = {}
        self._catalog: dict[str, set[str]] | None = None
        self._catalog_lock: asyncio.Lock | None = None

    def with_table_prefix(self, table_prefix: str) -> SnowflakeDocumentDatabase:
        """A database with its own table prefix on this one's connections.

        It shares the pool, the retry policy and the statement counter, so every store
        routed to one Snowflake backend draws on one set of connections. Leaving its
        context does not close them: they belong to this database, which must stay open
        at least as long.
        """
        sibling = copy.copy(self)
        sibling.table_prefix = sanitize_identifier(table_prefix)
        sibling._owns_pool = False
        sibling._forget_collections()
        return sibling

    @property
    def statements_sent(self) -> int:
        """Statements sent to Snowflake so far by this database (DDL, queries, DML)."""
        return self._runner.counter.value

    @property
    def pool_size(self) -> int:
        return self._pool.size

    @property
    def location(self) -> str:
        """``DATABASE.SCHEMA`` of the connection, for messages (what is known of it)."""
        return self._location

    async def tables(self) -> list[str]:
        """The tables whose name starts with this database's prefix in the current schema,
        sorted: its catalog, read with one query at first use, then kept up to date by its own
        creates and drops (not by other processes')."""
        return sorted(await self._load_catalog())

    async def run(self, operation: str, table: str, work: Callable[[Statements], T]) -> T:
        """Run `work` as one retried operation on this database's connections, counted like
        every statement here (for components with tables of their own: the change feed)."""
        return await self._runner.run(operation, table, work)

    async def _execute(
        self, operation: str, table: str, sql: str, params: Sequence[Any] | None = None
    ) -> int:
        """Run one statement as its own retried operation."""

        def work(statements: Statements) -> int:
            return statements.execute(sql, params)

        return await self._runner.run(operation, table, work)

    def _connect(self) -> Any:
        kwargs = self._connect_kwargs()
        # Every statement here binds its values server-side, as :1, :2, ... (see sql.py).
        kwargs["paramstyle"] = PARAMSTYLE
        if self._connection_factory is None:
            import snowflake.connector

            return snowflake.connector.connect(**kwargs)
        connection = self._connection_factory(kwargs)
        if getattr(connection, "is_pyformat", False) is True:
            # A factory that dropped the kwarg: values would be formatted into the text.
            with contextlib.suppress(Exception):
                connection.close()
            raise SnowflakeConfigurationError(
                "SnowflakeDocumentDatabase: the connection_factory returned a connection in the "
                f"pyformat paramstyle; pass every kwarg through (paramstyle={PARAMSTYLE!r})"
            )
        return connection

    async def __aenter__(self) -> Self:
        # Connect now: bad credentials or an unreachable account fail here, not mid-request.
        # The auth method (never its secret) helps tell a rotated SPCS token from a typo.
        target = self._location if self._auth is None else f"{self._location} ({self._auth})"
        await self._runner.run("connect", target, lambda statements: None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._owns_pool:
            await self._pool.close()
            self._runner.close()
        return False

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> SnowflakeDocumentCollection[TDocument]:
        """Open the collection, creating its table if needed (existing rows are kept)."""
        return await self._open(name, schema, None, create=True)

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: DocumentLoader[TDocument],
    ) -> SnowflakeDocumentCollection[TDocument]:
        """Open an existing collection (``ValueError`` if its table does not exist), migrating
        its documents through ``document_loader`` (see ``_migrate`` for what is read)."""
        return await self._open(name, schema, document_loader, create=False)

    async def get_or_create_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: DocumentLoader[TDocument],
    ) -> SnowflakeDocumentCollection[TDocument]:
        return await self._open(name, schema, document_loader, create=True)

    async def plan_migration(self, name: str, document_loader: DocumentLoader[Any]) -> bool:
        """What opening ``name`` with ``document_loader`` would migrate, told to
        ``migration_observer``, writing nothing: no table is created or altered, no document
        changed or moved. False when the collection's table does not exist.

        It reads what the open would read (see ``_migrate``): one row per stored version, and
        every document of the versions whose sample the loader changes or rejects, in pages,
        so that the counts of migrated and failed documents are the ones the open would
        write, loader by loader. A dry run costs the open's reads, never its writes.
        """
        table = table_name(self.table_prefix, name)
        if table not in await self._load_catalog():
            return False
        collection = self._collection(name, table, BaseDocument)
        await self._migrate(collection, document_loader, write=False)
        return True

    async def delete_collection(self, name: str) -> None:
        """Drop the collection's table and its failed-migrations table."""
        for table in (
            table_name(self.table_prefix, name),
            failed_table_name(self.table_prefix, name),
        ):
            sql = f"DROP TABLE IF EXISTS {quote_identifier(table)}"
            await self._execute("delete_collection", table, sql)
            if self._catalog is not None:
                self._catalog.pop(table, None)
        self._collections.pop(name, None)

    async def _open(
        self,
        name: str,
        schema: type[TDocument],
        loader: DocumentLoader[TDocument] | None,
        *,
        create: bool,
    ) -> SnowflakeDocumentCollection[TDocument]:
        lock = self._open_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if (existing := self._collections.get(name)) is not None:
                return cast(SnowflakeDocumentCollection[TDocument], existing)
            table = table_name(self.table_prefix, name)
            catalog = await self._load_catalog()
            existed = table in catalog
            if not existed:
                if not create:
                    raise ValueError(f'Collection "{name}" does not exist')
                await self._create_table(table)
            else:
                await self._add_missing_columns(table, catalog[table])
            collection = self._collection(name, table, schema)
            if loader is not None and existed:
                await self._migrate(collection, loader)
            self._collections[name] = collection
            return collection

    def _collection(
        self, name: str, table: str, schema: type[TDocument]
    ) -> SnowflakeDocumentCollection[TDocument]:
        return SnowflakeDocumentCollection(
            name=name,
            table=table,
            schema=schema,
            runner=self._runner,
            logger=self._logger,
            ensure_indexes=self._ensure_indexes,
        )

    async def _load_catalog(self) -> dict[str, set[str]]:
        """Tables with our prefix in the current schema and their columns: one query, once."""
        if self._catalog_lock is None:
            self._catalog_lock = asyncio.Lock()
        async with self._catalog_lock:
            if self._catalog is None:
                rows = await self._runner.run(
                    "open",
                    self._location,
                    lambda s: s.query(
                        "SELECT TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
                        "WHERE TABLE_SCHEMA = CURRENT_SCHEMA() "
                        "AND STARTSWITH(TABLE_NAME, :1)",
                        (self.table_prefix,),
                    ),
                )
                catalog: dict[str, set[str]] = {}
                for table, column in rows:
                    catalog.setdefault(str(table), set()).add(str(column).upper())
                self._catalog = catalog
            return self._catalog

    async def _create_table(self, table: str) -> None:
        quoted = quote_identifier(table)
        if self.table_type == "hybrid":
            sql = (
                f"CREATE HYBRID TABLE IF NOT EXISTS {quoted} (ID STRING NOT NULL PRIMARY KEY, "
                "VERSION STRING, CREATION_UTC STRING, DATA VARIANT)"
            )
            try:
                await self._execute("create_collection", table, sql)
            except SnowflakeOperationError as error:
                from snowflake.connector.errors import ProgrammingError

                if not isinstance(error.__cause__, ProgrammingError):
                    raise  # a failure to reach Snowflake says nothing about hybrid tables
                # Said once: later tables of this database go straight to standard.
                self.table_type = "standard"
                self._logger.warning(
                    "Snowflake hybrid tables are not available here "
                    f"({describe_error(error.__cause__ or error)}); "
                    "using standard tables instead"
                )
            else:
                self._remember(table)
                return
        sql = (
            f"CREATE TABLE IF NOT EXISTS {quoted} (ID STRING NOT NULL, VERSION STRING, "
            "CREATION_UTC STRING, DATA VARIANT, PRIMARY KEY (ID))"
        )
        await self._execute("create_collection", table, sql)
        self._remember(table)

    def _remember(self, table: str) -> None:
        if self._catalog is not None:
            self._catalog[table] = set(_ALL_COLUMNS)

    async def _add_missing_columns(self, table: str, columns: set[str]) -> None:
        """Give an upstream failed-migrations table (ID, DATA) the columns of a collection."""
        missing = [column for column in ("VERSION", "CREATION_UTC") if column not in columns]
        if not missing:
            return
        quoted = quote_identifier(table)

        def work(statements: Statements) -> None:
            for column in missing:
                statements.execute(f"ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS {column} STRING")
            fields = {column: name for name, column in COLUMNS.items()}
            params = Params()
            assignments = ", ".join(
                f"{column} = {field_path(fields[column], params)}::STRING" for column in missing
            )
            statements.execute(f"UPDATE {quoted} SET {assignments}", params.values)

        await self._runner.run("open", table, work)
        columns.update(missing)

    async def _ensure_indexes(
        self, collection: SnowflakeDocumentCollection[Any], indexes: Sequence[CollectionIndex]
    ) -> None:
        """Hybrid tables: CREATE INDEX for indexes on mirrored columns; standard: nothing.

        Standard tables have no secondary indexes (Snowflake prunes micro-partitions
        instead). Hybrid tables index columns, not VARIANT paths, so an index on a document
        field (e.g. ``session_id``) cannot be created; the ID index is the primary key.
        """
        if self.table_type != "hybrid":
            return
        quoted = quote_identifier(collection.table)
        for index in indexes:
            columns = [COLUMNS.get(field) for field, _ in index.fields]
            if any(column is None for column in columns) or columns == ["ID"]:
                continue
            names = [cast(str, column) for column in columns]
            # Hybrid-table indexes take plain column lists (no ASC/DESC).
            ordered = ", ".join(names)
            index_name = quote_identifier(
                sanitize_identifier(f"{collection.table}_{'_'.join(names)}_IDX")
            )
            sql = f"CREATE INDEX IF NOT EXISTS {index_name} ON {quoted} ({ordered})"
            await self._execute("ensure_indexes", collection.table, sql)

    async def _migrate(
        self,
        collection: SnowflakeDocumentCollection[TDocument],
        loader: DocumentLoader[TDocument],
        *,
        write: bool = True,
    ) -> None:
        """Run ``loader`` over the documents it may change; write changes and failures in
        batches (with ``write=False``, only tell the observer what would be written).

        One query groups the table by the documents' ``version`` (its JSON text: ``"1"``,
        ``1``, ``null`` and a missing field are four groups) and returns each group's size
        and first document by ID. The loader runs on that sample; a group whose sample it
        returns unchanged is left as it is, unread. Parlant's loaders decide by
        ``doc["version"]`` alone (``DocumentMigrationHelper`` walks converters keyed by
        version and returns a document at the store's version as it is; the other loaders
        test ``doc["version"]``; ``CurrentVersionDocumentDatabase`` keys on it too), so one
        document answers for its version. What would break this: a loader that changes or
        rejects some documents of one version by their content and returns others unchanged;
        when the sample is one of the unchanged, the others would be left as they are.

        The other groups (sample changed, rejected, or the loader raised) are read in pages
        by ID, and the loader runs once on each of their documents, as in a full pass.
        Memory holds one page and one unwritten batch of each kind, whatever the table's size.

        The observer (``migration_observer``) is told each group the loader keeps as a whole,
        each document it loads otherwise, and the progress of the pass, page by page.
        """
        table = collection.table
        groups = await self._runner.run(
            "migrate",
            table,
            lambda s: s.query(
                f"SELECT {_VERSION_JSON}, COUNT(*), MIN(ID), TO_JSON(MIN_BY(DATA, ID)) "
                f"FROM {quote_identifier(table)} GROUP BY 1"
            ),
        )
        migration = _Migration(collection.name, self.migration_observer, write=write)
        to_read: list[tuple[str | None, int]] = []
        for version, count, first_id, first in groups:
            migration.samples.add(str(first_id))
            if not await self._load(migration, table, loader, str(first_id), first, sample=True):
                to_read.append((version, int(count)))
            elif migration.observer is not None:
                # Its sample stands for the group, unread (see above).
                key = version_key(json.loads(first))
                migration.kept_whole.add(key)
                migration.observer.counted(collection.name, key, UNCHANGED, int(count))
        if not to_read:
            return
        total = sum(count for _, count in to_read)
        if write:
            self._logger.info(
                f"Migrating {table}: {total:,} document(s) to load ("
                + ", ".join(f"version {_shown(version)}: {count:,}" for version, count in to_read)
                + ")"
            )
        selected = _versions_condition([version for version, _ in to_read])
        if selected is None:
            # Too many versions to list in one statement: read every group; the loader
            # returns the documents of the others unchanged, as their samples, so they are
            # not written.
            selected, total = ("TRUE", []), sum(int(count) for _, count, _, _ in groups)
        # One pass by ID over every group to read. A document is written after its page is
        # read and keeps its ID, behind the pass; samples are skipped by ID. So none is loaded
        # twice, even when its new version is one the pass reads (a full pass loads each
        # stored document once).
        after: str | None = None
        read, more = 0, True
        migration.progress(table, 0, total)
        while more:
            more, after, rows = await self._load_page(
                migration, collection, loader, selected, after
            )
            read += rows
            # The counts end the pass without a last, empty read; a short page ends it
            # when documents were deleted meanwhile.
            more = more and read < total
            if write:
                await self._write(collection, migration, final=not more)
                if total > MIGRATION_PAGE_ROWS:
                    self._logger.info(f"Migrating {table}: {min(read, total):,} of {total:,} read")
            migration.progress(table, min(read, total), total)
        if not write:
            return
        self._logger.info(
            f"Migrated {table}: {migration.changed:,} changed, {migration.failed:,} failed"
        )
        if migration.failed:
            self._logger.warning(
                f"{migration.failed} document(s) of {table} failed to migrate; "
                f"moved to {failed_table_name(self.table_prefix, collection.name)}"
            )

    async def _load(
        self,
        migration: _Migration,
        table: str,
        loader: DocumentLoader[Any],
        identifier: str,
        data: str,
        *,
        sample: bool = False,
    ) -> bool:
        """Run ``loader`` on one stored document; True when it returns it unchanged. The
        observer is told the outcome, but for an unchanged ``sample`` (its caller tells the
        whole group) or a document of a group told so already."""
        document = json.loads(data)
        key = version_key(document)
        try:
            migrated = await loader(cast(BaseDocument, document))
        except Exception as error:
            if migration.write:
                self._logger.error(f"Failed to load document '{identifier}' in {table}: {error}")
            migrated = None
        outcome = outcome_of(document, migrated)
        if migration.observer is not None and not (
            outcome == UNCHANGED and (sample or key in migration.kept_whole)
        ):
            migration.observer.counted(migration.collection, key, outcome, 1)
        if outcome == UNCHANGED:
            return True
        if migrated is None:
            migration.failed += 1
            if migration.write:
                migration.to_fail.append((identifier, document))
            return False
        changed = dict(migrated)
        migration.changed += 1
        if migration.write:
            migration.to_change.append((identifier, changed))
            if str(changed.get("id", identifier)) != identifier:
                migration.renamed.add(str(changed["id"]))
        return False

    async def _load_page(
        self,
        migration: _Migration,
        collection: SnowflakeDocumentCollection[Any],
        loader: DocumentLoader[Any],
        selected: tuple[str, Sequence[Any]],
        after: str | None,
    ) -> tuple[bool, str | None, int]:
        """Load the next page of the documents ``selected`` (a condition and its values)
        with an ID above ``after`` (from the first when None).

        Returns whether more may follow, the ID to continue after, and the stored rows read
        (those of this pass's renaming writes aside). A page holds at most
        ``MIGRATION_PAGE_ROWS`` rows and, beyond its first row, ``MIGRATION_PAGE_CHARS``
        characters of JSON: the running sum is taken over the page's rows only (the innermost
        ``ORDER BY ... LIMIT``), and ``COUNT(*) OVER ()`` is the number of rows before the
        cut, which tells a cut page from the last one without a further query.
        """
        condition, values = selected
        params = Params()
        params.values.extend(values)
        if after is not None:
            condition = f"{condition} AND ID > {params.add(after)}"
        quoted = quote_identifier(collection.table)
        json_chars = "COALESCE(LENGTH(TO_JSON(DATA)), 0)"  # a NULL would drop its row
        sql = (
            f"SELECT ID, TO_JSON(DATA), COUNT(*) OVER () FROM (SELECT ID, DATA FROM {quoted} "
            f"WHERE {condition} ORDER BY ID "
            f"LIMIT {int(MIGRATION_PAGE_ROWS)}) QUALIFY SUM({json_chars}) OVER (ORDER BY ID "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - {json_chars} < "
            f"{params.add(MIGRATION_PAGE_CHARS)} ORDER BY ID"
        )
        rows = await self._runner.run(
            "migrate", collection.table, lambda s: s.query(sql, params.values)
        )
        stored = 0  # rows stored before the pass began
        for identifier, data, _ in rows:
            if str(identifier) in migration.renamed:
                continue  # written by this pass, under an ID it had not reached
            stored += 1
            if str(identifier) not in migration.samples:  # samples are loaded already
                await self._load(migration, collection.table, loader, str(identifier), data)
        if not rows:
            return False, after, 0
        before_cut = int(rows[-1][2])
        more = before_cut == MIGRATION_PAGE_ROWS or len(rows) < before_cut
        return more, str(rows[-1][0]), stored

    async def _write(
        self,
        collection: SnowflakeDocumentCollection[Any],
        migration: _Migration,
        *,
        final: bool,
    ) -> None:
        """Write the migration's full batches (all of them when ``final``); keep the rest."""
        for batch in _take_batches(migration.to_change, final):
            await self._write_migrated(collection.table, batch)
        for batch in _take_batches(migration.to_fail, final):
            await self._move_failed(collection, batch)

    async def _write_migrated(
        self, table: str, batch: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        params = Params()
        values = ", ".join(
            "("
            + ", ".join(params.add(v) for v in (old_id, *encode("migrate", table, doc).values()))
            + ")"
            for old_id, doc in batch
        )
        sql = (
            f"UPDATE {quote_identifier(table)} SET ID = V.NEW_ID, VERSION = V.NEW_VERSION, "
            "CREATION_UTC = V.NEW_CREATION_UTC, DATA = PARSE_JSON(V.NEW_DATA) FROM "
            # VALUES names its columns COLUMN1..n in Snowflake; a derived column list on a
            # subquery is not portable.
            "(SELECT COLUMN1 AS OLD_ID, COLUMN2 AS NEW_ID, COLUMN3 AS NEW_VERSION, "
            f"COLUMN4 AS NEW_CREATION_UTC, COLUMN5 AS NEW_DATA FROM VALUES {values}) AS V "
            f"WHERE {quote_identifier(table)}.ID = V.OLD_ID"
        )
        # Idempotent: running it twice writes the same values.
        await self._execute("migrate", table, sql, params.values)

    async def _move_failed(
        self,
        collection: SnowflakeDocumentCollection[Any],
        batch: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        """Move one batch of documents to the failed-migrations table (created when first
        needed)."""
        failed_table = failed_table_name(self.table_prefix, collection.name)
        catalog = await self._load_catalog()
        if failed_table not in catalog:
            await self._create_table(failed_table)
        else:
            await self._add_missing_columns(failed_table, catalog[failed_table])
        quoted_failed = quote_identifier(failed_table)
        params = Params()
        values = ", ".join(
            "(" + ", ".join(params.add(v) for v in _failed_row(old_id, doc)) + ")"
            for old_id, doc in batch
        )
        # Copy first, then delete: a crash in between leaves a copy, never a loss; the
        # NOT EXISTS keeps a second run from copying the same document twice.
        insert = (
            f"INSERT INTO {quoted_failed} (ID, VERSION, CREATION_UTC, DATA) "
            "SELECT V.ID, V.VERSION, V.CREATION_UTC, PARSE_JSON(V.DATA) FROM VALUES "
            f"{values} AS V(ID, VERSION, CREATION_UTC, DATA) WHERE NOT EXISTS "
            f"(SELECT 1 FROM {quoted_failed} AS E WHERE E.ID = V.ID)"
        )
        await self._execute("migrate", failed_table, insert, params.values)
        ids = Params()
        in_list = ", ".join(ids.add(old_id) for old_id, _ in batch)
        delete = f"DELETE FROM {quote_identifier(collection.table)} WHERE ID IN ({in_list})"
        await self._execute("migrate", collection.table, delete, ids.values)


class _Migration:
    """What one collection's migration has loaded and not yet written, and its counts.

    With ``write`` False (a dry run) it keeps counts only: nothing is held to be written.
    """

    def __init__(self, collection: str, observer: MigrationObserver | None, *, write: bool) -> None:
        self.collection = collection
        self.observer = observer
        self.write = write
        #: Versions whose group the loader kept, told as a whole from its sample; a pass that
        #: reads them anyway (too many versions to select) does not tell them again.
        self.kept_whole: set[str | None] = set()
        self.to_change: list[tuple[str, dict[str, Any]]] = []
        self.to_fail: list[tuple[str, dict[str, Any]]] = []
        self.changed = 0
        self.failed = 0
        #: IDs of the groups' samples, loaded before the pass by ID (one per version).
        self.samples: set[str] = set()
        #: New IDs of documents the loader gave another ID (none of Parlant's does): written
        #: ahead of the pass, they must not be loaded again.
        self.renamed: set[str] = set()

    def progress(self, table: str, done: int, total: int) -> None:
        if self.observer is not None:
            self.observer.progress(table, done, total)


def _failed_row(old_id: str, document: Mapping[str, Any]) -> tuple[Any, ...]:
    version, creation_utc = document.get("version"), document.get("creation_utc")
    return (
        old_id,
        None if version is None else str(version),
        None if creation_utc is None else str(creation_utc),
        json.dumps(document, ensure_ascii=False),
    )


def _take_batches(
    rows: list[tuple[str, dict[str, Any]]], final: bool
) -> list[list[tuple[str, dict[str, Any]]]]:
    """Remove from ``rows`` the batches to write now: all when ``final``, else all but the
    last, which stays in ``rows`` to be filled further."""
    batches = _batches(rows)
    rows[:] = [] if final or not batches else batches.pop()
    return batches


def _versions_condition(versions: Sequence[str | None]) -> tuple[str, list[Any]] | None:
    """A condition selecting the documents of ``versions`` (JSON texts; None: no version)
    and its values; None when they are too many for one statement."""
    params = Params()
    listed = [version for version in versions if version is not None]
    conditions = [f"{_VERSION_JSON} IS NULL"] if None in versions else []
    if listed:
        places = ", ".join(params.add(version) for version in listed)
        conditions.append(f"{_VERSION_JSON} IN ({places})")
    condition = " OR ".join(conditions)
    if len(listed) > MAX_BATCH_ROWS or statement_bytes(condition, params.values) > MAX_BATCH_BYTES:
        return None
    return f"({condition})", params.values


def _shown(version: str | None) -> str:
    """A version group as a log shows it: its JSON text, or "missing"."""
    return "missing" if version is None else version


def _batches(
    rows: Sequence[tuple[str, dict[str, Any]]],
) -> list[list[tuple[str, dict[str, Any]]]]:
    """Split rows so that each statement stays under MAX_BATCH_BYTES, MAX_BATCH_ROWS and
    MAX_BATCH_BINDS."""
    max_rows = min(MAX_BATCH_ROWS, MAX_BATCH_BINDS // _BINDS_PER_ROW)
    batches: list[list[tuple[str, dict[str, Any]]]] = []
    current: list[tuple[str, dict[str, Any]]] = []
    size = 0
    for row in rows:
        # The placeholders' text, "(:1, :2, :3, :4, :5), ", stays under 64 bytes a row.
        cost = _bound_bytes(*row) + 64
        if current and (size + cost > MAX_BATCH_BYTES or len(current) >= max_rows):
            batches.append(current)
            current, size = [], 0
        current.append(row)
        size += cost
    if current:
        batches.append(current)
    return batches


def _bound_bytes(old_id: str, document: Mapping[str, Any]) -> int:
    """UTF-8 bytes of what a batch binds for one row: both ids, the mirrored fields, the JSON."""
    values = (
        old_id,
        document.get("id", old_id),
        document.get("version"),
        document.get("creation_utc"),
        json.dumps(document, ensure_ascii=False),
    )
    # surrogatepass: text UTF-8 cannot encode is refused by `encode` when the batch is
    # written, with the field named; sizing it must not fail first with a bare error.
    return sum(
        len(str(value).encode("utf-8", "surrogatepass")) for value in values if value is not None
    )


def _location(params: Mapping[str, Any]) -> str:
    database, schema = params.get("database"), params.get("schema")
    if database and schema:
        return f"{database}.{schema}"
    return str(database or schema or "Snowflake")


__all__ = [
    "MAX_BATCH_BINDS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ROWS",
    "MIGRATION_PAGE_CHARS",
    "MIGRATION_PAGE_ROWS",
    "SnowflakeDocumentDatabase",
    "TableType",
]
