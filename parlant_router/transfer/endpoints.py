"""What `copy`, `export` and `import` read from and write to: one store on one side.

A *source* lists a store's collections and reads each in pages, in an order that is the
same at every read (a copy interrupted and run again skips what the destination already
holds by position). A *destination* holds the same collections: it counts, writes batches
(idempotently: a document whose id it holds is not written twice), merges, clears, and
reads back for verification. Parlant's documents move as they are stored (every field,
`version` included): no loader runs; Parlant's migrations run where the store opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Document = dict[str, Any]

#: The collection Parlant's document stores keep their schema version in. A copy writes it
#: last, so a destination holding documents but no metadata is an interrupted copy.
METADATA = "metadata"


@dataclass(frozen=True)
class MergeCounts:
    """What one merged batch did with the documents whose id the destination held."""

    inserted: int = 0
    """Documents the destination did not hold."""
    replaced: int = 0
    """Held, and replaced by the source's (newer `version`, or the same with other content)."""
    kept: int = 0
    """Held, and kept: the destination's is newer, or the same."""

    def __add__(self, other: MergeCounts) -> MergeCounts:
        return MergeCounts(
            self.inserted + other.inserted,
            self.replaced + other.replaced,
            self.kept + other.kept,
        )


class StoreSource(Protocol):
    """One store, read."""

    store: str
    description: str
    """Where, for messages: `PARLANT.PUBLIC.PARLANT_SESSIONS_* on the local emulator`."""

    async def collections(self) -> Sequence[str]:
        """The store's collections that hold documents, `metadata` included."""
        ...

    async def count(self, collection: str) -> int: ...

    def pages(self, collection: str) -> AsyncIterator[list[Document]]:
        """The collection's documents in pages, always in the same order."""
        ...


class StoreDestination(StoreSource, Protocol):
    """One store, written (and read back, for verification)."""

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        """Insert `documents` (one or few statements, all or nothing per statement); a
        document whose id the collection holds is left as it is. Returns how many were
        inserted."""
        ...

    async def merge(self, collection: str, documents: Sequence[Document]) -> MergeCounts:
        """Insert or replace by id, the newer winning (see `MergeCounts`)."""
        ...

    async def clear(self) -> None:
        """Delete every document of the store (`--replace`)."""
        ...

    async def finish(self) -> None:
        """Make what was written durable (a file is written here); called once at the end."""
        ...
