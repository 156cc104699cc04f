"""What expires, and the text its timestamps are compared with.

Parlant writes `creation_utc` as `datetime.isoformat()` of an aware UTC datetime
(``2026-11-30T06:10:00.123456+00:00``, or ``...:00+00:00`` when the fraction is zero).
Those texts sort as the instants they name (``+`` sorts before ``.``, so a whole second
comes before its fractions), which lets SQL compare the stored text without parsing it; the
cutoff is written exactly the same way. A timestamp in another
form (another offset, a ``Z``) is parsed by the document path and compared as text by the
SQL path, where it may sort late, which only keeps a document longer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from parlant_router.stores.catalog import RetentionRule

Deleted = Callable[[str, Sequence[str]], None]
"""Told the collection and the parent ids whose documents were just deleted (caches drop
them, the change feed announces them)."""


def utc_text(moment: datetime) -> str:
    """`moment` as Parlant writes `creation_utc` (see above)."""
    return moment.astimezone(timezone.utc).isoformat()


def parse_utc(text: object) -> datetime | None:
    """A stored `creation_utc` as an aware datetime; None when it is missing or unreadable
    (such a document never expires)."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def collections_of(rule: RetentionRule) -> tuple[str, ...]:
    """Every collection a prune of `rule` deletes from, the expiring one first."""
    return (rule.collection, *(name for name, _ in rule.dependents))
