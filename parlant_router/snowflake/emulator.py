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

This module owns that server's life: serving a directory or attaching to the process that
serves it, the server thread, and the application it serves. Which process serves a
directory, and how the others find it, is ``emulator_directory``; what the emulator adds on
the wire in front of fakesnow (the credential check, serialized writes) is ``emulator_wire``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
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
from parlant_router.snowflake.emulator_directory import (
    HOST,
    Advertisement,
    EmulatorDirectory,
    os_error_reason,
)
from parlant_router.snowflake.emulator_wire import (
    RunningQueries,
    SerializedWrites,
    connector_request,
    valid_login,
)
from parlant_router.snowflake.errors import SnowflakeEmulatorError

if TYPE_CHECKING:
    import uvicorn
    from fakesnow.instance import FakeSnow
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.types import ASGIApp

#: Emulators served by this process, by resolved directory.
_RUNNING: dict[Path, SnowflakeEmulator] = {}

_QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fakesnow", "fakesnow.server")
_START_TIMEOUT_SECONDS = 15.0
_POLL_SECONDS = 0.05
_USER = "emulator"

#: What Snowflake answers (HTTP 200) to a login with a wrong user or password.
_BAD_CREDENTIALS = {
    "data": None,
    "code": "390100",
    "message": "Incorrect username or password was specified.",
    "success": False,
}


class SnowflakeEmulator:
    """fakesnow's HTTP server in a daemon thread, persisting to ``directory``.

    ``start()`` returns keyword arguments for ``snowflake.connector.connect``; ``stop()``
    shuts the server down and closes the DuckDB files so another process can open them.

    When another process already serves ``directory``, ``start()`` attaches to that server
    (``serving`` is then False and ``stop()`` leaves the server alone), or, with
    ``attach=False``, raises a ``SnowflakeEmulatorError`` naming the serving process.
    ``port`` is the loopback port to serve on (default: a free one); an attached emulator
    uses the server's.

    A login must carry the user and the password ``start()`` returns (generated per start,
    advertised to the owner only). ``accept_any_login=True`` lifts that check on the server
    this emulator runs, for tests of authentication methods the emulator cannot verify (key
    pairs, OAuth and programmatic access tokens): every local process can then log in.

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
        port: int | None = None,
        attach: bool = True,
        accept_any_login: bool = False,
        wrap_app: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.database = database.upper()
        self.schema = schema.upper()
        self._requested_port = port
        self._attach_allowed = attach
        self._accept_any_login = accept_any_login
        self._wrap_app = wrap_app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._fake: FakeSnow | None = None
        self._lock_fd: int | None = None
        self._tokens: set[str] = set()
        #: The server this emulator serves or attached to; None when stopped.
        self._advertisement: Advertisement | None = None

    @property
    def running(self) -> bool:
        """Whether the emulator is started: serving ``directory``, or attached to its server."""
        return self._advertisement is not None

    @property
    def serving(self) -> bool:
        """Whether this emulator runs the server (False when attached, or stopped)."""
        return self._server is not None

    @property
    def host(self) -> str:
        """The server's address (always the loopback address)."""
        return HOST

    @property
    def port(self) -> int | None:
        """The server's port, or None when stopped."""
        return None if self._advertisement is None else self._advertisement.port

    @property
    def server_pid(self) -> int | None:
        """The id of the process serving ``directory`` (this one when ``serving``)."""
        return None if self._advertisement is None else self._advertisement.pid

    @property
    def credentials_file(self) -> Path:
        """Where the serving process advertises its address and password."""
        return EmulatorDirectory(self.directory).advertisement_file

    def start(self) -> dict[str, Any]:
        """Serve ``directory``, or attach to its server (idempotent); the connector's kwargs."""
        if self._advertisement is None:
            self._start()
        return self.connect_kwargs()

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` (a fresh dict each call)."""
        advertisement = self._advertisement
        if advertisement is None:
            raise SnowflakeEmulatorError("the Snowflake emulator is not running")
        return {
            "account": "emulator",
            "user": advertisement.user,
            "password": advertisement.password,
            "host": advertisement.host,
            "port": advertisement.port,
            "protocol": "http",
            # The server attaches whichever database a session names, so each process
            # sharing it keeps its own.
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
        """Shut the server down and release the database files (idempotent).

        An attached emulator only forgets the server: it belongs to another process.
        """
        server, thread, fake = self._server, self._thread, self._fake
        advertisement, lock_fd = self._advertisement, self._lock_fd
        self._server, self._thread, self._fake = None, None, None
        self._advertisement, self._lock_fd = None, None
        if _RUNNING.get(self.directory) is self:
            del _RUNNING[self.directory]
        if advertisement is not None and server is not None:
            # First, so that no process attaches to a server that is going away.
            EmulatorDirectory(self.directory).withdraw(advertisement)
        if server is not None and thread is not None:
            _shut_down(server, thread)
        if fake is not None:
            self._close_sessions()
            # Closing the DuckDB connection checkpoints and unlocks the attached files.
            fake.duck_conn.close()
        if lock_fd is not None:
            # Last: the next server may open the files once the lock is free.
            os.close(lock_fd)

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
                f"(port {running.port}); share that one"
            )
        # The serving process may be starting (lock taken, nothing advertised yet) or
        # stopping (the lock is about to be free): look again until one of them settles.
        directory = EmulatorDirectory(self.directory)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while True:
            lock_fd = directory.try_lock()
            if lock_fd is not None:
                self._serve(directory, lock_fd)
                return
            advertisement = directory.read()
            if advertisement is not None:
                self._attach(advertisement)
                return
            if time.monotonic() >= deadline:
                raise SnowflakeEmulatorError(
                    f"{self.directory} is locked by another process that did not advertise "
                    f"a Snowflake emulator in {directory.advertisement_file} within "
                    f"{_START_TIMEOUT_SECONDS:g} s"
                )
            time.sleep(_POLL_SECONDS)

    def _attach(self, advertisement: Advertisement) -> None:
        where = f"pid {advertisement.pid} on {advertisement.host}:{advertisement.port}"
        if not self._attach_allowed:
            raise SnowflakeEmulatorError(f"{self.directory} is already served by {where}")
        self._advertisement = advertisement

    def _serve(self, directory: EmulatorDirectory, lock_fd: int) -> None:
        with contextlib.ExitStack() as undo:
            undo.callback(os.close, lock_fd)
            _require_server_packages()
            # Whatever is advertised was left by a server that died without stop().
            directory.clear()
            sock = self._listen()
            undo.callback(sock.close)
            fake = self._open_database()
            undo.callback(fake.duck_conn.close)
            advertisement = Advertisement(
                host=HOST,
                port=sock.getsockname()[1],
                user=_USER,
                password=secrets.token_urlsafe(24),
                pid=os.getpid(),
                database=self.database,
                schema=self.schema,
            )
            server, thread = self._run_server(self._app(fake, advertisement), sock)
            undo.callback(_shut_down, server, thread)
            directory.advertise(advertisement)
            undo.pop_all()
        self._server, self._thread, self._fake = server, thread, fake
        self._lock_fd, self._advertisement = lock_fd, advertisement
        _RUNNING[self.directory] = self

    def _prepare_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # mkdir succeeds on an existing read-only directory; prove we can write files.
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as error:
            raise SnowflakeEmulatorError(
                f"the Snowflake emulator directory {self.directory} is not writable: "
                f"{os_error_reason(error)}"
            ) from None
        self.directory = self.directory.resolve()

    def _listen(self) -> socket.socket:
        """A socket bound to the loopback port, handed to uvicorn: no window to lose it."""
        port = self._requested_port or 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # A fixed port can be served again at once after a restart (TIME_WAIT).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # asyncio sets TCP_NODELAY only on sockets it creates itself; on this one,
            # Nagle's algorithm meets the connector's delayed ACK and every answer stalls
            # ~40 ms. Linux copies the option from the listener to the connections it accepts.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((HOST, port))
        except OSError as error:
            sock.close()
            raise SnowflakeEmulatorError(
                f"the Snowflake emulator cannot listen on {HOST}:{port}: {os_error_reason(error)}"
            ) from None
        return sock

    def _open_database(self) -> FakeSnow:
        from fakesnow.instance import FakeSnow

        _quiet_logs()
        fake = FakeSnow(db_path=self.directory)
        try:
            # Attaches (or creates) <directory>/<DATABASE>.db and creates the schema now, so a
            # bad directory fails here with a clear message rather than at the first login.
            fake.connect(self.database, self.schema).close()
            _confine(fake, self.directory)
        except Exception as error:
            fake.duck_conn.close()
            raise SnowflakeEmulatorError(
                f"the Snowflake emulator cannot open its database in {self.directory}: "
                f"{describe_exception(error, limit=300, with_type=False)}"
            ) from None
        return fake

    def _run_server(
        self, app: ASGIApp, sock: socket.socket
    ) -> tuple[uvicorn.Server, threading.Thread]:
        import uvicorn

        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            host=HOST,
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
            _shut_down(server, thread)
            raise SnowflakeEmulatorError(f"the Snowflake emulator did not start on {HOST}:{port}")
        return server, thread

    def _close_sessions(self) -> None:
        sessions = _fakesnow_server_module().sessions
        for token in self._tokens:
            session = sessions.pop(token, None)
            if session is not None:
                with contextlib.suppress(Exception):
                    session.close()
        self._tokens.clear()

    def _app(self, fake: FakeSnow, advertisement: Advertisement) -> ASGIApp:
        fakesnow_server = _fakesnow_server_module()
        _quiet_logs()  # again: importing fakesnow.server set its logger back to INFO
        from fakesnow.expr import normalise_ident
        from fakesnow.transforms import SERVER_VERSION
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def login_request(request: Request) -> JSONResponse:
            # Mirrors fakesnow.server.login_request, bound to this emulator's FakeSnow, and
            # checks the credentials fakesnow ignores: other processes may reach the port.
            database = (d := request.query_params.get("databaseName")) and normalise_ident(d)
            schema = (s := request.query_params.get("schemaName")) and normalise_ident(s)
            gzipped = request.headers.get("Content-Encoding") == "gzip"
            data = connector_request(gzipped, await request.body()).get("data")
            # A body that is not a login is refused as a wrong password, not with a 500.
            if not isinstance(data, dict) or not (
                self._accept_any_login or valid_login(data, advertisement)
            ):
                return JSONResponse(_BAD_CREDENTIALS)
            session_params: dict[str, Any] = data.get("SESSION_PARAMETERS") or {}
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

        # fakesnow's other routes check the session token issued at login, except the stage
        # upload (PUT's presigned URL), which would let anyone write files: not served.
        # Its abort-request answers success without aborting anything: ours cancels.
        running = RunningQueries(fakesnow_server.sessions)
        replaced = {
            "/session/v1/login-request",
            "/fs_bucket/{path:path}",
            "/queries/v1/abort-request",
        }
        routes = [
            Route("/session/v1/login-request", login_request, methods=["POST"]),
            Route("/queries/v1/abort-request", running.abort_request, methods=["POST"]),
            *(r for r in fakesnow_server.routes if getattr(r, "path", None) not in replaced),
        ]
        # Tracked inside the write lock: a write still queued for it when aborted runs,
        # and says so.
        app: ASGIApp = SerializedWrites(running.track(Starlette(routes=routes)))
        # The instrumentation hook (see the class docstring): the wrapper sees every request.
        return app if self._wrap_app is None else self._wrap_app(app)


def _confine(fake: FakeSnow, directory: Path) -> None:
    """Keep SQL sent to the emulator away from the files of the machine.

    Any local process that logs in could otherwise read or write what this process can:
    ``read_text('/etc/passwd')``, ``COPY ... TO``, ``ATTACH``, ``INSTALL``/``LOAD``, httpfs.
    DuckDB's external access is turned off and the configuration locked so SQL cannot turn it
    back on. ``directory`` stays reachable: fakesnow attaches ``<directory>/<DATABASE>.db`` for
    each database a login or ``CREATE DATABASE`` names. The settings are global to the DuckDB
    instance, so they hold for every session (each a cursor of ``fake.duck_conn``).
    """
    allowed = str(directory).replace("'", "''") + os.sep
    fake.duck_conn.execute(f"SET allowed_directories = ['{allowed}']")
    fake.duck_conn.execute("SET enable_external_access = false")
    fake.duck_conn.execute("SET lock_configuration = true")


def _require_server_packages() -> None:
    """Serving needs the emulator extra (attaching needs only the connector)."""
    try:
        for module in ("uvicorn", "fakesnow.instance"):
            importlib.import_module(module)
    except ImportError as error:
        raise SnowflakeEmulatorError(
            "the Snowflake emulator needs fakesnow: pip install 'parlant-router[emulator]'"
            f" ({error.name} is missing)"
        ) from None


def _shut_down(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=_START_TIMEOUT_SECONDS)


def _quiet_logs() -> None:
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


def _fakesnow_server_module() -> Any:
    # `from fakesnow import server` yields fakesnow's `server()` function, not the module.
    return importlib.import_module("fakesnow.server")


__all__ = ["SnowflakeEmulator"]
