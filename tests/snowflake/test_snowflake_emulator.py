from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector

from parlant_router.snowflake import SnowflakeEmulator, SnowflakeEmulatorError


def _count(kwargs: dict[str, Any], table: str) -> int:
    with snowflake.connector.connect(**kwargs) as conn:
        row = conn.cursor().execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def test_data_survives_a_restart_in_a_new_process(emulator_directory: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        import snowflake.connector
        from parlant_router.snowflake import SnowflakeEmulator

        with SnowflakeEmulator(sys.argv[1]) as kwargs:
            with snowflake.connector.connect(**kwargs) as conn:
                cur = conn.cursor()
                cur.execute("CREATE TABLE KEPT (ID STRING, DATA VARIANT)")
                cur.execute("INSERT INTO KEPT SELECT %s, PARSE_JSON(%s)", ("a", '{"n": 1}'))
        """
    )
    subprocess.run([sys.executable, "-c", script, str(emulator_directory)], check=True)

    with SnowflakeEmulator(emulator_directory) as kwargs:
        assert kwargs["database"] == "PARLANT" and kwargs["schema"] == "PUBLIC"
        with snowflake.connector.connect(**kwargs) as conn:
            row = conn.cursor().execute("SELECT ID, DATA:n::NUMBER FROM KEPT").fetchone()
    assert row == ("a", 1)


def test_concurrent_connections_share_one_database(emulator: SnowflakeEmulator) -> None:
    kwargs = emulator.connect_kwargs()
    with snowflake.connector.connect(**kwargs) as conn:
        conn.cursor().execute("CREATE OR REPLACE TABLE SHARED (ID STRING)")

    errors: list[BaseException] = []

    def insert(worker: int) -> None:
        try:
            with snowflake.connector.connect(**kwargs) as conn:
                cur = conn.cursor()
                for i in range(5):
                    cur.execute("INSERT INTO SHARED VALUES (%s)", (f"{worker}-{i}",))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=insert, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert _count(kwargs, "SHARED") == 20


def test_stop_releases_the_files_for_the_next_emulator(emulator_directory: Path) -> None:
    first = SnowflakeEmulator(emulator_directory, database="other", schema="data")
    kwargs = first.start()
    with snowflake.connector.connect(**kwargs) as conn:
        conn.cursor().execute("CREATE TABLE T (ID STRING)")
        conn.cursor().execute("INSERT INTO T VALUES ('x')")
    first.stop()
    assert not first.running

    with SnowflakeEmulator(emulator_directory, database="OTHER", schema="DATA") as again:
        assert _count(again, "T") == 1
    assert (emulator_directory / "OTHER.db").exists()


def test_unusable_directory_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(SnowflakeEmulatorError) as raised:
        SnowflakeEmulator(blocker / "emulator").start()

    message = str(raised.value)
    assert "\n" not in message
    assert str(blocker / "emulator") in message
    assert "not writable" in message


def test_connect_kwargs_require_a_running_emulator(tmp_path: Path) -> None:
    with pytest.raises(SnowflakeEmulatorError, match="not running"):
        SnowflakeEmulator(tmp_path).connect_kwargs()


def test_one_emulator_per_directory_per_process(emulator_directory: Path) -> None:
    with SnowflakeEmulator(emulator_directory) as kwargs:
        with pytest.raises(SnowflakeEmulatorError) as raised:
            SnowflakeEmulator(emulator_directory).start()
        assert str(raised.value) == (
            f"a Snowflake emulator for {emulator_directory.resolve()} already runs in this "
            f"process (port {kwargs['port']}); share that one"
        )
    # Once stopped, the directory is free again.
    with SnowflakeEmulator(emulator_directory) as kwargs:
        assert _count(kwargs, "INFORMATION_SCHEMA.TABLES") >= 0


def test_the_listener_disables_nagle(tmp_path: Path) -> None:
    """Accepted connections inherit TCP_NODELAY from the listener (Linux), so no answer
    stalls ~40 ms on Nagle's algorithm meeting the connector's delayed ACK."""
    emulator = SnowflakeEmulator(tmp_path / "nodelay")
    emulator.start()
    try:
        server = emulator._server  # the uvicorn server the emulator runs
        assert server is not None
        listeners = [sock for listener in server.servers for sock in listener.sockets]
        assert listeners
        for sock in listeners:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        emulator.stop()
