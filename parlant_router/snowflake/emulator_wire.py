"""What the emulator does on the wire besides fakesnow: where it behaves as Snowflake would.

fakesnow answers the connector's requests, but ignores the login's credentials and runs
concurrent writes side by side. This module holds what the emulator adds in front of it (the
credential check, and writes serialized as Snowflake's table locks serialize them), apart
from the server's lifecycle, so each rule can be read and tested on its own.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from parlant_router.snowflake.emulator_directory import Advertisement


def valid_login(data: dict[str, Any], advertisement: Advertisement) -> bool:
    """Whether a login body names the emulator's user and password (compared in constant time)."""
    user = str(data.get("LOGIN_NAME") or "")
    password = str(data.get("PASSWORD") or "")
    # Snowflake user names are case-insensitive; passwords are not.
    valid_user = secrets.compare_digest(user.upper().encode(), advertisement.user.upper().encode())
    valid_password = secrets.compare_digest(password.encode(), advertisement.password.encode())
    return valid_user and valid_password


class SerializedWrites:
    """ASGI middleware: one MERGE, UPDATE or DELETE at a time, as Snowflake runs them.

    Snowflake holds a table lock for an UPDATE, DELETE or MERGE, so concurrent ones run one
    after the other, while INSERTs do not block. fakesnow runs statements concurrently in a
    thread pool and implements MERGE as several DuckDB statements, so two concurrent
    ``MERGE ... WHEN NOT MATCHED THEN INSERT`` of one key would both insert it: the
    conditional writes that code relies on in production would not hold here. One lock for
    the whole emulator is coarser than Snowflake's per table, which only costs throughput.
    It is per request: a write inside an explicit transaction is not held until COMMIT.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != "/queries/v1/query-request"
        ):
            await self._app(scope, receive, send)
            return
        body, replay = await buffered_body(receive)
        if not _takes_table_lock(_sql_text(scope, body)):
            await self._app(scope, replay, send)
            return
        async with self._lock:
            await self._app(scope, replay, send)


_TABLE_LOCK_STATEMENTS = ("MERGE", "UPDATE", "DELETE")


def _takes_table_lock(sql: str) -> bool:
    """Whether Snowflake would run ``sql`` under a table lock (MERGE, UPDATE, DELETE)."""
    # One more character than the longest keyword: UPDATED is not UPDATE.
    head = _skip_comments(sql)[: max(map(len, _TABLE_LOCK_STATEMENTS)) + 1]
    return "".join(itertools.takewhile(str.isalpha, head)).upper() in _TABLE_LOCK_STATEMENTS


def _skip_comments(sql: str) -> str:
    """``sql`` from its first token on: leading whitespace and comments (``--``, ``//``,
    ``/* */``, as Snowflake reads them) left out. A loop, not a regex: linear on any text."""
    position = 0
    while True:
        position = len(sql) - len(sql[position:].lstrip())
        if sql.startswith(("--", "//"), position):
            end = sql.find("\n", position)
        elif sql.startswith("/*", position):
            end = sql.find("*/", position + 2)
            end = end + 1 if end >= 0 else end
        else:
            return sql[position:]
        if end < 0:
            return ""
        position = end + 1


async def buffered_body(receive: Receive) -> tuple[bytes, Receive]:
    """The request body, and a ``receive`` that replays it to the wrapped app."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # a disconnect: the app sees an empty body and the client is gone anyway
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def connector_request(gzipped: bool, body: bytes) -> dict[str, Any]:
    """The JSON object the connector posted (it gzips its bodies); {} for anything else."""
    try:
        request = json.loads(gzip.decompress(body) if gzipped else body)
    except (OSError, ValueError):
        return {}
    return request if isinstance(request, dict) else {}


def query_request(scope: Scope, body: bytes) -> dict[str, Any]:
    """`connector_request` of an ASGI request, from its Content-Encoding header."""
    headers = dict(scope.get("headers", []))
    return connector_request(headers.get(b"content-encoding", b"").lower() == b"gzip", body)


def _sql_text(scope: Scope, body: bytes) -> str:
    """The statement of a query request ("" if the body is not what the connector sends)."""
    return str(query_request(scope, body).get("sqlText", ""))


__all__ = [
    "SerializedWrites",
    "buffered_body",
    "connector_request",
    "query_request",
    "valid_login",
]
