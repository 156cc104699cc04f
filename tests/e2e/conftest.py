"""End-to-end fixtures: real `parlant-router run` processes on free loopback ports.

Each server is a subprocess of the installed console script, with its home, emulator and
JSON files under the test's tmp_path. Every process a test starts is killed at teardown
if the test did not stop it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One `parlant-router run` (or `parlant --config`) subprocess."""

    def __init__(
        self, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = log.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        # The checkout first: servers may name its `bench` modules (the counting NLP service).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPOSITORY), env.get("PYTHONPATH", "")) if p
        )
        env.pop("PARLANT_ENV", None)
        env.pop("PARLANT_CONFIG", None)
        self.process = subprocess.Popen(
            argv, stdout=self._log_file, stderr=subprocess.STDOUT, env=env
        )

    def wait_ready(self) -> None:
        """Block until /healthz answers (or fail with the log if the process died)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"server not ready after {STARTUP_SECONDS}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int:
        """Send `sig` and wait for the process to exit; its return code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log_file.close()

    def tail(self, lines: int = 40) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Harness:
    """Config files and server processes of one test, all under its tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.home = tmp_path / "home"
        self.servers: list[ServerProcess] = []
        self._runs = 0

    free_port = staticmethod(free_port)

    def config(self, document: dict[str, Any], name: str = "parlant.yaml") -> tuple[Path, int]:
        """Write a parlant.yaml (free ports, offline NLP, home in tmp); (path, port)."""
        port = free_port()
        body = {
            "version": 1,
            "server": {
                "host": "127.0.0.1",
                "port": port,
                "tool_service_port": free_port(),
                "nlp": "offline",
                "home": str(self.home),
            },
            **document,
        }
        path = self.tmp_path / name
        path.write_text(yaml.safe_dump(body))
        return path, port

    def spawn(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> ServerProcess:
        """Start `argv` (a server on `port`, `env` added to this process's environment)
        without waiting; registered for teardown."""
        self._runs += 1
        server = ServerProcess(argv, port, self.tmp_path / f"server-{self._runs}.log", env)
        self.servers.append(server)
        return server

    def start(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> ServerProcess:
        """Start `argv` (a server on `port`) and wait until it serves."""
        server = self.spawn(argv, port, env)
        server.wait_ready()
        return server

    def run(self, config: Path, port: int, env: dict[str, str] | None = None) -> ServerProcess:
        """`parlant-router run -c config`, started and ready."""
        return self.start([str(BIN / "parlant-router"), "run", "-c", str(config)], port, env)

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`parlant-router ARGS` to completion (stdout and stderr captured)."""
        return subprocess.run(
            [str(BIN / "parlant-router"), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
        )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A Harness whose still-running servers are killed at teardown."""
    h = Harness(tmp_path)
    yield h
    for server in h.servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=30)


class WrongPasswordSnowflake(BaseHTTPRequestHandler):
    """Answers every login the way Snowflake answers a wrong password (code 390100)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {
                "data": {"nextAction": None, "authnMethod": "USERNAME_PASSWORD"},
                "code": "390100",
                "message": "Incorrect username or password was specified.",
                "success": False,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wrong_password_home(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A SNOWFLAKE_HOME whose connections.toml entry `wrong` points the real connector at a
    loopback endpoint answering every login as Snowflake does for a wrong password (a
    config has no port setting; `connection_name: wrong` reaches it); (home, password)."""
    server = HTTPServer(("127.0.0.1", 0), WrongPasswordSnowflake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = "not-the-password-42"
    snowflake_home = tmp_path / "snowflake-home"
    snowflake_home.mkdir()
    toml = snowflake_home / "connections.toml"
    toml.write_text(
        "[wrong]\n"
        'account = "acme"\nuser = "parlant"\n'
        f'password = "{secret}"\n'
        f'host = "127.0.0.1"\nport = {server.server_address[1]}\nprotocol = "http"\n'
        'warehouse = "W"\ndatabase = "D"\nschema = "S"\nlogin_timeout = 20\n'
    )
    toml.chmod(0o600)
    yield snowflake_home, secret
    server.shutdown()
    thread.join()
