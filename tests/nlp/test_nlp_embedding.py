"""Offline embeddings: deterministic, unit length, and closer for similar texts."""

from __future__ import annotations

import math
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st
from lagom import Container
from parlant.adapters.vector_db.transient import TransientVectorDatabase
from parlant.core.common import Version
from parlant.core.loggers import LogLevel, StdoutLogger
from parlant.core.nlp.embedding import EmbedderFactory, NullEmbeddingCache
from parlant.core.persistence.common import ObjectId
from parlant.core.persistence.vector_database import BaseDocument
from parlant.core.tracer import LocalTracer

from parlant_router.nlp.embedding import (
    OFFLINE_EMBEDDING_DIMENSIONS,
    OfflineEmbedder,
    OfflineTokenizer,
    embed_text,
    estimate_tokens,
)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@given(st.text(max_size=300))
def test_every_text_embeds_to_a_unit_vector_of_fixed_size(text: str) -> None:
    vector = embed_text(text)
    assert len(vector) == OFFLINE_EMBEDDING_DIMENSIONS
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-9)


def test_same_text_same_vector_across_processes() -> None:
    text = "Where is my parcel? It was due on Monday."
    script = (
        f"from parlant_router.nlp.embedding import embed_text;print(repr(embed_text({text!r})))"
    )
    # Python's own str hash is salted per process: the embedding must not be.
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == repr(embed_text(text))


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    base = embed_text("I want to return my shoes")
    similar = embed_text("How do I return these shoes?")
    unrelated = embed_text("What is the weather forecast for Paris tomorrow")
    assert _cosine(base, similar) > _cosine(base, unrelated)
    # Case and punctuation do not matter.
    assert embed_text("Return my SHOES!") == embed_text("return my shoes")


def test_word_fragments_count() -> None:
    # Trigrams make inflections of a word near each other.
    base = embed_text("cancel")
    assert _cosine(base, embed_text("cancellation")) > _cosine(base, embed_text("weather"))


async def test_embedder_batches_in_order() -> None:
    embedder = OfflineEmbedder()
    texts = ["alpha", "beta", "alpha"]
    result = await embedder.embed(texts)
    assert [list(v) for v in result.vectors] == [embed_text(t) for t in texts]
    assert embedder.dimensions == OFFLINE_EMBEDDING_DIMENSIONS
    assert embedder.max_tokens > 0
    assert embedder.id


async def test_token_estimate_grows_with_text() -> None:
    tokenizer = OfflineTokenizer()
    assert await tokenizer.estimate_token_count("") == 0
    short = await tokenizer.estimate_token_count("Hello, world!")
    assert short == 4  # Hello , world !
    long = await tokenizer.estimate_token_count("Hello, world! " * 10)
    assert long == 10 * short
    # Long words count as several tokens.
    assert estimate_tokens("internationalization") > estimate_tokens("nation")


async def test_parlant_vector_search_finds_the_closest_document() -> None:
    # Through Parlant's own vector layer: EmbedderFactory builds the embedder
    # from a bare container by its type, as the server does for vector stores.
    tracer = LocalTracer()
    database = TransientVectorDatabase(
        StdoutLogger(tracer, LogLevel.WARNING),
        tracer,
        EmbedderFactory(Container()),
        NullEmbeddingCache,
    )
    collection = await database.get_or_create_collection(
        "docs", BaseDocument, OfflineEmbedder, document_loader=_identity
    )
    contents = [
        "How to return shoes you bought online",
        "Opening hours of the Paris store",
        "Tracking a parcel that has not arrived",
    ]
    for i, content in enumerate(contents):
        await collection.insert_one(
            BaseDocument(
                id=ObjectId(str(i)),
                version=Version.String("0.1.0"),
                content=content,
                checksum=str(i),
            )
        )

    for query, expected in [
        ("I want to return my shoes", contents[0]),
        ("where is my parcel", contents[2]),
        ("when does the store in Paris open", contents[1]),
    ]:
        # Parlant's transient collection returns every document, nearest first.
        results = await collection.find_similar_documents({}, query, k=1)
        assert results[0].document["content"] == expected
        assert results[0].distance < results[1].distance


async def _identity(document: BaseDocument) -> BaseDocument:
    return document
