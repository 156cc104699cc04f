"""Resolved routes: the single source of the naming rules.

`resolve_routes` turns a validated `ParlantConfig` into one `ResolvedRoute` per
configured store, with every default applied (table prefixes, JSON file names,
vector directories). The router builds the container from it and
`parlant-router routes` prints it. No field ever holds a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from parlant_router.config import (
    TABLE_BACKEND_TYPES,
    BackendConfig,
    CustomBackend,
    JsonBackend,
    MongoBackend,
    ParlantConfig,
    SnowflakeBackend,
    TransientBackend,
)
from parlant_router.stores import STORE_NAMES, STORES

METADATA_COLLECTION = "metadata"
"""The collection Parlant's document stores add beside their own (schema version)."""


@dataclass(frozen=True)
class ResolvedRoute:
    """One store with its backend and every naming default applied."""

    store: str
    backend_name: str
    backend: BackendConfig
    table_prefix: str | None
    """Effective prefix on snowflake/mongodb backends (given or `PARLANT_<STORE>_`), else None."""
    json_file: Path | None
    """`<directory>/<store>.json` on a json backend, else None."""
    vector: str | None
    """The vector database of a vector-backed store, else None."""
    vector_directory: Path | None
    """Where chroma/qdrant persist (given or `<server.home>/vectors/<store>`), else None."""
    location: str
    """Where the data lives, for people: table names, a file, `memory`, ..."""


def default_table_prefix(store: str) -> str:
    """`PARLANT_<STORE>_`, the seed's convention (`PARLANT_SESSIONS_`, ...)."""
    return f"PARLANT_{store.upper()}_"


def effective_table_prefix(store: str, backend: BackendConfig, given: str | None) -> str | None:
    """The prefix a store's tables get on `backend`: given or `PARLANT_<STORE>_` on snowflake and
    mongodb, given as is to a custom factory, None on json and transient (no tables)."""
    if backend.type == "custom":
        return given
    if backend.type not in TABLE_BACKEND_TYPES:
        return None
    return given or default_table_prefix(store)


def collection_names(store: str) -> tuple[str, ...]:
    """The collections a store opens, with the metadata collection Parlant adds."""
    return (*STORES[store].collections, METADATA_COLLECTION)


def snowflake_table_names(store: str, prefix: str) -> list[str]:
    """Table names as Snowflake stores them (unquoted identifiers fold to upper case)."""
    return [f"{prefix}{collection}".upper() for collection in collection_names(store)]


def _snowflake_scope(backend: SnowflakeBackend) -> tuple[str, str]:
    # Without an authentication method the connection comes from SNOWFLAKE_* at
    # connect time, so that is also where the database and schema come from.
    from_env = backend.auth_method == "env"

    def part(value: str | None, variable: str) -> str:
        if from_env:
            return os.environ.get(variable, "").upper() or f"${variable}"
        return value.upper() if value else "<default>"

    return part(backend.database, "SNOWFLAKE_DATABASE"), part(backend.schema_, "SNOWFLAKE_SCHEMA")


def _location(
    store: str, backend: BackendConfig, prefix: str | None, json_file: Path | None
) -> str:
    if isinstance(backend, SnowflakeBackend):
        assert prefix is not None
        database, schema = _snowflake_scope(backend)
        tables = ", ".join(f"{database}.{schema}.{t}" for t in snowflake_table_names(store, prefix))
        return f"emulator:{backend.emulator}; {tables}" if backend.emulator else tables
    if isinstance(backend, MongoBackend):
        assert prefix is not None
        names = ", ".join(f"{prefix}{c}" for c in collection_names(store))
        return f"mongodb database {backend.database!r}: {names}"
    if isinstance(backend, JsonBackend):
        return str(json_file)
    if isinstance(backend, TransientBackend):
        return "memory"
    assert isinstance(backend, CustomBackend)
    return f"custom {backend.factory}"


def resolve_routes(config: ParlantConfig) -> list[ResolvedRoute]:
    """One `ResolvedRoute` per store named in the config, in Parlant's store order."""
    routes: list[ResolvedRoute] = []
    for store in STORE_NAMES:
        route = config.stores.get(store)
        if route is None:
            continue
        backend = config.backends[route.backend]
        prefix = effective_table_prefix(store, backend, route.table_prefix)
        json_file = (
            backend.directory / f"{store}.json" if isinstance(backend, JsonBackend) else None
        )
        vector: str | None = None
        vector_directory: Path | None = None
        location = _location(store, backend, prefix, json_file)
        if STORES[store].vector_backed:
            vector = route.vector
            if vector != "transient":
                vector_directory = route.vector_directory or (
                    config.server.home / "vectors" / store
                )
                location += f"; vectors: {vector} {vector_directory}"
            else:
                location += "; vectors: memory"
        routes.append(
            ResolvedRoute(
                store=store,
                backend_name=route.backend,
                backend=backend,
                table_prefix=prefix,
                json_file=json_file,
                vector=vector,
                vector_directory=vector_directory,
                location=location,
            )
        )
    return routes
