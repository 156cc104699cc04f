"""`parlant-router check`: connect to every backend in use and probe each routed store.

In the manner of `dbt debug`: for each routed store, open its database exactly as the
server would (same backend, same table prefix or file) and, with `write=True`, create a
scratch collection named so it cannot collide with Parlant's
(`parlant_router_probe_<random>`), insert a document, read it back, and drop the
collection. With `write=False` it only connects and reads the store's `metadata`
collection, when there is one. Every failure becomes a one-line reason without secrets.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parlant_router.backends.base import Backend
from parlant_router.config.loading import LoadedConfig
from parlant_router.config.naming import stored_collection_name
from parlant_router.config.routes import ResolvedRoute, resolve_routes
from parlant_router.config.secrets import backend_secrets
from parlant_router.errors import describe_exception

if TYPE_CHECKING:
    from parlant.core.persistence.document_database import DocumentDatabase

    from parlant_router.backends import BackendContext

PROBE_PREFIX = "parlant_router_probe_"
_MAX_REASON = 300


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of probing one routed store."""

    store: str
    backend: str
    ok: bool
    detail: str
    """What was done (ok) or the one-line reason it failed."""


def reason(error: BaseException, secret_values: Iterable[str] = ()) -> str:
    """One line saying why `error` happened, with any known secret masked."""
    return describe_exception(error, secrets=secret_values, limit=_MAX_REASON)


def _scratch_location(route: ResolvedRoute, name: str) -> str:
    if route.table_prefix is not None:
        return stored_collection_name(route.table_prefix, name, route.backend.type)
    if route.json_file is not None:
        return f"{name} in {route.json_file}"
    return name


async def _probe_write(database: DocumentDatabase, route: ResolvedRoute) -> str:
    from parlant.core.persistence.document_database import BaseDocument, identity_loader

    name = f"{PROBE_PREFIX}{secrets.token_hex(4)}"
    token = secrets.token_hex(8)
    document: dict[str, Any] = {
        "id": token,
        "version": "0.1.0",
        "creation_utc": datetime.now(timezone.utc).isoformat(),
    }
    collection = await database.get_or_create_collection(name, BaseDocument, identity_loader)
    try:
        await collection.insert_one(BaseDocument(**document))  # type: ignore[typeddict-item]
        found = await collection.find_one({"id": {"$eq": token}})
        if found is None or found.get("id") != token:
            raise RuntimeError(f"wrote a document to {name} but could not read it back")
    finally:
        await database.delete_collection(name)
    return f"created, wrote, read and dropped {_scratch_location(route, name)}"


async def _probe_read(database: DocumentDatabase) -> str:
    from parlant.core.persistence.document_database import BaseDocument, identity_loader

    try:
        metadata = await database.get_collection("metadata", BaseDocument, identity_loader)
    except ValueError:
        # Parlant's adapters raise ValueError for a collection that does not exist yet.
        return "connected; the store holds no data yet"
    documents = list(await metadata.find({}))
    version = documents[0].get("version") if documents else None
    return f"connected and read the store's metadata (schema version {version or 'unset'})"


async def _vector_summary(database: DocumentDatabase, route: ResolvedRoute) -> str:
    """What the store's vector rows hold: how many, and embedded by which model (`vector:
    snowflake`; a store whose rows lack embeddings for the server's embedder embeds them
    at its next start)."""
    from parlant.core.persistence.document_database import BaseDocument, identity_loader

    from parlant_router.stores.catalog import STORES
    from parlant_router.vectors.naming import VECTOR_ROWS_PREFIX

    parts: list[str] = []
    for name in STORES[route.store].vector_collections:
        try:
            rows = await database.get_collection(
                VECTOR_ROWS_PREFIX + name, BaseDocument, identity_loader
            )
        except ValueError:
            parts.append(f"vectors of {name}: none yet")
            continue
        models: dict[str, int] = {}
        documents = list(await rows.find({}))
        for row in documents:
            model = row.get("embedder")
            if model:
                key = f"{model} ({row.get('dimensions')} dims)"
                models[key] = models.get(key, 0) + 1
        embedded = ", ".join(f"{count:,} by {model}" for model, count in sorted(models.items()))
        parts.append(
            f"vectors of {name}: {len(documents):,} document(s), "
            + (f"embeddings stored: {embedded}" if embedded else "no embedding stored")
        )
    return "; ".join(parts)


def _json_file_creatable(path: Path) -> tuple[bool, str]:
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False, f"cannot create {path}: {existing} is not a directory"
    if not os.access(existing, os.W_OK):
        return False, f"cannot create {path}: {existing} is not writable"
    return True, f"{path} does not exist yet (the server creates it)"


async def _probe(
    route: ResolvedRoute,
    backends: dict[str, Backend | BaseException],
    context: BackendContext,
    write: bool,
    secret_values: list[str],
) -> ProbeResult:
    from parlant_router.backends import open_backend

    opened = backends.get(route.backend_name)
    if opened is None:
        try:
            opened = await open_backend(route.backend_name, route.backend, context)
        except Exception as error:
            opened = error
        backends[route.backend_name] = opened
    if isinstance(opened, BaseException):
        return ProbeResult(route.store, route.backend_name, False, reason(opened, secret_values))
    if not write and route.json_file is not None and not route.json_file.exists():
        # Opening would create the file: a read-only probe checks where it would go.
        ok, detail = _json_file_creatable(route.json_file)
        return ProbeResult(route.store, route.backend_name, ok, detail)
    try:
        database = await opened.database(route)
        done = await (_probe_write(database, route) if write else _probe_read(database))
        done += f" on {opened.describe()}"
        if route.vector in ("snowflake", "transient") and opened.durable:
            done += "; " + await _vector_summary(database, route)
    except Exception as error:
        return ProbeResult(route.store, route.backend_name, False, reason(error, secret_values))
    return ProbeResult(route.store, route.backend_name, True, done)


async def check_stores(loaded: LoadedConfig, *, write: bool = True) -> list[ProbeResult]:
    """Probe every routed store of `loaded`; one ProbeResult per store, in route order."""
    routes = resolve_routes(loaded.config)
    if not routes:
        return []
    from parlant_router.nlp import bind_command_home

    bind_command_home(loaded.config.server.home, loaded.config.server.nlp, "check")

    from parlant.core.loggers import LogLevel, StdoutLogger
    from parlant.core.tracer import LocalTracer

    from parlant_router.backends import BackendContext

    secret_values = backend_secrets(loaded.config)
    results: list[ProbeResult] = []
    backends: dict[str, Backend | BaseException] = {}
    async with AsyncExitStack() as stack:
        context = BackendContext(
            logger=StdoutLogger(LocalTracer(), LogLevel.ERROR, logger_id="parlant-router check"),
            stack=stack,
        )
        for route in routes:
            results.append(await _probe(route, backends, context, write, secret_values))
        if loaded.config.server.replicas == "many":
            results.append(await _probe_replicas(loaded, routes, backends, write, secret_values))
    return results


async def _probe_replicas(
    loaded: LoadedConfig,
    routes: list[ResolvedRoute],
    backends: dict[str, Backend | BaseException],
    write: bool,
    secret_values: list[str],
) -> ProbeResult:
    """`server.replicas: many`: a change published by one writer of the sessions' backend's
    change table is read by another."""
    server = loaded.config.server
    route = next(r for r in routes if r.store == "sessions")  # validated at load
    label = "(replicas: many)"
    backend = backends.get(route.backend_name)
    if not isinstance(backend, Backend):
        return ProbeResult(label, route.backend_name, False, "the sessions' backend did not open")
    if not write:
        return ProbeResult(label, route.backend_name, True, "not probed (--no-write)")
    try:
        detail = await _probe_change_feed(backend, server.max_staleness)
    except Exception as error:
        return ProbeResult(label, route.backend_name, False, reason(error, secret_values))
    return ProbeResult(label, route.backend_name, True, detail)


async def _probe_change_feed(backend: Backend, max_staleness: float) -> str:
    from parlant_router.snowflake.change_feed import TABLE

    publisher = await backend.change_feed(max_staleness)
    assert publisher is not None, "validated at load: sessions are on snowflake"
    async with publisher.sibling() as reader:
        seen: list[str | None] = []
        token = secrets.token_hex(8)
        reader.subscribe(PROBE_PREFIX, seen.append)
        publisher.record(PROBE_PREFIX, token)
        await publisher.tick()
        await reader.tick()
        if token not in seen:
            raise RuntimeError(f"a change written to {TABLE} was not read back by another writer")
    return (
        f"another writer read a change published through {TABLE} "
        f"(max staleness {max_staleness:g} s)"
    )
