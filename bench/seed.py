"""Bulk-writing documents straight into the adapters' tables, in Snowflake SQL.

Appending 5,000 events, or writing 10,000 old-version sessions, through a store would take
longer than the whole benchmark may; one ``INSERT ... SELECT ... FROM TABLE(GENERATOR())``
writes them in one statement, on a connection of its own (not metered), in the table
layout both adapters share (ID, VERSION, CREATION_UTC, DATA VARIANT).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import snowflake.connector

# Creation times are this prefix plus a zero-padded sequence number: distinct and ordered.
_TIME_PREFIX = "2024-01-01T00:00:00."
_TIME_SUFFIX = "+00:00"
_SEQ_MARK = "__SEQ__"


class Seeder:
    """One unmetered connection to the emulator, for writing test data in bulk."""

    def __init__(self, connection_params: Mapping[str, Any]) -> None:
        self._connection = snowflake.connector.connect(**dict(connection_params))

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Run one statement and return its rows (empty for DML)."""
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, dict(params) if params else None)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def create_table(self, table: str) -> None:
        """A document table exactly as both adapters create it."""
        self.execute(
            f'CREATE TABLE IF NOT EXISTS "{table}" (ID STRING NOT NULL, VERSION STRING, '
            "CREATION_UTC STRING, DATA VARIANT, PRIMARY KEY (ID))"
        )

    def insert_generated(
        self, table: str, template: Mapping[str, Any], count: int, *, start: int = 0
    ) -> None:
        """Insert ``count`` copies of ``template``, numbered ``start``, ``start + 1``, ...

        In the template, the string ``"__SEQ__"`` stands for the number (as a JSON number),
        and ``__SEQ__`` inside a string for its zero-padded digits; ``id`` and
        ``creation_utc`` must use it so that documents are distinct and ordered.
        """
        if count <= 0:
            return
        text = json.dumps(dict(template), separators=(",", ":"))
        # Build DATA by concatenating literal JSON pieces around the sequence number N.
        number = "N"
        padded = f"LPAD(TO_VARCHAR({number}), 6, '0')"
        pieces: list[str] = []
        rest = text
        while rest:
            quoted = rest.find(f'"{_SEQ_MARK}"')
            inner = rest.find(_SEQ_MARK)
            if inner < 0:
                pieces.append(_literal(rest))
                break
            if quoted >= 0 and quoted + 1 == inner:
                pieces.append(_literal(rest[:quoted]))
                pieces.append(f"TO_VARCHAR({number})")
                rest = rest[quoted + len(_SEQ_MARK) + 2 :]
            else:
                pieces.append(_literal(rest[:inner]))
                pieces.append(padded)
                rest = rest[inner + len(_SEQ_MARK) :]
        data = " || ".join(pieces)
        version = _literal(str(template["version"]))
        ident = _expand(str(template["id"]), padded)
        created = _expand(str(template["creation_utc"]), padded)
        self.execute(
            f'INSERT INTO "{table}" (ID, VERSION, CREATION_UTC, DATA) '
            f"SELECT {ident}, {version}, {created}, PARSE_JSON({data}) FROM "
            f"({numbered(start, count)})"
        )


def numbered(start: int, count: int) -> str:
    """A query of ``count`` rows with a column N numbered ``start``, ``start + 1``, ...

    ROW_NUMBER, not SEQ4 alone: Snowflake documents that SEQ4 may leave gaps.
    """
    return (
        f"SELECT {int(start)} + ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1 AS N "
        f"FROM TABLE(GENERATOR(ROWCOUNT => {int(count)}))"
    )


_LABELS_SINCE = (0, 9, 0)
"""SessionDocumentStore's version that added `labels` to sessions."""


def session_template(
    version: str, *, prefix: str = "session", creation_utc: str | None = None
) -> dict[str, Any]:
    """A session as `SessionDocumentStore` writes it at ``version``, for ``insert_generated``:
    ids ``<prefix><number>``, created at ``creation_utc`` (default: ``sequenced_time()``)."""
    template: dict[str, Any] = {
        "id": f"{prefix}{_SEQ_MARK}",
        "version": version,
        "creation_utc": creation_utc or sequenced_time(),
        "customer_id": "customer",
        "agent_id": "agent",
        "mode": "auto",
        "title": None,
        "consumption_offsets": {"client": 0},
        "agent_states": [],
        "metadata": {},
    }
    if tuple(int(part) for part in version.split(".")) >= _LABELS_SINCE:
        template["labels"] = []
    return template


def sequenced_time() -> str:
    """A creation_utc template for ``insert_generated``: ordered by sequence number."""
    return f"{_TIME_PREFIX}{_SEQ_MARK}{_TIME_SUFFIX}"


def _expand(template: str, padded: str) -> str:
    head, _, tail = template.partition(_SEQ_MARK)
    return f"{_literal(head)} || {padded} || {_literal(tail)}"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
