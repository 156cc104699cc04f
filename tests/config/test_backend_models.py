"""The backend models agree with the code that uses them: backend types, Snowflake settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.config.models import BACKEND_TYPES, SnowflakeBackendConfig
from parlant_router.snowflake.credentials import SnowflakeCredentials
from parlant_router.snowflake.errors import SnowflakeConfigurationError

WriteFile = Callable[[str, str], Path]


def test_every_backend_type_has_a_backend_class() -> None:
    from parlant_router.backends import BACKEND_TYPES as BACKEND_CLASSES

    assert tuple(BACKEND_CLASSES) == BACKEND_TYPES


def test_every_snowflake_key_is_a_credential_or_the_backends_own() -> None:
    keys = {field.alias or name for name, field in SnowflakeBackendConfig.model_fields.items()}
    credentials = {field.name for field in dataclasses.fields(SnowflakeCredentials)}
    assert credentials <= keys
    assert keys - credentials == {
        "type",
        "emulator",
        "pool_size",
        "connection_wait_timeout",
        "table_type",
        "cache",
    }


def test_the_file_settings_become_credentials_of_the_same_names(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: a\n    user: u\n"
        "    password: p\n    database: db\n    schema: sc\n    query_tag: q\n"
        "    session_parameters: {TIMEZONE: UTC}\n    pool_size: 2\n",
    )
    backend = load_config("parlant.yaml").config.backends["w"]
    assert isinstance(backend, SnowflakeBackendConfig)
    credentials = backend.credentials()
    assert credentials == SnowflakeCredentials(
        account="a",
        user="u",
        password="p",
        database="db",
        schema="sc",
        query_tag="q",
        session_parameters={"TIMEZONE": "UTC"},
    )
    assert credentials.session_parameters is not backend.session_parameters


def test_no_authentication_method_means_the_environment_when_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = SnowflakeBackendConfig.model_validate({"type": "snowflake"})
    for name, value in {
        "SNOWFLAKE_ACCOUNT": "acc",
        "SNOWFLAKE_USER": "u",
        "SNOWFLAKE_PASSWORD": "p",
        "SNOWFLAKE_WAREHOUSE": "wh",
        "SNOWFLAKE_DATABASE": "db",
        "SNOWFLAKE_SCHEMA": "sc",
    }.items():
        monkeypatch.setenv(name, value)
    assert backend.credentials() == SnowflakeCredentials.from_env()


def test_the_emulator_has_no_credentials(tmp_path: Path) -> None:
    backend = SnowflakeBackendConfig.model_validate({"type": "snowflake", "emulator": tmp_path})
    with pytest.raises(SnowflakeConfigurationError, match="come from the emulator"):
        backend.credentials()
