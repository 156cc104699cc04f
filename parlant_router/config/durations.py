"""Durations in parlant.yaml: `90d`, `12h`, `30m`, `45s`, `2w`.

A bare number is refused rather than read in some unit: `retention: 90` could mean 90
seconds or 90 days, and a retention that is read wrong deletes conversations.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*[wdhms]\s*$"
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([wdhms])\s*$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: Any) -> timedelta:
    """`value` as a timedelta: a `timedelta`, or text such as `90d` (w, d, h, m, s)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: write a number and a unit, e.g. 90d, 12h, 30m, 45s or 2w"
        )
    amount, unit = match.groups()
    duration = timedelta(**{_UNITS[unit]: float(amount)})
    if duration <= timedelta(0):
        raise ValueError(f"{value!r}: a duration must be longer than zero")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest way to write `duration` in the units `parse_duration` reads."""
    seconds = duration.total_seconds()
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
"""A positive duration written as in `parse_duration`."""
