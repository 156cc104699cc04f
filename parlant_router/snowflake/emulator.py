"""An in-process Snowflake emulator: fakesnow's HTTP server, persisted to a directory.

The real ``snowflake-connector-python`` talks to it over HTTP on a loopback port, exactly as
it talks to Snowflake, so everything above the wire (auth handshake, bindings, result
decoding, errors) is the production code path.

fakesnow's own login handler either shares one in-memory DuckDB between all sessions, or,
when the login carries ``FAKESNOW_DB_PATH``, opens a *new* DuckDB per login. The latter
breaks a connection pool: two DuckDB instances in one process cannot attach the same file.
So each emulator serves fakesnow's routes with its own login handler, bound to one
``FakeSnow`` persisted under ``directory``: every session (every pooled connection) is a
cursor of that one DuckDB, which DuckDB makes safe to use from several threads.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import json
import logging
import secrets
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from parlant_router.errors import describe_exception
from parlant_router.snowflake.errors import SnowflakeEmulatorError

if TYPE_CHECKING:
    import uvicorn
    from fakesnow.instance import FakeSnow
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.types import ASGIApp

#: Emulators running in this process, by resolved directory.
_RUNNING: dict[Path, SnowflakeEmulator] = {}

_QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fakesnow", "fakesnow.server")
_START_TIMEOUT_SECONDS = 15.0


class SnowflakeEmulator:
    """fakesnow's HTTP server in a daemon thread, persisting to ``directory``.

    ``start()`` returns keyword arguments for ``snowflake.connector.connect``; ``stop()``
    shuts the server down and closes the DuckDB files so another process can open them.

    ``wrap_app`` is an instrumentation hook: it receives fakesnow's ASGI application (the
    Starlette app serving the connector's requests) and returns the application to serve
    instead, typically a middleware around it. Benchmarks use it to see every request as a
    real warehouse would (statements counted at the wire, a round trip's delay injected).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        database: str = "PARLANT",
        schema: str = "PUBLIC",
        wrap_app: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.database = database.upper()
        self.schema = schema.upper()
        self._wrap_app = wrap_app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._fake: FakeSnow | None = None
        self._tokens: set[str] = set()
        self._port: int | None = None

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    def start(self) -> dict[str, Any]:
        """Start the server (idempotent) and return the connector's keyword arguments."""
        if self._server is None:
            self._start()
        return self.connect_kwargs()

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` (a fresh dict each call)."""
        if self._port is None:
            raise SnowflakeEmulatorError("the Snowflake emulator is not running")
        return {
            "account": "emulator",
            "user": "emulator",
            # The emulator accepts any password; the connector insists on one.
            "password": "emulator",
            "host": "127.0.0.1",
            "port": self._port,
            "protocol": "http",
            "database": self.database,
            "schema": self.schema,
            "warehouse": "EMULATOR",
            # Telemetry would be posted to an endpoint the emulator does not serve.
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "login_timeout": 30,
            # Bounds the connector's own retries of an HTTP 500 (the emulator's answer to SQL
            # it cannot run): fail in seconds rather than minutes.
            "network_timeout": 20,
        }

    def stop(self) -> None:
        """Shut the server down and release the database files (idempotent)."""
        server, thread, fake = self._server, self._thread, self._fake
        self._server, self._thread, self._fake, self._port = None, None, None, None
        if _RUNNING.get(self.directory) is self:
            del _RUNNING[self.directory]
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=_START_TIMEOUT_SECONDS)
        if fake is not None:
            fakesnow_server = _fakesnow_server_module()
            for token in self._tokens:
                session = fakesnow_server.sessions.pop(token, None)
                if session is not None:
                    with contextlib.suppress(Exception):
                        session.close()
            self._tokens.clear()
            # Closing the DuckDB connection checkpoints and unlocks the attached files.
            fake.duck_conn.close()

    def __enter__(self) -> dict[str, Any]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        self._prepare_directory()
        running = _RUNNING.get(self.directory)
        if running is not None:
            # Two DuckDB instances in one process cannot share the files.
            raise SnowflakeEmulatorError(
                f"a Snowflake emulator for {self.directory} already runs in this process "
                f"(port {running._port}); share that one"
            )
        try:
            import uvicorn
            from fakesnow.instance import FakeSnow
        except ImportError as error:
            raise SnowflakeEmulatorError(
                "the Snowflake emulator needs fakesnow: pip install 'parlant-router[emulator]'"
                f" ({error.name} is missing)"
            ) from None

        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("sqlglot").setLevel(logging.ERROR)
        # fakesnow logs a traceback for every statement it cannot run; the client gets the
        # error anyway, as an HTTP 500 that the connector reports.
        for name in ("fakesnow.server", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        # fakesnow warns on every query result about an internal Arrow copy: noise, not news.
        warnings.filterwarnings(
            "ignore", message="Arrow output on a DB-API result", category=UserWarning
        )

        fake = FakeSnow(db_path=self.directory)
        try:
            # Attaches (or creates) <directory>/<DATABASE>.db and creates the schema now, so a
            # bad directory fails here with a clear message rather than at the first login.
            fake.connect(self.database, self.schema).close()
        except Exception as error:
            fake.duck_conn.close()
            raise SnowflakeEmulatorError(
                f"the Snowflake emulator cannot open its database in {self.directory}: "
                f"{describe_exception(error, limit=300, with_type=False)}"
            ) from None

        # Bound here and handed to uvicorn: no window for another process to take the port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # asyncio sets TCP_NODELAY only on sockets it creates itself; on this one, Nagle's
        # algorithm meets the connector's delayed ACK and every answer stalls ~40 ms. Linux
        # copies the option from the listener to the connections it accepts.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(fake),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            # None: leave the host application's logging configuration alone.
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="snowflake-emulator", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while thread.is_alive() and not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            server.should_exit = True
            thread.join(timeout=_START_TIMEOUT_SECONDS)
            fake.duck_conn.close()
            sock.close()
            raise SnowflakeEmulatorError(
                f"the Snowflake emulator did not start on 127.0.0.1:{port}"
            )
        self._server, self._thread, self._fake, self._port = server, thread, fake, port
        _RUNNING[self.directory] = self

    def _prepare_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # mkdir succeeds on an existing read-only directory; prove we can write files.
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise SnowflakeEmulatorError(
                f"the Snowflake emulator directory {self.directory} is not writable: {reason}"
            ) from None
        self.directory = self.directory.resolve()

    def _app(self, fake: FakeSnow) -> Any:
        fakesnow_server = _fakesnow_server_module()
        from fakesnow.expr import normalise_ident
        from fakesnow.transforms import SERVER_VERSION
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def login_request(request: Request) -> JSONResponse:
            # Mirrors fakesnow.server.login_request, bound to this emulator's FakeSnow.
            database = (d := request.query_params.get("databaseName")) and normalise_ident(d)
            schema = (s := request.query_params.get("schemaName")) and normalise_ident(s)
            body = await request.body()
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            session_params: dict[str, Any] = json.loads(body)["data"]["SESSION_PARAMETERS"]
            autocommit = session_params.get("AUTOCOMMIT", True)
            token = secrets.token_urlsafe(32)
            fakesnow_server.sessions[token] = fake.connect(
                database,
                schema,
                nop_regexes=session_params.get("nop_regexes"),
                autocommit=autocommit,
            )
            self._tokens.add(token)
            return JSONResponse(
                {
                    "data": {
                        "token": token,
                        "serverVersion": SERVER_VERSION,
                        "parameters": [
                            {"name": "AUTOCOMMIT", "value": autocommit},
                            {
                                "name": "CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY",
                                "value": 3600,
                            },
                            {"name": "CLIENT_STAGE_ARRAY_BINDING_THRESHOLD", "value": 0},
                        ],
                        "sessionInfo": {"databaseName": database, "schemaName": schema},
                    },
                    "success": True,
                }
            )

        routes = [
            Route("/session/v1/login-request", login_request, methods=["POST"]),
            *(
                r
                for r in fakesnow_server.routes
                if getattr(r, "path", None) != "/session/v1/login-request"
            ),
        ]
        app: ASGIApp = Starlette(routes=routes)
        # The instrumentation hook (see the class docstring): the wrapper sees every request.
        return app if self._wrap_app is None else self._wrap_app(app)


def _fakesnow_server_module() -> Any:
    # `from fakesnow import server` yields fakesnow's `server()` function, not the module.
    return importlib.import_module("fakesnow.server")


__all__ = ["SnowflakeEmulator"]
