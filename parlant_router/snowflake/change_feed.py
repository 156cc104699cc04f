"""How several server processes on one Snowflake schema learn of each other's writes.

With `server.replicas: many` every process keeps its read cache, and the caches must not
serve a document another process changed for longer than `server.max_staleness`. Snowflake
offers no notification a client could wait on, and Parlant's tables have no column saying
when a row changed (their layout is upstream's, so it stays). So the processes tell each
other, through one small table per schema, `PARLANT_ROUTER_CHANGES`:

- a process's cached writes are recorded as (writer, scope, partition) in memory and
  appended in one INSERT, stamped with the warehouse's own clock (no clock of any server is
  trusted): at once when the process published nothing during the last *interval* (half the
  staleness bound), else when that interval is over; so at most one INSERT per interval;
- every interval each process reads the rows other writers appended since its previous read
  (one SELECT, whatever the number of sessions and waiting clients) and tells the
  subscribers of each scope which partition changed: the read cache forgets it, the session
  listener wakes the clients waiting on that session.

A write is thus seen by another process within two intervals, the bound, plus the time of
two statements; a write after a quiet interval, within one. Rows are read again for `OVERLAP_SECONDS` after their timestamp (a row is
stamped when its INSERT starts and visible only once it commits) and recognized when seen
twice. A process that could not read the table for longer than that has missed rows: it
tells every subscriber to forget everything. Rows older than `RETENTION_SECONDS` are deleted
by whichever process starts, and then every `PRUNE_SECONDS`.

An idle process sends one statement per interval; a process that wrote, at most two.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from parlant.core.loggers import Logger
from typing_extensions import Self

from parlant_router.errors import describe_exception
from parlant_router.snowflake.identifiers import quote_identifier
from parlant_router.snowflake.sql import is_valid_text

if TYPE_CHECKING:
    from parlant_router.snowflake.database import SnowflakeDocumentDatabase
    from parlant_router.snowflake.runner import Statements

TABLE = "PARLANT_ROUTER_CHANGES"
#: How long after its timestamp a row is still read (commit delay, a slow poll).
OVERLAP_SECONDS = 30.0
#: Rows older than this are deleted: every process has read them long since.
RETENTION_SECONDS = 3600.0
PRUNE_SECONDS = 600.0
#: A process killed between a write and its next publication never announces that write;
#: caches following the feed read each partition again after this long, which bounds how
#: stale such a write can leave them.
UNANNOUNCED_WRITE_BOUND_SECONDS = 60.0
#: Rows per INSERT: 3 bound values each, well under the batch limits of database.py.
_ROWS_PER_INSERT = 1000
#: Longer partition keys are announced as the whole scope: 1,000 rows of them stay far under
#: Snowflake's 1 MB statement limit.
_MAX_PARTITION_CHARS = 256

_NOW_MS = "DATE_PART(EPOCH_MILLISECOND, SYSDATE())"

Subscriber = Callable[[str | None], None]
"""Told the partition of its scope that another process wrote (None: any of it)."""


class ScopedRecorder:
    """Records the writes of one store's collections, as `<store>.<collection>` scopes."""

    def __init__(self, feed: ChangeFeed, prefix: str) -> None:
        self._feed = feed
        self._prefix = prefix

    def record(self, collection: str, partition: str | None) -> None:
        self._feed.record(f"{self._prefix}.{collection}", partition)


class ChangeFeed:
    """One process's side of the change table of one Snowflake backend (module docstring)."""

    def __init__(
        self,
        database: SnowflakeDocumentDatabase,
        logger: Logger,
        *,
        max_staleness: float,
    ) -> None:
        self.interval = max_staleness / 2
        self.writer = uuid.uuid4().hex
        """This process's name in the table (a fresh one per start)."""
        self._database = database
        self._logger = logger
        self._table = quote_identifier(TABLE)
        self._pending: set[tuple[str, str | None]] = set()
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._seen: dict[tuple[str, str, str | None, int], int] = {}
        self._since_ms: int | None = None
        self._last_read = 0.0
        self._last_flush = -math.inf
        self._flusher: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._task: asyncio.Task[None] | None = None
        self.polls = 0
        self.flushes = 0
        self.changes_seen = 0

    def sibling(self) -> ChangeFeed:
        """Another writer on the same connections, as another process would be (probes)."""
        return ChangeFeed(self._database, self._logger, max_staleness=self.interval * 2)

    # What the caches and the session store call --------------------------------------------

    def record(self, scope: str, partition: str | None) -> None:
        """`partition` of `scope` was written here (None: any of it); published next tick."""
        if partition is not None and (
            len(partition) > _MAX_PARTITION_CHARS or not is_valid_text(partition)
        ):
            # A key the feed's INSERT would refuse (or bloat) must not block every later
            # publication: announce the whole scope instead.
            partition = None
        self._pending.add((scope, partition))
        if self._task is not None and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._publish())

    def recorder(self, prefix: str) -> ScopedRecorder:
        """A read cache's observer: records `collection` writes under scope `prefix.collection`."""
        return ScopedRecorder(self, prefix)

    def subscribe(self, scope: str, subscriber: Subscriber) -> None:
        """Call `subscriber` for every write of another process to `scope`, in the order
        subscribed (a cache before the listener that re-reads through it)."""
        self._subscribers.setdefault(scope, []).append(subscriber)

    # Lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._database.run("change_feed", TABLE, self._create)
        await self.tick()
        self._task = asyncio.create_task(self._run(), name="parlant-router-change-feed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks = [t for t in (self._task, self._flusher) if t is not None]
        self._task = self._flusher = None
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # The last writes of a stopping process still reach the others.
        with contextlib.suppress(Exception):
            await self._flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.tick()

    async def _publish(self) -> None:
        """Flush now, or once an interval has passed since the last flush."""
        delay = self._last_flush + self.interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await self._flush()
        except Exception as error:
            # Still pending: the next tick publishes it.
            self._logger.warning(f"change feed: {describe_exception(error, limit=300)}")

    async def tick(self) -> None:
        """Publish this process's writes, then read the others' (what the loop does)."""
        try:
            await self._flush()
            if time.monotonic() - self._last_prune > PRUNE_SECONDS:
                await self._database.run("change_feed", TABLE, self._prune)
                self._last_prune = time.monotonic()
            await self._poll()
        except Exception as error:
            # Kept pending and read again next tick; a long outage resets the subscribers.
            self._logger.warning(
                f"change feed: {describe_exception(error, limit=300)}; retrying in "
                f"{self.interval:g} s"
            )

    # Statements ------------------------------------------------------------------------------

    def _create(self, statements: Statements) -> None:
        statements.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} (WRITER STRING NOT NULL, "
            "SCOPE STRING NOT NULL, PARTITION_KEY STRING, CHANGED_AT NUMBER NOT NULL)"
        )

    def _prune(self, statements: Statements) -> None:
        statements.execute(
            f"DELETE FROM {self._table} WHERE CHANGED_AT < {_NOW_MS} - :1",
            (int(RETENTION_SECONDS * 1000),),
        )

    async def _flush(self) -> None:
        rows = sorted(self._pending, key=lambda row: (row[0], row[1] or ""))
        if not rows:
            return
        self._pending.clear()
        self._last_flush = time.monotonic()
        try:
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                batch = rows[start : start + _ROWS_PER_INSERT]
                await self._database.run("change_feed", TABLE, self._inserter(batch))
        except BaseException:
            self._pending.update(rows)  # published again: a duplicate row is harmless
            raise
        self.flushes += 1

    async def _poll(self) -> None:
        since = self._since_ms
        rows = await self._database.run("change_feed", TABLE, self._reader(since))
        started = time.monotonic()
        if since is not None and started - self._last_read > OVERLAP_SECONDS:
            self._reset_all()  # rows may have come and gone unread
        self._last_read = started
        self.polls += 1
        now_ms = int(rows[0][0])
        horizon = now_ms - int(OVERLAP_SECONDS * 1000)
        for _, writer, scope, partition, changed_at in rows:
            if writer is None:
                continue  # the row that carries only the clock
            key = (str(writer), str(scope), partition, int(changed_at))
            if key in self._seen:
                continue
            self._seen[key] = int(changed_at)
            self.changes_seen += 1
            self._notify(str(scope), None if partition is None else str(partition))
        self._seen = {k: at for k, at in self._seen.items() if at >= horizon}
        self._since_ms = now_ms

    def _inserter(self, batch: list[tuple[str, str | None]]) -> Callable[[Statements], None]:
        def work(statements: Statements) -> None:
            values: list[Any] = []
            rows = []
            for scope, partition in batch:
                n = len(values)
                rows.append(f"(:{n + 1}, :{n + 2}, :{n + 3})")
                values.extend((self.writer, scope, partition))
            statements.execute(
                f"INSERT INTO {self._table} (WRITER, SCOPE, PARTITION_KEY, CHANGED_AT) "
                f"SELECT COLUMN1, COLUMN2, COLUMN3, {_NOW_MS} FROM VALUES {', '.join(rows)}",
                values,
            )

        return work

    def _reader(self, since_ms: int | None) -> Callable[[Statements], list[Any]]:
        if since_ms is None:
            # The first read learns the clock only: this process has cached nothing yet.
            return lambda statements: statements.query(f"SELECT {_NOW_MS}, NULL, NULL, NULL, NULL")

        def work(statements: Statements) -> list[Any]:
            # One row at least (the clock), then the other writers' rows since the last read.
            return statements.query(
                f"SELECT NOW.MS, C.WRITER, C.SCOPE, C.PARTITION_KEY, C.CHANGED_AT "
                f"FROM (SELECT {_NOW_MS} AS MS) AS NOW LEFT JOIN {self._table} AS C "
                "ON C.CHANGED_AT >= :1 AND C.WRITER <> :2 ORDER BY C.CHANGED_AT",
                (since_ms - int(OVERLAP_SECONDS * 1000), self.writer),
            )

        return work

    def _notify(self, scope: str, partition: str | None) -> None:
        for subscriber in self._subscribers.get(scope, ()):
            subscriber(partition)

    def _reset_all(self) -> None:
        self._logger.warning(
            f"change feed: not read for over {OVERLAP_SECONDS:g} s; "
            "forgetting every cached document"
        )
        for scope in self._subscribers:
            self._notify(scope, None)


__all__ = ["TABLE", "UNANNOUNCED_WRITE_BOUND_SECONDS", "ChangeFeed", "ScopedRecorder"]
