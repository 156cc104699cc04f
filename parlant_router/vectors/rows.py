"""How one vector document and its embedding are stored: a row of a document collection.

Parlant's vector-backed stores write one *vector document* per text to embed (a canned
response writes one for its value and one per signal, all under the response's id). Each
is kept as one document of the collection `vectors_<collection>` of the store's own
document database (`PARLANT_GLOSSARY_VECTORS_GLOSSARY` on Snowflake): the vector
document's own fields, except that ``id`` is the row's key, and these:

========================  ======================================================
``id``                    the row's own key (unique; the vector document's id is not)
``vector_document_id``    the vector document's id
``vector_seq``            insertion order (nanoseconds of the writer's clock)
``vector_content_sha256`` what was embedded: the hash of ``content``
``vector_embedder``       which model embedded it (class and ``Embedder.id``)
``vector_dimensions``     the embedding's length
``vector_embedding``      base64 of the float32 vector (absent when not kept)
========================  ======================================================

The vector document's fields stay at the top, so Parlant's filters run on the rows as they
are (``id`` read as ``vector_document_id``), in the database as in memory; its ``version``
groups rows as Parlant's loaders expect. An embedding is reused while its content hash,
embedder and dimensions match the row; anything else (a new content, a new model) is
embedded again, once.

Rows written before this layout (the vector document alone, keyed by its id) are read as
rows without an embedding, and written again in this layout at the next start.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict, cast

import numpy as np
import numpy.typing as npt
from parlant.core.common import Version
from parlant.core.nlp.embedding import Embedder
from parlant.core.persistence.common import ObjectId, Where
from parlant.core.persistence.vector_database import BaseDocument

Vector = npt.NDArray[np.float32]
VectorLoader = Callable[[BaseDocument], Awaitable[BaseDocument | None]]


class StoredRow(TypedDict, total=False):
    """The keys every stored row has (Parlant's JSON collections insist on each declared
    key); the vector document's other fields, and the embedding's, come beside them."""

    id: ObjectId
    version: Version.String
    vector_document_id: str
    vector_seq: int


#: The fields a row adds to its vector document (their names start with this).
ROW_FIELD_PREFIX = "vector_"


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def embedder_identity(embedder: Embedder) -> str:
    """The model behind `embedder`: its class and its id (one class may serve several
    models, e.g. LiteLLM's, whose id names the model)."""
    return f"{type(embedder).__name__}:{embedder.id}"


def encode_vector(vector: Vector) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode("ascii")


def decode_vector(text: str) -> Vector:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


@dataclass(frozen=True)
class EmbeddingKey:
    """What an embedding was computed from; equal keys mean a reusable embedding."""

    content_sha256: str
    embedder: str
    dimensions: int


@dataclass(frozen=True)
class VectorRow:
    """One stored vector document and, when known, its embedding (raw, not normalized)."""

    key: str
    seq: int
    document: Mapping[str, Any]
    embedded_as: EmbeddingKey | None
    embedding: Vector | None
    earlier_layout: bool = False
    """Read from the layout of earlier versions: to be written again in this one."""

    @staticmethod
    def new(document: Mapping[str, Any]) -> VectorRow:
        return VectorRow(
            key=uuid.uuid4().hex,
            seq=time.time_ns(),
            document=dict(document),
            embedded_as=None,
            embedding=None,
        )

    @property
    def content(self) -> str:
        return str(self.document.get("content", ""))

    def wants(self, key: EmbeddingKey) -> bool:
        """Whether this row's embedding is missing or was computed from something else."""
        return self.embedding is None or self.embedded_as != key

    def with_document(self, document: Mapping[str, Any]) -> VectorRow:
        return replace(self, document=dict(document))

    def with_embedding(self, key: EmbeddingKey, embedding: Vector) -> VectorRow:
        return replace(self, embedded_as=key, embedding=embedding)

    def stored(self, *, keep_embedding: bool) -> dict[str, Any]:
        """The row as a document of the rows collection."""
        stored: dict[str, Any] = {k: v for k, v in self.document.items() if k != "id"}
        stored["id"] = self.key
        stored["vector_document_id"] = self.document.get("id")
        stored["vector_seq"] = self.seq
        if keep_embedding and self.embedding is not None and self.embedded_as is not None:
            stored["vector_content_sha256"] = self.embedded_as.content_sha256
            stored["vector_embedder"] = self.embedded_as.embedder
            stored["vector_dimensions"] = self.embedded_as.dimensions
            stored["vector_embedding"] = encode_vector(self.embedding)
        return stored


def is_row(stored: Mapping[str, Any]) -> bool:
    return "vector_document_id" in stored


def read_row(stored: Mapping[str, Any]) -> VectorRow:
    """A stored row, or a vector document of the earlier layout read as a row without
    embedding."""
    if not is_row(stored):
        return VectorRow(
            key=str(stored["id"]),
            seq=0,
            document=dict(stored),
            embedded_as=None,
            embedding=None,
            earlier_layout=True,
        )
    document = {k: v for k, v in stored.items() if not k.startswith(ROW_FIELD_PREFIX)}
    document["id"] = stored["vector_document_id"]
    embedding = stored.get("vector_embedding")
    key: EmbeddingKey | None = None
    vector: Vector | None = None
    if isinstance(embedding, str) and stored.get("vector_embedder"):
        key = EmbeddingKey(
            content_sha256=str(stored.get("vector_content_sha256")),
            embedder=str(stored["vector_embedder"]),
            dimensions=int(stored.get("vector_dimensions") or 0),
        )
        vector = decode_vector(embedding)
    return VectorRow(
        key=str(stored["id"]),
        seq=int(stored.get("vector_seq") or 0),
        document=document,
        embedded_as=key,
        embedding=vector,
    )


def row_filters(filters: Where) -> Where:
    """Parlant's `filters` on vector documents, as filters on their rows (`id` is the row's
    key there; the vector document's id is `vector_document_id`)."""
    translated: dict[str, Any] = {}
    for field, condition in filters.items():
        if field in ("$and", "$or"):
            translated[field] = [row_filters(c) for c in cast(list[Where], condition)]
        elif field == "id":
            translated["vector_document_id"] = condition
        else:
            translated[field] = condition
    return cast(Where, translated)


def row_loader(
    vector_loader: VectorLoader, *, keep_embedding: bool
) -> Callable[[BaseDocument], Awaitable[BaseDocument | None]]:
    """The loader of the rows collection: Parlant's loader of the vector collection, run on
    each row's vector document (a migrated document whose content changed loses its
    embedding, so it is embedded again); a mirror document of earlier versions becomes a row.

    A row whose vector document the loader keeps as it is comes back unchanged (the same
    object), so a database that skips unchanged groups leaves it unread and unwritten.
    """

    async def load(stored: BaseDocument) -> BaseDocument | None:
        row = read_row(stored)
        loaded = await vector_loader(dict(row.document))  # type: ignore[arg-type]
        if loaded is None:
            return None
        if is_row(stored) and dict(loaded) == dict(row.document):
            return stored
        moved = row.with_document(loaded)
        if moved.content != row.content:
            moved = replace(moved, embedded_as=None, embedding=None)
        return moved.stored(keep_embedding=keep_embedding)  # type: ignore[return-value]

    return load
