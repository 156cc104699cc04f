"""Copy one store from a source to a destination: safely, resumably, verified.

- **Safe**: a destination store that holds its `metadata` already holds data: refused,
  unless `merge` (documents with the same id: see `merging`) or `replace` (emptied first).
- **Resumable**: `metadata` is written last, so a destination holding documents but no
  metadata is a copy that was interrupted. Run again, the copy reads the source from the
  start (for the checksums) and writes, per collection, only what follows the documents
  the destination already holds: sources read in the same order every time, and each
  write is whole or absent. Writes are idempotent by id on top of that.
- **Verified**: each collection's documents are counted and summed (`digest`) as they are
  read from the source, then read back from the destination; any difference fails the
  store. Under `merge` the destination may hold more, or keep newer documents: the check
  is then that it holds at least as many.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from parlant_router.transfer.digest import Digest
from parlant_router.transfer.endpoints import (
    METADATA,
    Document,
    MergeCounts,
    StoreDestination,
    StoreSource,
)
from parlant_router.transfer.errors import TransferError

Mode = Literal["refuse", "merge", "replace"]

#: Documents handed to a destination at once (it batches them by size for its statements).
WRITE_DOCUMENTS = 5000


@dataclass
class CollectionOutcome:
    """What happened to one collection."""

    collection: str
    source: Digest = field(default_factory=Digest)
    written: int = 0
    resumed_after: int = 0
    merged: MergeCounts | None = None
    destination: Digest | None = None
    seconds: float = 0.0

    @property
    def verified(self) -> bool | None:
        if self.destination is None:
            return None
        if self.merged is not None:
            return self.destination.documents >= self.source.documents
        return self.destination.matches(self.source)


@dataclass
class StoreOutcome:
    """What happened to one store: its collections, or why nothing was done."""

    store: str
    source: str
    destination: str
    collections: list[CollectionOutcome] = field(default_factory=list)
    action: str = "copied"
    """copied, resumed, merged, replaced, or for a dry run: what would be done."""

    @property
    def verified(self) -> bool:
        return all(c.verified is not False for c in self.collections)


Progress = Callable[[str, int, int], None]
"""Told (store, documents read, documents in all) as a store's copy advances."""


async def plan(
    source: StoreSource, destination: StoreDestination, mode: Mode
) -> tuple[str, dict[str, int]]:
    """What a copy of this store would do (`copy`, `resume`, `merge`, `replace`) and how many
    documents the destination holds per collection; TransferError if it is refused."""
    held = {name: await destination.count(name) for name in await destination.collections()}
    if not any(held.values()):
        return "copy", held
    if mode == "merge":
        return "merge", held
    if mode == "replace":
        return "replace", held
    if held.get(METADATA):
        total = sum(held.values())
        raise TransferError(
            f"stores.{source.store}: {destination.description} already holds {total:,} "
            "document(s); use --merge to merge by id or --replace to empty it first"
        )
    return "resume", held


async def copy_store(
    source: StoreSource,
    destination: StoreDestination,
    *,
    mode: Mode,
    dry_run: bool,
    progress: Progress | None = None,
) -> StoreOutcome:
    """Copy `source` into `destination` (see the module docstring)."""
    action, held = await plan(source, destination, mode)
    outcome = StoreOutcome(source.store, source.description, destination.description)
    names = list(await source.collections())
    # The metadata last: its presence marks a finished copy.
    ordered = [n for n in names if n != METADATA] + [n for n in names if n == METADATA]
    totals = {name: await source.count(name) for name in ordered}
    if dry_run:
        outcome.action = f"would {action}"
        for name in ordered:
            collection = CollectionOutcome(name, resumed_after=held.get(name, 0))
            collection.source.documents = totals[name]
            outcome.collections.append(collection)
        return outcome
    outcome.action = {"copy": "copied", "resume": "resumed", "merge": "merged"}.get(
        action, "replaced"
    )
    if action == "replace":
        await destination.clear()
    total = sum(totals.values())
    for name in ordered:
        skip = held.get(name, 0) if action == "resume" else 0
        before = sum(c.source.documents for c in outcome.collections)

        def advance(done: int, before: int = before) -> None:
            if progress is not None:
                progress(source.store, before + done, total)

        outcome.collections.append(
            await _copy_collection(source, destination, name, skip, action == "merge", advance)
        )
    await destination.finish()
    for collection in outcome.collections:
        collection.destination = Digest()
        async for page in destination.pages(collection.collection):
            for document in page:
                collection.destination.add(document)
    return outcome


async def _copy_collection(
    source: StoreSource,
    destination: StoreDestination,
    name: str,
    skip: int,
    merge: bool,
    advance: Callable[[int], None],
) -> CollectionOutcome:
    outcome = CollectionOutcome(name, resumed_after=skip)
    if merge:
        outcome.merged = MergeCounts()
    started = time.monotonic()
    pending: list[Document] = []

    async def flush() -> None:
        if merge:
            assert outcome.merged is not None
            outcome.merged += await destination.merge(name, pending)
        else:
            outcome.written += await destination.write(name, pending)
        pending.clear()

    async for page in source.pages(name):
        for document in page:
            outcome.source.add(document)
            if outcome.source.documents > skip:
                pending.append(document)
        if len(pending) >= WRITE_DOCUMENTS:
            await flush()
        advance(outcome.source.documents)
    if pending:
        await flush()
    outcome.seconds = time.monotonic() - started
    return outcome
