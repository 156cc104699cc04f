"""Resolved routes: every store with its backend and every naming default applied.

`resolve_routes` turns a validated `ParlantConfig` into one `ResolvedRoute` per
configured store, with every default applied (table prefixes, JSON file names,
vector directories). The router builds the container from it and
`parlant-router routes` prints it. No field ever holds a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from parlant_router.config.models import (
    BackendConfig,
    CustomBackendConfig,
    JsonBackendConfig,
    MongoBackendConfig,
    ParlantConfig,
    SnowflakeBackendConfig,
    TransientBackendConfig,
    cache_bytes,
)
from parlant_router.config.naming import effective_table_prefix, stored_table_names
from parlant_router.stores.catalog import STORE_NAMES, STORES


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
    cache_max_bytes: int | None = None
    """The bound of the store's read cache, or None when it has none."""
    retention: timedelta | None = None
    """How long the store keeps what is no longer active (sessions, evaluations), or None."""


def _snowflake_scope(backend: SnowflakeBackendConfig) -> tuple[str, str]:
    # Without an authentication method the connection comes from SNOWFLAKE_* at
    # connect time, so that is also where the database and schema come from.
    from_env = backend.auth_method == "env"

    def part(value: str | None, variable: str) -> str:
        if from_env:
            return os.environ.get(variable, "").upper() or f"${variable}"
        return value.upper() if value else "<default>"

    return part(backend.database, "SNOWFLAKE_DATABASE"), part(backend.schema_, "SNOWFLAKE_SCHEMA")


def _location(
    store: str,
    backend: BackendConfig,
    prefix: str | None,
    json_file: Path | None,
    *,
    vector_rows: bool,
) -> str:
    if isinstance(backend, SnowflakeBackendConfig):
        assert prefix is not None
        database, schema = _snowflake_scope(backend)
        tables = ", ".join(
            f"{database}.{schema}.{t}"
            for t in stored_table_names(store, prefix, "snowflake", vectors=vector_rows)
        )
        return f"emulator:{backend.emulator}; {tables}" if backend.emulator else tables
    if isinstance(backend, MongoBackendConfig):
        assert prefix is not None
        names = ", ".join(stored_table_names(store, prefix, "mongodb", vectors=vector_rows))
        return f"mongodb database {backend.database!r}: {names}"
    if isinstance(backend, JsonBackendConfig):
        return str(json_file)
    if isinstance(backend, TransientBackendConfig):
        return "memory"
    assert isinstance(backend, CustomBackendConfig)
    return f"custom {backend.factory}"


def default_vector(backend_type: str) -> str:
    """The vector database of a vector-backed store that names none: its embeddings stored
    beside its documents on snowflake, in memory elsewhere."""
    return "snowflake" if backend_type == "snowflake" else "transient"


def resolve_routes(config: ParlantConfig) -> list[ResolvedRoute]:
    """One `ResolvedRoute` per store named in the config, in Parlant's store order."""
    routes: list[ResolvedRoute] = []
    for store in STORE_NAMES:
        route = config.stores.get(store)
        if route is None:
            continue
        backend = config.backends[route.backend]
        prefix = effective_table_prefix(store, backend.type, route.table_prefix)
        json_file = (
            backend.directory / f"{store}.json" if isinstance(backend, JsonBackendConfig) else None
        )
        vector: str | None = None
        vector_directory: Path | None = None
        if STORES[store].vector_backed:
            vector = route.vector or default_vector(backend.type)
        # Vector rows on the store's backend: snowflake's, or transient's durable copy.
        vector_rows = vector == "snowflake" or (
            vector == "transient" and backend.type != "transient"
        )
        location = _location(store, backend, prefix, json_file, vector_rows=vector_rows)
        if vector is not None:
            if vector in ("chroma", "qdrant"):
                vector_directory = route.vector_directory or (
                    config.server.home / "vectors" / store
                )
                location += f"; vectors: {vector} {vector_directory}"
            elif vector == "snowflake":
                location += "; vectors: snowflake (embeddings stored)"
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
                cache_max_bytes=(
                    cache_bytes(backend, route) if STORES[store].cache_partitions else None
                ),
                retention=route.retention,
            )
        )
    return routes
