"""What verification compares: per collection, the number of documents and a checksum that
does not depend on their order (each document's SHA-256 over its canonical JSON, summed
modulo 2^256), so a source read in one order and a destination read in another agree.

Canonical JSON: keys sorted, no spaces, UTF-8, and a float with an integral value written as
an integer (a JSON column may give `1` back for `1.0`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

_MODULUS = 1 << 256


def canonical_json(document: Any) -> bytes:
    """`document` as the bytes its checksum is taken over."""
    return json.dumps(
        _normalized(document), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8", "surrogatepass")


def _normalized(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


@dataclass
class Digest:
    """Documents, bytes (of canonical JSON) and the order-free checksum of a collection."""

    documents: int = 0
    bytes: int = 0
    _sum: int = 0

    def add(self, document: Any) -> None:
        data = canonical_json(document)
        self.documents += 1
        self.bytes += len(data)
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(data).digest(), "big")) % _MODULUS

    @property
    def checksum(self) -> str:
        return f"{self._sum:064x}"

    def matches(self, other: Digest) -> bool:
        return self.documents == other.documents and self._sum == other._sum
