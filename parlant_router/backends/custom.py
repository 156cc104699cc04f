"""`type: custom`: your own DocumentDatabase, built by `factory: pkg.mod:callable`.

The factory is called once per routed store as ``factory(logger, options, route)`` where
`logger` is Parlant's `Logger`, `options` the backend's `options:` mapping (a fresh dict per
call) and `route` the `ResolvedRoute` (store name, table prefix, ...). It may be sync or
async and must return a `parlant.core.persistence.document_database.DocumentDatabase`.
If the database is an async context manager, the router enters it and exits it at
shutdown; otherwise it is used as it is.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from parlant.core.persistence.document_database import DocumentDatabase

from parlant_router.backends.base import Backend
from parlant_router.errors import RouterError
from parlant_router.import_paths import ImportPathError, import_object

if TYPE_CHECKING:
    from parlant_router.config.models import CustomBackendConfig
    from parlant_router.config.routes import ResolvedRoute


def import_factory(spec: str, *, key: str) -> Any:
    """Import `pkg.mod:attr`; a RouterError naming `key` when it cannot be found."""
    try:
        target = import_object(spec)
    except ImportPathError as error:
        raise RouterError(f"{key}: {error}") from None
    if not callable(target):
        raise RouterError(f"{key}: '{spec}' is not callable")
    return target


class CustomBackend(Backend):
    """A DocumentDatabase from a user factory (see the module docstring for the signature)."""

    @property
    def _config(self) -> CustomBackendConfig:
        return self.config  # type: ignore[return-value]

    async def database(self, route: ResolvedRoute) -> DocumentDatabase:
        factory_spec = self._config.factory
        options: dict[str, Any] = dict(self._config.options)
        key = f"backends.{self.name}.factory"
        factory = import_factory(factory_spec, key=key)
        try:
            result = factory(self.context.logger, options, route)
            if inspect.isawaitable(result):
                result = await result
        except RouterError:
            raise
        except Exception as error:
            raise RouterError(
                f"{key}: '{factory_spec}' failed for store '{route.store}': "
                f"{type(error).__name__}: {error}"
            ) from None
        if not isinstance(result, DocumentDatabase):
            raise RouterError(
                f"{key}: '{factory_spec}' returned {type(result).__name__}, not a DocumentDatabase"
            )
        if isinstance(result, AbstractAsyncContextManager) or hasattr(result, "__aenter__"):
            entered: object = await self.context.stack.enter_async_context(result)  # type: ignore[arg-type]
            return entered if isinstance(entered, DocumentDatabase) else result
        return result

    def describe(self) -> str:
        return f"custom factory {self._config.factory}"
