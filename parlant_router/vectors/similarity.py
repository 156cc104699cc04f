"""Cosine similarity in process, computed as Parlant's transient vector database computes it.

Parlant's `TransientVectorDatabase` keeps its vectors in a `nano_vectordb.NanoVectorDB`:
each vector is normalized on its own when it is stored (float32), the query is normalized,
the scores are `np.dot(matrix[candidates], query)` and the candidates are ranked by
`np.argsort(scores)` read backwards. Doing exactly the same, on the same float32 values in
the same order, gives the same scores bit for bit and the same order, ties included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from parlant_router.vectors.rows import Vector


def normalized(vector: Vector) -> Vector:
    """`vector` scaled to length 1 (nano_vectordb's `normalize`, float32 in and out)."""
    array = np.asarray(vector, dtype=np.float32)
    result: Vector = array / np.linalg.norm(array, axis=-1, keepdims=True)
    return result


class SimilarityMatrix:
    """The normalized vectors of a collection's rows, one per row, in the rows' order."""

    def __init__(self, dimensions: int) -> None:
        self._dimensions = dimensions
        self._rows: list[Vector] = []
        self._matrix: npt.NDArray[np.float32] | None = None

    def reset(self, vectors: Sequence[Vector]) -> None:
        self._rows = [normalized(v) for v in vectors]
        self._matrix = None

    def insert(self, position: int, vector: Vector) -> None:
        self._rows.insert(position, normalized(vector))
        self._matrix = None

    def replace(self, position: int, vector: Vector) -> None:
        self._rows[position] = normalized(vector)
        self._matrix = None

    def delete(self, position: int) -> None:
        del self._rows[position]
        self._matrix = None

    def ranked(self, candidates: Sequence[int], query: Vector) -> list[tuple[int, float]]:
        """(position, score) of every candidate, best first, as nano_vectordb ranks them."""
        if not candidates:
            return []
        if self._matrix is None:
            # Built once after a run of writes, not at each one.
            self._matrix = (
                np.vstack(self._rows)
                if self._rows
                else np.zeros((0, self._dimensions), dtype=np.float32)
            )
        index = np.array(candidates)
        scores = np.dot(self._matrix[index], normalized(query))
        order = np.argsort(scores)[-len(candidates) :][::-1]
        return [(int(index[i]), float(scores[i])) for i in order]
