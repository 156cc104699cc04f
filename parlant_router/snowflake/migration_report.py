"""What opening a collection with a loader did to its documents, told to an observer.

A database that migrates (``SnowflakeDocumentDatabase`` does, and any database can be
observed through its loaders) reports, per collection and stored version, how many
documents kept as they were, were migrated to which version, or failed; and, while it
reads and writes a migration, its progress. `parlant-router migrate` turns both into its
table and its progress bars; a database without an observer reports nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

OutcomeKind = Literal["unchanged", "migrated", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What the loader did to a document: kept it as it was, changed it, or rejected it."""

    kind: OutcomeKind
    version: str | None = None
    """For ``migrated``: the version of the loaded document, as its JSON text."""


UNCHANGED = Outcome("unchanged")
FAILED = Outcome("failed")


def version_key(document: Mapping[str, Any]) -> str | None:
    """The document's ``version`` as JSON text (``"0.8.0"`` with its quotes, ``3``,
    ``null``); None where the field is missing. Text, so that ``"3"`` and ``3`` differ,
    as they do to a loader."""
    if "version" not in document:
        return None
    return json.dumps(document["version"], ensure_ascii=False)


def outcome_of(document: Mapping[str, Any], loaded: Mapping[str, Any] | None) -> Outcome:
    """The outcome of loading ``document`` into ``loaded`` (None: rejected)."""
    if loaded is None:
        return FAILED
    if loaded == document:
        return UNCHANGED
    return Outcome("migrated", version_key(loaded))


class MigrationObserver(Protocol):
    """Told what a migration does (see the module); both calls must return quickly."""

    def counted(
        self, collection: str, version: str | None, outcome: Outcome, documents: int
    ) -> None:
        """``documents`` stored at ``version`` (see ``version_key``) in ``collection`` had
        ``outcome``; called as they are decided, so one version may be told in parts."""

    def progress(self, table: str, done: int, total: int) -> None:
        """A migration of ``table`` has loaded ``done`` of the ``total`` documents it reads
        (first with ``done`` 0, then after each page is read and its batches written)."""
