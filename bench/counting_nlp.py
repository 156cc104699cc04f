"""The offline NLP service with an embedder that counts what it embeds, across processes.

For the vector benchmarks and tests: a server started with
``server.nlp: bench.counting_nlp:counting_nlp_service`` appends one line per call to its
embedder to the file named by ``PARLANT_ROUTER_EMBED_LOG`` (``<texts> <kind>``, kind
``query`` for a search's query, which Parlant embeds with hints, ``document`` otherwise).
``PARLANT_ROUTER_EMBED_MODEL`` changes the embedder's id (its vectors stay the offline
ones): a server started with another value runs "another embedding model".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lagom import Container
from parlant.core.nlp.embedding import Embedder, EmbeddingResult
from parlant.core.nlp.service import EmbedderHints, NLPService

from parlant_router.nlp.embedding import OfflineEmbedder
from parlant_router.nlp.offline import OfflineNLPService

LOG_VARIABLE = "PARLANT_ROUTER_EMBED_LOG"
MODEL_VARIABLE = "PARLANT_ROUTER_EMBED_MODEL"


class CountingEmbedder(OfflineEmbedder):
    """`OfflineEmbedder` that logs each call (built by type, without arguments, as Parlant's
    EmbedderFactory builds embedders)."""

    async def embed(self, texts: list[str], hints: Mapping[str, Any] = {}) -> EmbeddingResult:
        log = os.environ.get(LOG_VARIABLE)
        if log:
            with open(log, "a", encoding="utf-8") as file:
                file.write(f"{len(texts)} {'query' if hints else 'document'}\n")
        return await super().embed(texts, hints)

    @property
    def id(self) -> str:
        model = os.environ.get(MODEL_VARIABLE)
        return f"offline/hashed-ngrams{'+' + model if model else ''}"


class CountingNLPService(OfflineNLPService):
    """The offline service whose embedder is a `CountingEmbedder`."""

    async def get_embedder(self, hints: EmbedderHints = {}) -> Embedder:  # noqa: B006 - as Parlant
        return CountingEmbedder()


def counting_nlp_service(container: Container) -> NLPService:
    """`server.nlp: bench.counting_nlp:counting_nlp_service`."""
    return CountingNLPService.from_container(container)


@dataclass(frozen=True)
class EmbedCount:
    """What a log holds: calls and texts, for documents and for queries."""

    document_calls: int
    document_texts: int
    query_calls: int
    query_texts: int


def read_embed_log(path: Path) -> EmbedCount:
    """The counts of a `PARLANT_ROUTER_EMBED_LOG` file (zeros when it does not exist)."""
    counts = {"document": [0, 0], "query": [0, 0]}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            texts, kind = line.split()
            counts[kind][0] += 1
            counts[kind][1] += int(texts)
    return EmbedCount(
        document_calls=counts["document"][0],
        document_texts=counts["document"][1],
        query_calls=counts["query"][0],
        query_texts=counts["query"][1],
    )
