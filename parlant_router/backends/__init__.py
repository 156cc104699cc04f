"""Backends of parlant.yaml: one module per `type:`, each opening DocumentDatabases.

`open_backend(name, config, context)` returns the opened `Backend` for a backend entry;
the router keeps one per name and asks it for one database per routed store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from parlant_router.backends.base import Backend, BackendContext
from parlant_router.import_paths import import_object

if TYPE_CHECKING:
    from parlant_router.config.models import BackendConfig

BACKEND_TYPES: dict[str, str] = {
    "snowflake": "parlant_router.backends.snowflake:SnowflakeBackend",
    "json": "parlant_router.backends.json_file:JsonBackend",
    "transient": "parlant_router.backends.transient:TransientBackend",
    "mongodb": "parlant_router.backends.mongodb:MongoBackend",
    "custom": "parlant_router.backends.custom:CustomBackend",
}
"""`type:` -> `module:Class` for each of the config's BACKEND_TYPES, in their order; modules
are imported on use (each needs only its own driver)."""


def backend_class(backend_type: str) -> type[Backend]:
    """The Backend class for a `type:` value."""
    return cast("type[Backend]", import_object(BACKEND_TYPES[backend_type]))


async def open_backend(name: str, config: BackendConfig, context: BackendContext) -> Backend:
    """Construct and open the backend `name`; its resources go to `context.stack`."""
    backend = backend_class(config.type)(name, config, context)
    await backend.open()
    return backend


__all__ = ["BACKEND_TYPES", "Backend", "BackendContext", "backend_class", "open_backend"]
