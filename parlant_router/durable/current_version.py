"""Keep documents already at their store's current version when Parlant's loader drops them.

Parlant 3.3's GuidelineDocumentStore writes guideline-tag associations with the store's
version (0.10.0) but its loader for them only knows 0.3.0-0.5.0, so at every start those
associations are moved to a failed-migrations table: guidelines lose their tags (and SDK
guidelines their agent) across a restart, on Parlant's own JSON files as well. A document
written at the store's current version needs no migration, so when a loader rejects one,
`CurrentVersionDocumentDatabase` keeps it as it is; every other document goes through the
store's loader unchanged.
"""

from __future__ import annotations

from parlant.core.persistence.document_database import BaseDocument, DocumentDatabase, TDocument

from parlant_router.durable.passthrough import Loader, PassThroughDocumentDatabase


class CurrentVersionDocumentDatabase(PassThroughDocumentDatabase):
    """Delegates to `inner`, with loaders that keep documents of version `current`."""

    def __init__(self, inner: DocumentDatabase, current: str) -> None:
        super().__init__(inner)
        self._current = current

    def wrap_loader(self, loader: Loader[TDocument], collection: str) -> Loader[TDocument]:
        async def load(document: BaseDocument) -> TDocument | None:
            loaded = await loader(document)
            if loaded is None and document.get("version") == self._current:
                return document  # type: ignore[return-value]
            return loaded

        return load
