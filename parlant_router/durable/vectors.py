"""The vector part of the vector-backed stores: `vector: snowflake | transient | chroma | qdrant`.

Durability rule (a store has two parts, and a restart must not keep one without the other):

==================  ==================  ==============================================
documents           vectors             at startup
==================  ==================  ==============================================
snowflake           snowflake           both kept: vector documents and embeddings in
                                        the store's tables, nothing embedded again
durable backend     transient           rebuilt: vector documents are kept in the
                                        documents' backend and embedded again
durable backend     chroma / qdrant     both kept, used as they are
transient           transient           both lost together, nothing to do
transient           chroma / qdrant     refused: vectors would outlive their documents
==================  ==================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from parlant.adapters.vector_db.transient import TransientVectorDatabase
from parlant.core.loggers import Logger
from parlant.core.nlp.embedding import EmbedderFactory, EmbeddingCache
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.persistence.vector_database import VectorDatabase
from parlant.core.tracer import Tracer

from parlant_router.errors import RouterError
from parlant_router.vectors.collection import ChangeAnnouncements
from parlant_router.vectors.database import StoredVectorDatabase

if TYPE_CHECKING:
    from contextlib import AsyncExitStack


DURABLE_VECTOR_CHOICES = ("chroma", "qdrant")


class VectorRoute(Protocol):
    """What this module needs of a route (`parlant_router.config.routes.ResolvedRoute` is
    one); a protocol, so that these wrappers stay below the config layer."""

    @property
    def store(self) -> str: ...
    @property
    def backend_name(self) -> str: ...
    @property
    def vector(self) -> str | None: ...
    @property
    def vector_directory(self) -> Path | None: ...


@dataclass(frozen=True)
class VectorContext:
    """What Parlant's vector adapters need, taken from the container being configured."""

    logger: Logger
    tracer: Tracer
    embedder_factory: EmbedderFactory
    embedding_cache_provider: Callable[[], EmbeddingCache]
    stack: AsyncExitStack
    announcements: ChangeAnnouncements | None = None
    """The backend's change feed under `server.replicas: many`: stored vector collections
    announce their writes on it and read again what other processes announce."""


def check_vector_durability(route: VectorRoute, documents_durable: bool) -> None:
    """Refuse a route whose vectors would outlive its documents (see the module docstring)."""
    vector = route.vector or "transient"
    if vector in DURABLE_VECTOR_CHOICES and not documents_durable:
        raise RouterError(
            f"stores.{route.store}: vector '{vector}' keeps vectors across restarts but backend "
            f"'{route.backend_name}' loses the documents they index; route the store to a durable "
            "backend or use vector: transient"
        )


async def open_vector_database(
    route: VectorRoute,
    *,
    documents: DocumentDatabase,
    documents_durable: bool,
    context: VectorContext,
) -> VectorDatabase:
    """The vector database of `route`, entered into `context.stack` where it needs closing."""
    check_vector_durability(route, documents_durable)
    vector = route.vector or "transient"
    if vector == "transient" and not documents_durable:
        return TransientVectorDatabase(
            context.logger,
            context.tracer,
            context.embedder_factory,
            context.embedding_cache_provider,
        )
    if vector in ("transient", "snowflake"):
        return StoredVectorDatabase(
            documents,
            logger=context.logger,
            tracer=context.tracer,
            embedder_factory=context.embedder_factory,
            store=route.store,
            keep_embeddings=vector == "snowflake",
            announcements=context.announcements,
        )

    directory = route.vector_directory
    if directory is None:
        raise RouterError(f"stores.{route.store}: vector '{vector}' resolved no vector_directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RouterError(
            f"stores.{route.store}.vector_directory: cannot create {directory}: "
            f"{error.strerror or error}"
        ) from None

    if vector == "chroma":
        try:
            from parlant.adapters.vector_db.chroma import ChromaDatabase
        except ImportError:
            raise RouterError(
                f"stores.{route.store}: vector 'chroma' needs chromadb: pip install 'parlant[chroma]'"
            ) from None
        chroma = ChromaDatabase(
            context.logger,
            context.tracer,
            directory,
            context.embedder_factory,
            context.embedding_cache_provider,
        )
        return await context.stack.enter_async_context(chroma)

    if vector == "qdrant":
        try:
            from parlant.adapters.vector_db.qdrant import QdrantDatabase
        except ImportError:
            raise RouterError(
                f"stores.{route.store}: vector 'qdrant' needs qdrant-client: "
                "pip install 'parlant[qdrant]'"
            ) from None
        qdrant = QdrantDatabase(
            context.logger,
            context.tracer,
            path=directory,
            embedder_factory=context.embedder_factory,
            embedding_cache_provider=context.embedding_cache_provider,
        )
        return await context.stack.enter_async_context(qdrant)

    raise RouterError(f"stores.{route.store}: unknown vector choice '{vector}'")
