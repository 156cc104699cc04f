"""A DocumentDatabase wrapper that runs a hook before every collection call.

Tests use the hook to make calls meet at a barrier (proving they overlap) or to yield to the
event loop (so that unlocked read-then-write sequences would interleave). Built on the
package's one pass-through base: only the hook is added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from parlant.core.persistence.document_database import (
    DocumentCollection,
    DocumentDatabase,
    TDocument,
)

from parlant_router.durable.passthrough import PassThroughCollection, PassThroughDocumentDatabase

#: ``hook(collection_name, operation, filters_or_document)``, awaited before each call.
Hook = Callable[[str, str, Any], Awaitable[None]]


async def no_hook(collection: str, operation: str, argument: Any) -> None:
    """The hook that does nothing."""


class GatedDatabase(PassThroughDocumentDatabase):
    """Delegates to ``inner``; every collection it hands out awaits ``self.hook`` first."""

    def __init__(self, inner: DocumentDatabase) -> None:
        super().__init__(inner)
        self.hook: Hook = no_hook

    def wrap_collection(
        self, name: str, collection: DocumentCollection[TDocument]
    ) -> DocumentCollection[TDocument]:
        return GatedCollection(self, collection, name)


class GatedCollection(PassThroughCollection[TDocument]):
    """One collection of a ``GatedDatabase``: finds and writes await its hook."""

    def __init__(
        self, database: GatedDatabase, inner: DocumentCollection[TDocument], name: str
    ) -> None:
        super().__init__(inner, name)
        self.database = database

    async def before(self, operation: str, argument: Any) -> None:
        # Index setup is not a store call the tests gate (it never was).
        if operation != "ensure_indexes":
            await self.database.hook(self.name, operation, argument)
