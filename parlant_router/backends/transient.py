"""`type: transient`: in memory, lost when the process ends (Parlant's adapter)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parlant.adapters.db.transient import TransientDocumentDatabase

from parlant_router.backends.base import Backend

if TYPE_CHECKING:
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.config.routes import ResolvedRoute


class TransientBackend(Backend):
    """A fresh TransientDocumentDatabase per store: nothing survives a restart."""

    durable = False

    async def database(self, route: ResolvedRoute) -> DocumentDatabase:
        return TransientDocumentDatabase()

    def describe(self) -> str:
        return "memory (transient)"
