"""`parlant-router check` on the shipped parlant.yaml, and its failure lines.

The shipped file's emulator directory and home are redirected to tmp with `--set`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

SHIPPED = Path(__file__).resolve().parents[2] / "parlant.yaml"


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("PASS", "FAIL"))]


def _check_shipped(harness: Any, tmp_path: Path, emulator: Path) -> Any:
    """`parlant-router check` on the shipped file, home in tmp, emulator in `emulator`."""
    return harness.cli(
        "check",
        "-c",
        str(SHIPPED),
        "--set",
        f"server.home={tmp_path / 'home'}",
        "--set",
        f"backends.warehouse.emulator={emulator}",
    )


def test_check_passes_on_the_shipped_file(harness: Any, tmp_path: Path) -> None:
    result = _check_shipped(harness, tmp_path, tmp_path / "sf")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _lines(result.stdout)
    assert len(lines) == 13 and all(line.startswith("PASS") for line in lines), result.stdout
    assert "PARLANT_SESSIONS_PARLANT_ROUTER_PROBE_" in result.stdout


def _unwritable_directory(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        # Root writes through permission bits; sysfs refuses new directories even to root.
        return Path("/sys/parlant-router-emulator")
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    return directory / "sf"


def test_check_fails_clearly_on_an_unwritable_emulator_directory(
    harness: Any, tmp_path: Path
) -> None:
    target = _unwritable_directory(tmp_path)
    result = _check_shipped(harness, tmp_path, target)
    assert result.returncode == 1
    lines = _lines(result.stdout)
    assert len(lines) == 13
    for line in lines:
        assert line.startswith("FAIL")
        assert f"the Snowflake emulator directory {target} is not writable" in line
    assert "Traceback" not in result.stdout + result.stderr


class _WrongPasswordSnowflake(BaseHTTPRequestHandler):
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
def wrong_password_snowflake() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _WrongPasswordSnowflake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join()


def test_check_fails_clearly_on_a_wrong_snowflake_password(
    harness: Any, tmp_path: Path, wrong_password_snowflake: int
) -> None:
    # A loopback endpoint answers every login as Snowflake does for a wrong password. The yaml has no port setting: a connections.toml entry
    # (SNOWFLAKE_HOME) points the real connector at it, as `connection_name` allows.
    secret = "not-the-password-42"
    snowflake_home = tmp_path / "snowflake-home"
    snowflake_home.mkdir()
    toml = snowflake_home / "connections.toml"
    toml.write_text(
        "[wrong]\n"
        'account = "acme"\nuser = "parlant"\n'
        f'password = "{secret}"\n'
        f'host = "127.0.0.1"\nport = {wrong_password_snowflake}\nprotocol = "http"\n'
        'warehouse = "W"\ndatabase = "D"\nschema = "S"\nlogin_timeout = 20\n'
    )
    toml.chmod(0o600)
    config = tmp_path / "parlant.yaml"
    config.write_text(
        "version: 1\n"
        f"server: {{home: {tmp_path / 'home'}}}\n"
        "backends:\n  warehouse: {type: snowflake, connection_name: wrong}\n"
        "stores:\n  sessions: warehouse\n  customers: warehouse\n"
    )
    result = harness.cli("check", "-c", str(config), env={"SNOWFLAKE_HOME": str(snowflake_home)})
    assert result.returncode == 1
    lines = _lines(result.stdout)
    assert [line.split()[:2] for line in lines] == [["FAIL", "sessions"], ["FAIL", "customers"]]
    for line in lines:
        assert "Incorrect username or password was specified" in line
    output = result.stdout + result.stderr
    assert secret not in output and "Traceback" not in output
