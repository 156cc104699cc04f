"""`type: json`: one JSON file per store under the backend's directory.

Parlant's JSON adapter with atomic saves (`parlant_router.backends.json_atomic`): a crash
leaves every store file whole, and a file that is not refuses to open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parlant_router.backends.base import Backend
from parlant_router.backends.json_atomic import AtomicJSONFileDatabase, JsonStoreFileError
from parlant_router.errors import RouterError

if TYPE_CHECKING:
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.config.routes import ResolvedRoute


class JsonBackend(Backend):
    """One AtomicJSONFileDatabase per store (`<directory>/<store>.json`)."""

    async def database(self, route: ResolvedRoute) -> DocumentDatabase:
        if route.json_file is None:
            raise RouterError(f"stores.{route.store}: the json backend resolved no file")
        path = route.json_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return await self.context.stack.enter_async_context(
                AtomicJSONFileDatabase(self.context.logger, path)
            )
        except OSError as error:
            raise RouterError(
                f"stores.{route.store}: cannot use {path}: {error.strerror or error}"
            ) from None
        except JsonStoreFileError as error:
            # Opening it as an empty store would overwrite what a backup could restore.
            raise RouterError(f"stores.{route.store}: {error}") from None

    def describe(self) -> str:
        return f"json files in {self.config.directory}"  # type: ignore[union-attr]
