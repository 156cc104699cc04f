"""What an `update_session` changed, applied to the session as it is stored now.

Parlant's callers compute whole values from a session they read: `PATCH /sessions/{id}`
reads the session, sets and unsets metadata keys on a copy of its metadata (and of its
consumption offsets) and passes the whole dict; the engine passes the agent states it read
plus the one it adds. Written as is, such a value drops whatever another writer changed
since the read. `relative_update` turns it into the change the caller meant:

- `metadata`, `consumption_offsets`: the keys set or changed, and the keys removed, relative
  to the session the caller last read, applied to the stored dict;
- `agent_states`: the states appended to a list the caller read, appended to the stored list;
- anything else (title, mode, customer, agent), or a value that was not computed from a read
  the store knows of: assigned as given, as Parlant does.

When nobody else wrote in between, the stored session is the one the caller read and the
result is exactly Parlant's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from parlant_router.durable.conditional_writes import Change

_DICTS = ("metadata", "consumption_offsets")
_MISSING = object()


def relative_update(fields: Mapping[str, Any], read: Sequence[Mapping[str, Any]]) -> Change:
    """The change that `update_session` with document `fields` makes, given the session
    documents the caller read (oldest first)."""

    def change(current: Mapping[str, Any]) -> Mapping[str, Any]:
        return {
            name: _rebased(name, value, read, current.get(name)) for name, value in fields.items()
        }

    return change


def _rebased(name: str, value: Any, read: Sequence[Mapping[str, Any]], current: Any) -> Any:
    if not read:
        return value
    if name in _DICTS:
        base = read[-1].get(name)
        if (
            isinstance(base, Mapping)
            and isinstance(value, Mapping)
            and isinstance(current, Mapping)
        ):
            return _apply_dict_delta(base, value, current)
    if name == "agent_states" and isinstance(value, list) and isinstance(current, list):
        for snapshot in reversed(read):
            base = snapshot.get(name)
            if isinstance(base, list) and _same(value[: len(base)], base):
                return [*current, *value[len(base) :]]
    return value


def _apply_dict_delta(
    base: Mapping[str, Any], value: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    result = {k: v for k, v in current.items() if k in value or k not in base}
    for key, item in value.items():
        if not _same(base.get(key, _MISSING), item):
            result[key] = item
    return result


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (a tuple and a list of the same items are the same stored value)."""
    if a is _MISSING or b is _MISSING:
        return a is b
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


__all__ = ["relative_update"]
