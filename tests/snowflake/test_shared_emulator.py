"""One emulator directory shared by several processes: `parlant-router emulator DIR` serves
it, any `SnowflakeEmulator(DIR)` elsewhere attaches; real processes, the real connector."""

from __future__ import annotations

import contextlib
import json
import select
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import snowflake.connector

from parlant_router.snowflake import SnowflakeEmulator, SnowflakeEmulatorError

PARLANT_ROUTER = Path(sys.executable).parent / "parlant-router"
READY_SECONDS = 60.0


class Served:
    """A `parlant-router emulator DIR` subprocess, ready (its one line printed)."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [str(PARLANT_ROUTER), "emulator", str(directory), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.line = self._ready_line()

    def _ready_line(self) -> str:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], READY_SECONDS)
        line = self.process.stdout.readline() if readable else ""
        if not line:
            self.process.kill()
            _, stderr = self.process.communicate(timeout=30)
            pytest.fail(f"`parlant-router emulator` did not get ready: {stderr}")
        return line.rstrip("\n")

    @property
    def advertisement(self) -> dict[str, Any]:
        content: dict[str, Any] = json.loads((self.directory / "emulator.json").read_text())
        return content

    def connect_kwargs(self, **changes: Any) -> dict[str, Any]:
        """Connector kwargs built from emulator.json, as any client of the server would."""
        advertised = self.advertisement
        return {
            "account": "emulator",
            "user": advertised["user"],
            "password": advertised["password"],
            "host": advertised["host"],
            "port": advertised["port"],
            "protocol": "http",
            "database": advertised["database"],
            "schema": advertised["schema"],
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "login_timeout": 10,
            "network_timeout": 10,
            **changes,
        }

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send `sig`; the exit status and the rest of stdout and stderr."""
        self.process.send_signal(sig)
        stdout, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stdout, stderr


Serve = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """`serve(DIR, *options)` starts a `Served`; those still running are killed at teardown."""
    started: list[Served] = []

    def start(directory: Path, *options: str) -> Served:
        started.append(Served(directory, *options))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate(timeout=30)


def query(kwargs: dict[str, Any], sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with snowflake.connector.connect(**kwargs) as connection:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


ATTACHING_PROCESS = textwrap.dedent(
    """
    import sys
    import snowflake.connector
    from parlant_router.snowflake import SnowflakeEmulator

    emulator = SnowflakeEmulator(sys.argv[1])
    kwargs = emulator.start()
    assert not emulator.serving, "the directory is served: this process must attach"
    with snowflake.connector.connect(**kwargs) as connection:
        cursor = connection.cursor()
        seen = cursor.execute("SELECT V FROM SHARED ORDER BY V").fetchall()
        cursor.execute("INSERT INTO SHARED VALUES ('from the attached process')")
    print(emulator.server_pid, kwargs["port"], [row[0] for row in seen])
    emulator.stop()
    """
)


def test_another_process_attaches_and_shares_the_data(tmp_path: Path, serve: Serve) -> None:
    directory = tmp_path / "shared"
    served = serve(directory)
    advertised = served.advertisement
    assert served.line == (
        f"Snowflake emulator serving {directory} on 127.0.0.1:{advertised['port']} "
        f"(credentials: {directory / 'emulator.json'})"
    )
    query(served.connect_kwargs(), "CREATE TABLE SHARED (V STRING)")
    query(served.connect_kwargs(), "INSERT INTO SHARED VALUES ('from the test')")

    attached = subprocess.run(
        [sys.executable, "-c", ATTACHING_PROCESS, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout.rstrip("\n").split(maxsplit=2) == [
        str(served.process.pid),
        str(advertised["port"]),
        "['from the test']",
    ]
    # The attached process stopped its emulator; the server is untouched and sees its write.
    assert sorted(query(served.connect_kwargs(), "SELECT V FROM SHARED")) == [
        ("from the attached process",),
        ("from the test",),
    ]

    status, stdout, stderr = served.stop(signal.SIGTERM)
    assert (status, stdout, stderr) == (0, "", "")
    assert not (directory / "emulator.json").exists()

    # The data outlives the server: the next one (this process) serves the same tables.
    with SnowflakeEmulator(directory) as kwargs:
        assert len(query(kwargs, "SELECT V FROM SHARED")) == 2


def test_the_advertisement_is_the_owners_only(tmp_path: Path, serve: Serve) -> None:
    directory = tmp_path / "private"
    served = serve(directory)
    path = directory / "emulator.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    advertised = served.advertisement
    assert advertised["pid"] == served.process.pid and advertised["host"] == "127.0.0.1"
    assert advertised["password"] not in served.line

    # Readable by others: whoever could read it may have; refuse to use it.
    path.chmod(0o640)
    with pytest.raises(SnowflakeEmulatorError) as raised:
        SnowflakeEmulator(directory).start()
    assert str(raised.value) == (
        f"{path} is accessible to other users (mode 0640): refusing the emulator password in it"
    )


def test_wrong_credentials_and_unknown_sessions_are_refused(tmp_path: Path, serve: Serve) -> None:
    served = serve(tmp_path / "guarded")
    for changes in ({"password": "not-the-password"}, {"user": "someone"}):
        with pytest.raises(snowflake.connector.errors.DatabaseError) as raised:
            query(served.connect_kwargs(**changes), "SELECT 1")
        assert "Incorrect username or password was specified." in str(raised.value)
        assert raised.value.sqlstate == "28000"  # the connector's "credentials rejected"
    assert query(served.connect_kwargs(user="EMULATOR"), "SELECT 1") == [(1,)]

    base = f"http://127.0.0.1:{served.advertisement['port']}"
    statement = json.dumps({"sqlText": "SELECT 1"}).encode()
    refusals = [
        ("POST", "/queries/v1/query-request", {}, 401),
        ("POST", "/queries/v1/query-request", {"Authorization": 'Snowflake Token="x"'}, 401),
        ("POST", "/session/heartbeat", {"Authorization": 'Snowflake Token="x"'}, 401),
        ("PUT", "/fs_bucket/stage/file.csv", {}, 404),  # fakesnow's unauthenticated upload
    ]
    for method, path, headers, status in refusals:
        request = urllib.request.Request(base + path, statement, headers, method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == status, (method, path)

    # A login body that is not one (garbage, gzip that is not, no `data`): refused, no 500.
    for body, headers in (
        (b"not json", {}),
        (b"not gzip", {"Content-Encoding": "gzip"}),
        (json.dumps({"data": "x"}).encode(), {}),
    ):
        request = urllib.request.Request(
            base + "/session/v1/login-request", body, headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answered:
            assert json.loads(answered.read())["code"] == "390100"


def test_accept_any_login_lifts_the_password_check(tmp_path: Path) -> None:
    """For tests of authentication methods the emulator cannot verify (key pairs, tokens)."""
    with SnowflakeEmulator(tmp_path / "open", accept_any_login=True) as kwargs:
        anyone = {**kwargs, "user": "someone", "password": "anything"}
        assert query(anyone, "SELECT 1") == [(1,)]


def test_a_second_server_for_the_directory_exits_2(tmp_path: Path, serve: Serve) -> None:
    directory = tmp_path / "taken"
    served = serve(directory)
    second = subprocess.run(
        [str(PARLANT_ROUTER), "emulator", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    port = served.advertisement["port"]
    assert (second.returncode, second.stdout) == (2, "")
    assert second.stderr == (
        f"{directory} is already served by pid {served.process.pid} on 127.0.0.1:{port}\n"
    )
    # A port that is taken, and a directory that cannot be one: one line each, exit 2.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for arguments, message in (
        ([str(tmp_path / "other"), "--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
        ([str(blocker / "x")], "is not writable: Not a directory"),
    ):
        failed = subprocess.run(
            [str(PARLANT_ROUTER), "emulator", *arguments],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (failed.returncode, failed.stdout) == (2, "")
        assert failed.stderr.count("\n") == 1 and message in failed.stderr
    assert served.process.poll() is None


def test_concurrent_merges_never_insert_a_key_twice(tmp_path: Path, serve: Serve) -> None:
    """Snowflake runs MERGEs on a table one at a time; fakesnow's MERGE is several DuckDB
    statements, so without the emulator's lock two of these would both find the key absent."""
    served = serve(tmp_path / "merges")
    kwargs = served.connect_kwargs()
    query(kwargs, "CREATE TABLE CLAIMS (ID STRING, OWNER NUMBER)")
    workers, keys = 6, 12
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def claim(worker: int) -> None:
        try:
            with snowflake.connector.connect(**kwargs) as connection:
                cursor = connection.cursor()
                start.wait(timeout=30)
                for key in range(keys):
                    cursor.execute(
                        "MERGE INTO CLAIMS USING (SELECT %s AS ID, %s AS OWNER) S "
                        "ON CLAIMS.ID = S.ID "
                        "WHEN NOT MATCHED THEN INSERT (ID, OWNER) VALUES (S.ID, S.OWNER)",
                        (f"key-{key}", worker),
                    )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=claim, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    counts = query(kwargs, "SELECT ID, COUNT(*) FROM CLAIMS GROUP BY ID ORDER BY ID")
    assert sorted(counts) == sorted((f"key-{key}", 1) for key in range(keys))


def test_a_killed_server_does_not_block_the_next(tmp_path: Path, serve: Serve) -> None:
    directory = tmp_path / "killed"
    killed = serve(directory)
    query(killed.connect_kwargs(), "CREATE TABLE KEPT (V STRING)")
    query(killed.connect_kwargs(), "INSERT INTO KEPT VALUES ('before the kill')")
    stale = killed.advertisement
    assert killed.stop(signal.SIGKILL)[0] == -signal.SIGKILL
    assert (directory / "emulator.json").exists()  # nobody removed it

    port = free_port()
    again = serve(directory, "--port", str(port))
    advertised = again.advertisement
    assert (advertised["pid"], advertised["port"]) == (again.process.pid, port)
    assert advertised["password"] != stale["password"]
    assert f"on 127.0.0.1:{port} " in again.line
    assert query(again.connect_kwargs(), "SELECT V FROM KEPT") == [("before the kill",)]
    # The old password opens nothing on the new server.
    with pytest.raises(snowflake.connector.errors.DatabaseError):
        query(again.connect_kwargs(password=stale["password"]), "SELECT 1")
    assert again.stop(signal.SIGINT)[0] == 0


def test_two_servers_share_one_emulator_directory(tmp_path: Path) -> None:
    """Two `parlant-router run` naming one `emulator:` directory both start: one serves it,
    the other attaches, and what one writes the other reads."""
    servers: list[tuple[subprocess.Popen[bytes], int, Path]] = []
    try:
        for name in ("first", "second"):
            port, log = free_port(), tmp_path / f"{name}.log"
            config = tmp_path / f"{name}.yaml"
            config.write_text(
                json.dumps(
                    {
                        "version": 1,
                        "server": {
                            "host": "127.0.0.1",
                            "port": port,
                            "tool_service_port": free_port(),
                            "nlp": "offline",
                            "home": str(tmp_path / f"home-{name}"),
                        },
                        "backends": {
                            "warehouse": {"type": "snowflake", "emulator": str(tmp_path / "sf")}
                        },
                        "stores": {"customers": "warehouse"},
                    }
                )
            )
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [str(PARLANT_ROUTER), "run", "-c", str(config)],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            servers.append((process, port, log))
        for process, port, log in servers:
            _wait_healthy(process, port, log)

        first, second = (f"http://127.0.0.1:{port}" for _, port, _ in servers)
        created = httpx.post(f"{first}/customers", json={"name": "Zed"}, timeout=30)
        assert created.status_code == 201, created.text
        names = [c["name"] for c in httpx.get(f"{second}/customers", timeout=30).json()]
        assert "Zed" in names

        password = json.loads((tmp_path / "sf" / "emulator.json").read_text())["password"]
        logs = {process.pid: log.read_text(errors="replace") for process, _, log in servers}
        serving = [pid for pid, text in logs.items() if "served by this process" in text]
        assert len(serving) == 1
        [attached] = [text for pid, text in logs.items() if pid not in serving]
        assert f"attached to the emulator served by pid {serving[0]} on 127.0.0.1:" in attached
        assert all(password not in text for text in logs.values())

        # The attached server first: the other one takes the emulator down with it.
        for process, _, log in sorted(servers, key=lambda server: server[0].pid in serving):
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log.read_text(errors="replace")[-2000:]
    finally:
        for process, _, _ in servers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"server on port {port} not ready: {log.read_text(errors='replace')[-2000:]}")


@pytest.mark.parametrize(
    ("sql", "serialized"),
    [
        ("MERGE INTO T USING S ON T.ID = S.ID WHEN MATCHED THEN DELETE", True),
        ("  update T SET V = 1", True),
        ("-- why\n/* what */ DELETE FROM T", True),
        (
            "// a comment\nMerge into T using S on true when not matched then insert values (1)",
            True,
        ),
        ("INSERT INTO T VALUES (1)", False),
        ("SELECT * FROM T WHERE V = 'UPDATE'", False),
        ("UPDATED", False),
        ("/* never closed DELETE", False),
        ("", False),
    ],
)
def test_which_statements_take_the_table_lock(sql: str, serialized: bool) -> None:
    from parlant_router.snowflake.emulator_wire import _takes_table_lock

    assert _takes_table_lock(sql) is serialized
