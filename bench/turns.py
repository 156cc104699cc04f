"""The recorded turn: its file format, and replaying it on a Stack.

``bench/turn_sequence.json`` holds two lists of store calls recorded from a real Parlant
engine (``python -m bench record``): ``setup`` (what preceded the customer's message:
creating the customer, the session, the context variable and its value) and ``turn``
(everything from the customer's message to the agent's ``ready`` status). Arguments are
stored as recorded, with three kinds of placeholder:

- ``{"$ref": ROLE}``: an id created earlier (``customer``, ``session``, ``agent``,
  ``variable:N``, ``event:N``...); each replayed session gets its own;
- ``{"$fresh": ROLE}``: a per-turn value such as a trace id, regenerated on every replay;
- ``{"$type": NAME, ...}``: a value of a Parlant type (enum, datetime, set, dataclass).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from parlant.core.common import generate_id
from parlant.core.sessions import AgentState, EventKind, EventSource

from bench.stack import Stack

TURN_SEQUENCE_PATH = Path(__file__).with_name("turn_sequence.json")

# Types a recorded argument may hold; anything else fails the recording, loudly.
_ENUMS: dict[str, type[enum.Enum]] = {"EventSource": EventSource, "EventKind": EventKind}
_DATACLASSES: dict[str, type[Any]] = {"AgentState": AgentState}


@dataclass(frozen=True)
class StoreCall:
    """One call on a store: which store, which method, its encoded keyword arguments."""

    store: str
    method: str
    args: Mapping[str, Any]
    creates: str | None = None
    """The role of the id this call returns (``event:3``), if later calls refer to it."""

    def label(self) -> str:
        """``store.method``, the name statements are reported under."""
        return f"{self.store}.{self.method}"


@dataclass(frozen=True)
class TurnSequence:
    """What ``bench/turn_sequence.json`` holds."""

    provenance: Mapping[str, Any]
    setup: Sequence[StoreCall]
    turn: Sequence[StoreCall]

    def to_json(self) -> str:
        """The file's text (stable key order, so a re-recording diffs cleanly)."""

        def calls(items: Sequence[StoreCall]) -> list[dict[str, Any]]:
            return [
                {
                    "store": c.store,
                    "method": c.method,
                    "args": dict(c.args),
                    **({"creates": c.creates} if c.creates else {}),
                }
                for c in items
            ]

        payload = {
            "provenance": dict(self.provenance),
            "setup": calls(self.setup),
            "turn": calls(self.turn),
        }
        return json.dumps(payload, indent=1, sort_keys=False) + "\n"

    @classmethod
    def load(cls, path: Path = TURN_SEQUENCE_PATH) -> TurnSequence:
        """Read the sequence file."""
        raw = json.loads(path.read_text(encoding="utf-8"))

        def calls(items: Sequence[Mapping[str, Any]]) -> list[StoreCall]:
            return [StoreCall(i["store"], i["method"], i["args"], i.get("creates")) for i in items]

        return cls(raw["provenance"], calls(raw["setup"]), calls(raw["turn"]))


def encode(value: Any, roles: Mapping[str, str], fresh: Mapping[str, str]) -> Any:
    """Encode a recorded argument; ids in ``roles`` and values in ``fresh`` become placeholders."""
    if isinstance(value, str):
        if value in roles:
            return {"$ref": roles[value]}
        if value in fresh:
            return {"$fresh": fresh[value]}
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, enum.Enum):
        name = type(value).__name__
        if _ENUMS.get(name) is not type(value):
            raise TypeError(f"cannot record a value of type {name}")
        return {"$type": name, "value": value.value}
    if isinstance(value, datetime):
        # A turn's timestamps are "now" when it runs, not when it was recorded.
        return {"$type": "datetime"}
    if isinstance(value, (set, frozenset)):
        return {"$type": "set", "items": [encode(v, roles, fresh) for v in sorted(value)]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _DATACLASSES.get(name) is not type(value):
            raise TypeError(f"cannot record a value of type {name}")
        fields = {
            f.name: encode(getattr(value, f.name), roles, fresh) for f in dataclasses.fields(value)
        }
        return {"$type": name, "fields": fields}
    if isinstance(value, Mapping):
        return {str(k): encode(v, roles, fresh) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, roles, fresh) for v in value]
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def decode(value: Any, ids: Mapping[str, str], fresh: dict[str, str]) -> Any:
    """Turn an encoded argument back into a value, resolving placeholders."""
    if isinstance(value, list):
        return [decode(v, ids, fresh) for v in value]
    if not isinstance(value, dict):
        return value
    if "$ref" in value:
        return ids[value["$ref"]]
    if "$fresh" in value:
        return fresh.setdefault(value["$fresh"], generate_id())
    kind = value.get("$type")
    if kind is None:
        return {k: decode(v, ids, fresh) for k, v in value.items()}
    if kind == "datetime":
        return datetime.now(timezone.utc)
    if kind == "set":
        return {decode(v, ids, fresh) for v in value["items"]}
    if kind in _ENUMS:
        return _ENUMS[kind](value["value"])
    fields = {k: decode(v, ids, fresh) for k, v in value["fields"].items()}
    return _DATACLASSES[kind](**fields)


async def replay(stack: Stack, calls: Sequence[StoreCall], ids: dict[str, str]) -> None:
    """Run ``calls`` on ``stack``; ids created by the calls are added to ``ids``."""
    fresh: dict[str, str] = {}
    for call in calls:
        await replay_call(stack, call, ids, fresh)


async def replay_call(
    stack: Stack, call: StoreCall, ids: dict[str, str], fresh: dict[str, str]
) -> None:
    """Run one recorded call on ``stack``."""
    method = getattr(stack.store(call.store), call.method)
    result = await method(**decode(dict(call.args), ids, fresh))
    if call.creates is not None:
        identifier = getattr(result, "id", None)
        if not isinstance(identifier, str):
            raise RuntimeError(f"{call.label()} returned no id for {call.creates}")
        ids[call.creates] = identifier
