"""What the emulator does on the wire besides fakesnow: where it behaves as Snowflake would.

fakesnow answers the connector's requests, but ignores the login's credentials, runs
concurrent writes side by side, and answers an abort-request without aborting anything. This
module holds what the emulator adds in front of it (the credential check, writes serialized
as Snowflake's table locks serialize them, statements cancelled on request), apart from the
server's lifecycle, so each rule can be read and tested on its own.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
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


class RunningQueries:
    """Statements cancelled on the connector's request, as Snowflake cancels them.

    The connector cancels a statement (on ``cursor.execute(timeout=...)``, or when our runner
    is cancelled) by posting ``/queries/v1/abort-request`` with the statement's request id.
    ``track`` wraps the application to know which session runs which request id;
    ``abort_request`` is the route that interrupts that session's DuckDB connection, after
    which the statement's own request answers Snowflake's ``000604`` "SQL execution
    canceled", as a cancelled statement does on Snowflake.

    ``sessions`` maps session tokens to fakesnow's connections (fakesnow's own table).
    """

    def __init__(self, sessions: Mapping[str, Any]) -> None:
        self._sessions = sessions
        # Both used only on the server's event loop: no lock.
        #: Request id -> the session token its statement runs in.
        self._running: dict[str, str] = {}
        self._aborted: set[str] = set()

    def track(self, app: ASGIApp) -> ASGIApp:
        """``app``, with every query request registered while it runs."""

        async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"] != "/queries/v1/query-request":
                await app(scope, receive, send)
                return
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            request_id = query.get("requestId", [""])[0]
            token = _session_token(dict(scope.get("headers", [])).get(b"authorization", b""))
            if not request_id or not token:
                await app(scope, receive, send)
                return
            self._running[request_id] = token

            async def answer(message: Message) -> None:
                if request_id not in self._aborted:
                    await send(message)
                elif message["type"] == "http.response.start":
                    # Whatever fakesnow made of the interrupted statement (an HTTP 500, which
                    # the connector would retry): Snowflake's answer instead.
                    await _send_json(send, _CANCELED)

            try:
                await app(scope, receive, answer)
            finally:
                self._running.pop(request_id, None)
                self._aborted.discard(request_id)

        return tracked

    async def abort_request(self, request: Request) -> JSONResponse:
        """``POST /queries/v1/abort-request``: interrupt the named statement if it runs in the
        caller's session (one that already ended, or never started, is left alone)."""
        from starlette.responses import JSONResponse

        gzipped = request.headers.get("Content-Encoding") == "gzip"
        request_id = str(connector_request(gzipped, await request.body()).get("requestId", ""))
        token = _session_token(request.headers.get("Authorization", "").encode("latin-1"))
        session = self._sessions.get(token) if token else None
        if session is not None and self._running.get(request_id) == token:
            self._aborted.add(request_id)
            # DuckDB's interrupt is meant to be called from another thread; the statement's
            # execute then raises in its own.
            session._duck_conn.interrupt()
        return JSONResponse({"data": None, "code": None, "message": None, "success": True})


#: Snowflake's answer to a statement cancelled while it ran.
_CANCELED = {
    "data": {"errorCode": "000604", "sqlState": "57014"},
    "code": "000604",
    "message": "SQL execution canceled",
    "success": False,
}


def _session_token(authorization: bytes) -> str:
    """The token of ``Snowflake Token="..."`` (the header the connector sends), or ""."""
    prefix, suffix = b'Snowflake Token="', b'"'
    if not (authorization.startswith(prefix) and authorization.endswith(suffix)):
        return ""
    return authorization[len(prefix) : -len(suffix)].decode("latin-1")


async def _send_json(send: Send, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
    "RunningQueries",
    "SerializedWrites",
    "buffered_body",
    "connector_request",
    "query_request",
    "valid_login",
]
