"""`--merge`: which of two documents with the same id a merge keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from parlant.core.common import Version

from parlant_router.transfer.digest import canonical_json

Decision = Literal["insert", "replace", "keep"]


def merge_decision(held: Mapping[str, Any] | None, incoming: Mapping[str, Any]) -> Decision:
    """`insert` when the destination holds no document with the id; else `replace` when the
    incoming one is at a higher `version`, or at the same one with other content (the copy's
    source is the newer data); else `keep` (the destination's is newer, or the same)."""
    if held is None:
        return "insert"
    ordered = _compare_versions(held.get("version"), incoming.get("version"))
    if ordered != 0:
        return "replace" if ordered < 0 else "keep"
    return "keep" if canonical_json(held) == canonical_json(incoming) else "replace"


def _compare_versions(held: Any, incoming: Any) -> int:
    """-1, 0 or 1 as `held` is older than, as new as, or newer than `incoming`."""
    if held == incoming:
        return 0
    try:
        older = Version.from_string(str(held)) < Version.from_string(str(incoming))
    except Exception:
        older = str(held) < str(incoming)
    return -1 if older else 1
