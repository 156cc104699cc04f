"""Naming rules of routed stores: table prefixes, collections, and names as a backend stores them.

Used by the models (table collisions), `routes` (where each store lives) and `check`
(the scratch table it probes with). Snowflake's own identifier rule lives in
`parlant_router.snowflake.identifiers`; this module applies it, never restates it.
"""

from __future__ import annotations

from parlant_router.snowflake.identifiers import failed_table_name, sanitize_identifier, table_name
from parlant_router.stores.catalog import STORES
from parlant_router.vectors.naming import VECTOR_METADATA_COLLECTION, VECTOR_ROWS_PREFIX

TABLE_PREFIX_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""What a `table_prefix` may be: refused otherwise, never rewritten."""

TABLE_BACKEND_TYPES: frozenset[str] = frozenset({"snowflake", "mongodb"})
"""Backend types that keep each store in prefixed tables (collections)."""

METADATA_COLLECTION = "metadata"
"""The collection Parlant's document stores add beside their own (schema version)."""


def default_table_prefix(store: str) -> str:
    """`PARLANT_<STORE>_` (`PARLANT_SESSIONS_`, ...), as in Parlant's Snowflake guide."""
    return f"PARLANT_{store.upper()}_"


def effective_table_prefix(store: str, backend_type: str, given: str | None) -> str | None:
    """The prefix a store's tables get on a backend of `backend_type`: given or
    `PARLANT_<STORE>_` on snowflake and mongodb, given as is to a custom factory, None on
    json and transient (no tables)."""
    if backend_type == "custom":
        return given
    if backend_type not in TABLE_BACKEND_TYPES:
        return None
    return given or default_table_prefix(store)


def stored_prefix(prefix: str, backend_type: str) -> str:
    """The prefix as the backend compares names (Snowflake folds to upper case)."""
    return sanitize_identifier(prefix) if backend_type == "snowflake" else prefix


def collection_names(store: str, *, vectors: bool = True) -> tuple[str, ...]:
    """The collections a store opens, with the metadata collection Parlant adds and, with
    `vectors`, those of a vector database kept on the store's backend (`vector: snowflake`,
    or `transient` over a durable backend)."""
    spec = STORES[store]
    names = (*spec.collections, METADATA_COLLECTION)
    if vectors and spec.vector_collections:
        rows = tuple(VECTOR_ROWS_PREFIX + c for c in spec.vector_collections)
        names = (*names, *rows, VECTOR_METADATA_COLLECTION)
    return names


def stored_collection_name(prefix: str, collection: str, backend_type: str) -> str:
    """A collection's table (Snowflake) or collection (MongoDB) name under `prefix`."""
    if backend_type == "snowflake":
        return table_name(prefix, collection)
    return f"{prefix}{collection}"


def stored_table_names(
    store: str, prefix: str, backend_type: str, *, vectors: bool = True
) -> list[str]:
    """Every table (collection) name a store uses under `prefix` (`vectors`: see
    `collection_names`)."""
    return [
        stored_collection_name(prefix, c, backend_type)
        for c in collection_names(store, vectors=vectors)
    ]


def every_stored_name(store: str, prefix: str, backend_type: str) -> list[str]:
    """Every table (collection) name a store may create under `prefix`: its collections'
    (`stored_table_names`) and, for each, the one its failed migrations are moved to."""
    if backend_type == "snowflake":
        failed = [failed_table_name(prefix, c) for c in collection_names(store)]
    else:
        failed = [f"{prefix}{c}_failed_migrations" for c in collection_names(store)]
    return [*stored_table_names(store, prefix, backend_type), *failed]
