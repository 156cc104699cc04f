"""One pruning pass over every store with a retention, and the server's background task.

Under `server.replicas: many` each pass is made under a lease on the sessions' backend
(`snowflake.lease`): a replica whose turn it is not skips the pass. In-memory state stays
right across processes because a pass only deletes: this process's read caches drop what
it deleted (the `deleted` callback), and the change feed tells the other processes, whose
caches drop it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Protocol

from parlant_router.config.durations import format_duration
from parlant_router.errors import describe_exception
from parlant_router.retention.rules import Deleted
from parlant_router.stores.catalog import STORES

if TYPE_CHECKING:
    from parlant.core.loggers import Logger

    from parlant_router.snowflake.lease import Lease

#: A pass starts at most this long after the server does (or after one interval if shorter),
#: so that servers restarted more often than the interval still prune.
FIRST_PASS_DELAY = timedelta(seconds=30)
#: How long a lease lasts without renewal; renewed before each store of a pass.
LEASE_SECONDS = 600.0


class Pruning(Protocol):
    """What `SqlPruning` and `DocumentPruning` both offer."""

    async def count(self, before: datetime) -> dict[str, int]: ...

    async def prune(self, before: datetime, deleted: Deleted | None = None) -> dict[str, int]: ...


@dataclass(frozen=True)
class RetainedStore:
    """A store with a retention, and how its expired documents are found and deleted."""

    store: str
    retention: timedelta
    pruning: Pruning


@dataclass(frozen=True)
class PruneCounts:
    """What one pass did (or, dry, would do) to one store."""

    store: str
    retention: timedelta
    before: datetime
    documents: dict[str, int]
    """Documents deleted (or that would be) per collection, the expiring one first."""
    dry_run: bool

    def describe(self) -> str:
        """One line for the log and the CLI."""
        verb = "would delete" if self.dry_run else "deleted"
        listed = ", ".join(f"{count:,} {name}" for name, count in self.documents.items())
        rule = STORES[self.store].retention
        since = "last active" if rule is not None and rule.activity is not None else "created"
        return (
            f"Retention of {self.store} ({format_duration(self.retention)}, {since} "
            f"before {self.before.isoformat(timespec='seconds')}): {verb} {listed}"
        )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LeaseHeldElsewhere(Exception):
    """Another process holds the pruning lease (`server.replicas: many`)."""


class Pruner:
    """Prunes `stores`; under `lease` when several processes share them."""

    def __init__(
        self,
        stores: Sequence[RetainedStore],
        logger: Logger,
        *,
        lease: Lease | None = None,
        deleted: Callable[[str, str, Sequence[str]], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.stores = list(stores)
        self._logger = logger
        self._lease = lease
        self._deleted = deleted
        self._clock = clock

    async def run(self, *, dry_run: bool = False) -> list[PruneCounts]:
        """One pass over every store; raises `LeaseHeldElsewhere` when it is not this
        process's turn (a dry run needs no lease)."""
        async with self._turn(dry_run):
            results = []
            for index, retained in enumerate(self.stores):
                # Renewed before each later store: a long pass keeps its turn.
                renew = index > 0 and not dry_run and self._lease is not None
                if renew and self._lease is not None and not await _acquire(self._lease):
                    raise LeaseHeldElsewhere(retained.store)
                results.append(await self._prune(retained, dry_run))
            return results

    @contextlib.asynccontextmanager
    async def _turn(self, dry_run: bool) -> AsyncIterator[None]:
        if dry_run or self._lease is None:
            yield
            return
        if not await _acquire(self._lease):
            raise LeaseHeldElsewhere("another process is pruning")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # it expires by itself if this fails
                await self._lease.release()

    async def _prune(self, retained: RetainedStore, dry_run: bool) -> PruneCounts:
        before = self._clock() - retained.retention
        if dry_run:
            documents = await retained.pruning.count(before)
        else:
            documents = await retained.pruning.prune(before, self._announcer(retained.store))
        counts = PruneCounts(retained.store, retained.retention, before, documents, dry_run)
        # Every deletion is logged; a pass that found nothing only at debug level.
        if dry_run or any(documents.values()):
            self._logger.info(counts.describe())
        else:
            self._logger.debug(counts.describe())
        return counts

    def _announcer(self, store: str) -> Deleted | None:
        announce = self._deleted
        if announce is None:
            return None

        def deleted(collection: str, ids: Sequence[str]) -> None:
            announce(store, collection, ids)

        return deleted


async def _acquire(lease: Lease) -> bool:
    """`lease.acquire()`, given back when this task is cancelled while its statement runs
    (a server shutting down): the statement may take or renew the lease all the same, which
    would bar every other process for the lease's whole ttl."""
    acquiring = asyncio.ensure_future(lease.acquire())
    try:
        return await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await acquiring
            await lease.release()
        raise


class PruneTask:
    """Runs `pruner` every `interval` in the background while entered."""

    def __init__(self, pruner: Pruner, logger: Logger, *, interval: timedelta) -> None:
        self._pruner = pruner
        self._logger = logger
        self._interval = interval.total_seconds()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PruneTask:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        await asyncio.sleep(min(FIRST_PASS_DELAY.total_seconds(), self._interval))
        while True:
            try:
                await self._pruner.run()
            except LeaseHeldElsewhere:
                self._logger.debug("Retention: another replica is pruning; skipped this pass")
            except Exception as error:
                self._logger.warning(
                    f"Retention: a pruning pass failed ({describe_exception(error, limit=300)}); "
                    f"next in {format_duration(timedelta(seconds=self._interval))}"
                )
            await asyncio.sleep(self._interval)
