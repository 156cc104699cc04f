"""Deterministic text embeddings and token estimates, with no model and no download.

Embeddings hash words and character trigrams into a fixed number of
dimensions (the "hashing trick") and L2-normalise the result, so texts that
share words or word fragments point in similar directions. This is enough for
Parlant's vector stores to store and find entities; it is not semantic search.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from parlant.core.nlp.embedding import Embedder, EmbeddingResult
from parlant.core.nlp.tokenization import EstimatingTokenizer
from typing_extensions import override

#: Vector size of :class:`OfflineEmbedder`.
OFFLINE_EMBEDDING_DIMENSIONS = 256

_WORD = re.compile(r"\w+", re.UNICODE)
# Words, then single punctuation marks: close to how BPE tokenizers split text.
_TOKEN_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
# BPE vocabularies hold common words whole and split long ones into pieces
# of a few characters: one token per started 6 characters of a word.
_CHARS_PER_TOKEN = 6

_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5
_EMPTY_TEXT_FEATURE = "\x00empty"


class OfflineTokenizer(EstimatingTokenizer):
    """Estimates token counts from words and punctuation, without a vocabulary file."""

    @override
    async def estimate_token_count(self, prompt: str) -> int:
        return estimate_tokens(prompt)


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens a BPE tokenizer would make of ``text``."""
    return sum(
        max(1, math.ceil(len(piece) / _CHARS_PER_TOKEN)) for piece in _TOKEN_PIECE.findall(text)
    )


def embed_text(text: str, dimensions: int = OFFLINE_EMBEDDING_DIMENSIONS) -> list[float]:
    """Return the unit-length hashed embedding of ``text``.

    Case-insensitive; identical texts give identical vectors in every process
    (the hash is BLAKE2b, not Python's per-process salted ``hash``).
    """
    vector = [0.0] * dimensions
    words = _WORD.findall(text.lower())
    if not words:
        words = [_EMPTY_TEXT_FEATURE]
    for word in words:
        _add_feature(vector, "w:" + word, _WORD_WEIGHT)
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            _add_feature(vector, "t:" + padded[i : i + 3], _TRIGRAM_WEIGHT)
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def _add_feature(vector: list[float], feature: str, weight: float) -> None:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    # The low bit picks a sign so that colliding features tend to cancel out
    # instead of piling up in one dimension.
    index = (value >> 1) % len(vector)
    vector[index] += weight if value & 1 else -weight


class OfflineEmbedder(Embedder):
    """Hashed bag-of-words-and-trigrams embedder; see :func:`embed_text`.

    Constructed without arguments so that Parlant's ``EmbedderFactory`` can
    build it from the container by type, as it does for every embedder.
    """

    def __init__(self) -> None:
        self._tokenizer = OfflineTokenizer()

    @override
    async def embed(self, texts: list[str], hints: Mapping[str, Any] = {}) -> EmbeddingResult:
        vectors: Sequence[Sequence[float]] = [embed_text(t, self.dimensions) for t in texts]
        return EmbeddingResult(vectors=vectors)

    @property
    @override
    def id(self) -> str:
        return "offline/hashed-ngrams"

    @property
    @override
    def max_tokens(self) -> int:
        return 8192

    @property
    @override
    def tokenizer(self) -> EstimatingTokenizer:
        return self._tokenizer

    @property
    @override
    def dimensions(self) -> int:
        return OFFLINE_EMBEDDING_DIMENSIONS
