"""The emulator's SQL cannot reach the machine's files: a process that logs in gets tables,
not the files the server can read or write. Over the real connector, with the password the
emulator generated (and without it: refused)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector

from parlant_router.snowflake import SnowflakeEmulator


def run(kwargs: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with snowflake.connector.connect(**kwargs) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())


def test_sql_cannot_read_files_outside_the_directory(
    emulator_directory: Path, tmp_path: Path
) -> None:
    # Writes (COPY ... TO, ATTACH, INSTALL) do not get through fakesnow's parser today; DuckDB
    # refuses them as well now, should a later fakesnow pass them on.
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("not for SQL\n")
    with SnowflakeEmulator(emulator_directory) as kwargs:
        # fakesnow answers DuckDB's permission error with HTTP 500, which the connector
        # retries until network_timeout: a short one, and the attempts side by side.
        quick = {**kwargs, "network_timeout": 2}
        attempts = [
            f"SELECT * FROM read_text('{secret}')",
            f"SELECT * FROM read_csv('{secret}')",
            f"SELECT * FROM read_blob('{secret}')",
        ]
        with ThreadPoolExecutor(len(attempts)) as pool:
            outcomes = list(pool.map(lambda sql: _error_of(quick, sql), attempts))
        for sql, error in zip(attempts, outcomes, strict=True):
            assert isinstance(error, snowflake.connector.errors.Error), (sql, error)
        assert sorted(path.name for path in outside.iterdir()) == ["secret.txt"]

        # The normal workload still runs: tables, another database (a file in the
        # directory), and what was written is there after a restart.
        run(kwargs, "CREATE TABLE KEPT (V STRING)")
        run(kwargs, "INSERT INTO KEPT VALUES ('kept')")
        run(kwargs, "CREATE DATABASE SECOND")
        assert run({**kwargs, "database": "THIRD"}, "SELECT 1") == [(1,)]
    assert (emulator_directory / "SECOND.db").exists()
    with SnowflakeEmulator(emulator_directory) as kwargs:
        assert run(kwargs, "SELECT V FROM KEPT") == [("kept",)]
        # The password is per start: a wrong one is refused, as the connector reports it.
        with pytest.raises(snowflake.connector.errors.DatabaseError) as refused:
            run({**kwargs, "password": "not-the-password"}, "SELECT 1")
        assert refused.value.sqlstate == "28000"


def _error_of(kwargs: dict[str, Any], sql: str) -> BaseException | None:
    try:
        run(kwargs, sql)
    except Exception as error:
        return error
    return None
