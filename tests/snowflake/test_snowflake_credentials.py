"""SnowflakeCredentials: every way to authenticate, the seed's environment variables, and
secrets that never show."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from parlant.adapters.db.snowflake_db import _load_connection_params_from_env

from parlant_router.snowflake import (
    RetryPolicy,
    SnowflakeConfigurationError,
    SnowflakeCredentials,
    SnowflakeDocumentDatabase,
    SnowflakeEmulator,
    SnowflakeOperationError,
)
from parlant_router.snowflake.credentials import LOGIN_TIMEOUT_SECONDS, NETWORK_TIMEOUT_SECONDS
from tests.support.logger import RecordingLogger

#: What we add to upstream's arguments (the connector's defaults are unbounded).
TIMEOUTS = {"login_timeout": LOGIN_TIMEOUT_SECONDS, "network_timeout": NETWORK_TIMEOUT_SECONDS}
SEED_ENV = {
    "SNOWFLAKE_ACCOUNT": "abc-xy123",
    "SNOWFLAKE_USER": "parlant",
    "SNOWFLAKE_WAREHOUSE": "WH",
    "SNOWFLAKE_DATABASE": "DB",
    "SNOWFLAKE_SCHEMA": "SCH",
}
SECRETS = ("pw-secret-1", "tok-secret-2", "pass-secret-3", "pat-secret-4")


def emulator_target(emulator: SnowflakeEmulator) -> dict[str, Any]:
    kwargs = emulator.connect_kwargs()
    return {
        "account": kwargs["account"],
        "host": kwargs["host"],
        "port": kwargs["port"],
        "protocol": kwargs["protocol"],
        "database": kwargs["database"],
        "schema": kwargs["schema"],
        "session_parameters": kwargs["session_parameters"],
    }


def current_database(kwargs: dict[str, Any]) -> str:
    with snowflake.connector.connect(**kwargs) as connection:
        row = connection.cursor().execute("SELECT CURRENT_DATABASE()").fetchone()
        assert row is not None
        return str(row[0])


@pytest.mark.parametrize(
    "extra",
    [
        {"SNOWFLAKE_PASSWORD": "pw-secret-1"},
        {"SNOWFLAKE_TOKEN": "tok-secret-2"},
        {"SNOWFLAKE_TOKEN": "tok-secret-2", "SNOWFLAKE_PASSWORD": "pw-secret-1"},
        {"SNOWFLAKE_PASSWORD": "pw-secret-1", "SNOWFLAKE_AUTHENTICATOR": "username_password_mfa"},
        {"SNOWFLAKE_PASSWORD": "pw-secret-1", "SNOWFLAKE_ROLE": "ANALYST"},
    ],
)
def test_from_env_reads_the_seed_variables_as_upstream_does(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]
) -> None:
    for name, value in {**SEED_ENV, **extra}.items():
        monkeypatch.setenv(name, value)
    credentials = SnowflakeCredentials.from_env(spcs_token_path=Path("/nonexistent"))
    assert credentials.to_connect_kwargs() == {**_load_connection_params_from_env(), **TIMEOUTS}


def test_connector_timeouts_are_bounded_unless_given() -> None:
    # The connector's own network_timeout is None: a failing request retried without end.
    given = SnowflakeCredentials(
        account="a", user="u", password="p", options={"network_timeout": 600}
    )
    assert given.to_connect_kwargs()["network_timeout"] == 600
    assert given.to_connect_kwargs()["login_timeout"] == LOGIN_TIMEOUT_SECONDS
    named = SnowflakeCredentials(connection_name="prod")
    assert "network_timeout" not in named.to_connect_kwargs()  # connections.toml decides


def test_from_env_names_every_missing_variable_in_one_line() -> None:
    with pytest.raises(SnowflakeConfigurationError) as raised:
        SnowflakeCredentials.from_env(
            {"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_SCHEMA": "s"},
            spcs_token_path=Path("/nonexistent"),
        )
    assert str(raised.value) == (
        "Missing Snowflake configuration: set the environment variables SNOWFLAKE_USER, "
        "SNOWFLAKE_WAREHOUSE, SNOWFLAKE_DATABASE, SNOWFLAKE_PASSWORD or SNOWFLAKE_TOKEN"
    )


def test_from_env_inside_snowpark_container_services(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("spcs-token-a\n")
    credentials = SnowflakeCredentials.from_env(
        {
            "SNOWFLAKE_ACCOUNT": "acct",
            "SNOWFLAKE_HOST": "acct.snowflakecomputing.internal",
            "SNOWFLAKE_DATABASE": "DB",
            "SNOWFLAKE_SCHEMA": "SCH",
        },
        spcs_token_path=token,
    )
    kwargs = credentials.to_connect_kwargs()
    assert kwargs == {
        "account": "acct",
        "host": "acct.snowflakecomputing.internal",
        "database": "DB",
        "schema": "SCH",
        "authenticator": "oauth",
        "token": "spcs-token-a",
        **TIMEOUTS,
    }
    token.write_text("spcs-token-b\n")  # SPCS rotates it: every connect reads it again
    assert credentials.to_connect_kwargs()["token"] == "spcs-token-b"
    assert credentials.method == f"oauth token file {token}"


def test_secrets_never_show(tmp_path: Path) -> None:
    variants = [
        SnowflakeCredentials(account="a", user="u", password=SECRETS[0]),
        SnowflakeCredentials(account="a", token=SECRETS[1], query_tag="parlant"),
        SnowflakeCredentials(
            account="a",
            user="u",
            private_key_file=tmp_path / "k.p8",
            private_key_passphrase=SECRETS[2],
        ),
        SnowflakeCredentials(account="a", programmatic_access_token=SECRETS[3]),
    ]
    for credentials in variants:
        for text in (repr(credentials), str(credentials), f"{credentials}"):
            assert not any(secret in text for secret in SECRETS), text
    with pytest.raises(SnowflakeConfigurationError) as raised:
        variants[2].to_connect_kwargs()  # the key file does not exist
    assert SECRETS[2] not in str(raised.value)
    assert str(raised.value).startswith(
        f"Snowflake private key file {tmp_path / 'k.p8'} cannot be read"
    )


def test_one_way_to_authenticate() -> None:
    with pytest.raises(
        SnowflakeConfigurationError,
        match=r"'password' and 'token' are both set: choose one authentication method$",
    ):
        SnowflakeCredentials(account="a", password="x", token="y")
    with pytest.raises(SnowflakeConfigurationError, match="no way to authenticate"):
        SnowflakeCredentials(account="a", user="u")
    with pytest.raises(
        SnowflakeConfigurationError, match=r"account: required by password authentication$"
    ):
        SnowflakeCredentials(user="u", password="x")
    assert (
        SnowflakeCredentials(account="a", authenticator="externalbrowser").method
        == "externalbrowser"
    )


@pytest.mark.parametrize(
    ("settings", "field", "conflicts", "message"),
    [
        (
            {"account": "a", "connection_name": "c", "password": SECRETS[0]},
            "connection_name",
            ("password",),
            "Snowflake credentials: connection_name: 'password' and 'connection_name' are both "
            "set: choose one authentication method",
        ),
        (
            {"account": "a", "connection_name": "c", "private_key_passphrase": SECRETS[2]},
            "private_key_passphrase",
            (),
            "Snowflake credentials: private_key_passphrase: needs 'private_key_file' "
            "(key-pair authentication)",
        ),
        (
            {"account": "a", "private_key_file": Path("k.p8")},
            "user",
            (),
            "Snowflake credentials: user: required by private_key_file authentication",
        ),
        (
            {"host": "h", "token": SECRETS[1]},
            "account",
            (),
            "Snowflake credentials: account: required by token authentication",
        ),
        (
            {"account": "a", "token": SECRETS[1], "options": {"private_key": "k"}},
            "options.private_key",
            (),
            "Snowflake credentials: options.private_key: 'private_key' has its own key (or is a "
            "secret): set it there, not in options",
        ),
    ],
)
def test_a_contradiction_names_the_field_at_fault(
    settings: dict[str, Any], field: str, conflicts: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SnowflakeConfigurationError) as raised:
        SnowflakeCredentials(**settings)
    assert (raised.value.field, raised.value.conflicts) == (field, conflicts)
    assert str(raised.value) == message
    assert raised.value.reason == message.split(f"{field}: ", 1)[1]


def test_a_connection_name_needs_nothing_else() -> None:
    credentials = SnowflakeCredentials(connection_name="c", warehouse="W")
    assert credentials.to_connect_kwargs() == {"connection_name": "c", "warehouse": "W"}


def test_query_tag_and_session_parameters_are_merged() -> None:
    credentials = SnowflakeCredentials(
        account="a",
        user="u",
        password="x",
        role="R",
        warehouse="W",
        query_tag="parlant-router",
        session_parameters={"TIMEZONE": "UTC"},
    )
    first = credentials.to_connect_kwargs()
    assert first["session_parameters"] == {"TIMEZONE": "UTC", "QUERY_TAG": "parlant-router"}
    assert (first["role"], first["warehouse"]) == ("R", "W")
    first["session_parameters"]["X"] = 1
    assert "X" not in credentials.to_connect_kwargs()["session_parameters"]  # a fresh dict


def test_key_pair_connects(emulator: SnowflakeEmulator, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(SECRETS[2].encode()),
    )
    key_file = tmp_path / "rsa_key.p8"
    key_file.write_bytes(pem)
    credentials = SnowflakeCredentials(
        user="parlant",
        private_key_file=key_file,
        private_key_passphrase=SECRETS[2],
        **emulator_target(emulator),
    )
    kwargs = credentials.to_connect_kwargs()
    assert kwargs["private_key"] == key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert current_database(kwargs) == "PARLANT"

    wrong = credentials.replace(private_key_passphrase="not-it")
    with pytest.raises(SnowflakeConfigurationError) as raised:
        wrong.to_connect_kwargs()
    assert "not-it" not in str(raised.value) and "passphrase is missing or wrong" in str(
        raised.value
    )


def test_programmatic_access_token_and_password_connect(emulator: SnowflakeEmulator) -> None:
    pat = SnowflakeCredentials(programmatic_access_token=SECRETS[3], **emulator_target(emulator))
    assert pat.to_connect_kwargs()["authenticator"] == "PROGRAMMATIC_ACCESS_TOKEN"
    assert current_database(pat.to_connect_kwargs()) == "PARLANT"
    password = SnowflakeCredentials(user="u", password=SECRETS[0], **emulator_target(emulator))
    assert current_database(password.to_connect_kwargs()) == "PARLANT"


def test_connection_name_is_resolved_by_the_connector(
    emulator: SnowflakeEmulator, tmp_path: Path
) -> None:
    target = emulator.connect_kwargs()
    connections = tmp_path / "connections.toml"
    connections.write_text(
        "[parlant]\n"
        + "".join(
            f'{key} = "{target[key]}"\n'
            for key in ("account", "user", "password", "host", "protocol", "database", "schema")
        )
        + f"port = {target['port']}\n"
    )
    connections.chmod(0o600)
    credentials = SnowflakeCredentials(
        connection_name="parlant",
        connections_file=connections,
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    )
    kwargs = credentials.to_connect_kwargs()
    assert "password" not in kwargs  # the connector takes it from the file
    assert current_database(kwargs) == "PARLANT"


async def test_connect_errors_name_the_target_and_method_never_the_secret(
    emulator: SnowflakeEmulator,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    credentials = SnowflakeCredentials(
        user="u",
        password=SECRETS[0],
        options={"login_timeout": 2, "network_timeout": 2},
        **{**emulator_target(emulator), "port": port},
    )
    logger = RecordingLogger()
    database = SnowflakeDocumentDatabase(
        logger, credentials=credentials, retry=RetryPolicy(attempts=2, initial_delay=0.01, jitter=0)
    )
    with pytest.raises(SnowflakeOperationError) as raised:
        await database.__aenter__()
    assert str(raised.value).startswith("connect on PARLANT.PUBLIC (password) failed: ")
    assert SECRETS[0] not in str(raised.value)
    assert all(SECRETS[0] not in message for _, message in logger.records)
    with pytest.raises(
        SnowflakeConfigurationError,
        match=r"options\.password: 'password' has its own key \(or is a secret\): set it there",
    ):
        SnowflakeCredentials(account="a", user="u", options={"password": "x"}, token="t")
