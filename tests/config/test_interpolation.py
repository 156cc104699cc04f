"""`${VAR}`, `${VAR:-default}`, `$${`: applied after merging, on the final tree only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.config.models import SnowflakeBackendConfig
from parlant_router.errors import ConfigError

WriteFile = Callable[[str, str], Path]


def host(write: WriteFile, value: str) -> str:
    write("parlant.yaml", f"version: 1\nserver:\n  host: {value}\n")
    return load_config("parlant.yaml").config.server.host


@pytest.mark.parametrize(
    ("value", "variables", "expected"),
    [
        ("${HOST}", {"HOST": "h.example"}, "h.example"),
        ("${HOST:-fallback}", {}, "fallback"),
        ("${HOST:-fallback}", {"HOST": "set"}, "set"),
        # As in the shell, `:-` also replaces an empty value.
        ("${HOST:-fallback}", {"HOST": ""}, "fallback"),
        ("${HOST}", {"HOST": ""}, ""),
        ("'${HOST:-}'", {}, ""),
        ("'${HOST:-a b:c}'", {}, "a b:c"),
        ("pre-${A}-mid-${B:-b}-post", {"A": "a"}, "pre-a-mid-b-post"),
        ("$${HOST}", {"HOST": "ignored"}, "${HOST}"),
        ("$${HOST}-${HOST}", {"HOST": "x"}, "${HOST}-x"),
        ("cost $5", {}, "cost $5"),
    ],
)
def test_interpolation(
    write: WriteFile,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    variables: dict[str, str],
    expected: str,
) -> None:
    for name, variable in variables.items():
        monkeypatch.setenv(name, variable)
    assert host(write, value) == expected


def test_interpolated_values_are_typed_by_the_model(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("MIGRATE", "false")
    write("parlant.yaml", "version: 1\nserver: {port: '${PORT}', migrate: '${MIGRATE}'}\n")
    server = load_config("parlant.yaml").config.server
    assert (server.port, server.migrate) == (9100, False)


def test_empty_value_means_not_set(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        """
        version: 1
        backends:
          w: {type: snowflake, emulator: e, role: '${SNOWFLAKE_ROLE:-}'}
        """,
    )
    warehouse = load_config("parlant.yaml").config.backends["w"]
    assert isinstance(warehouse, SnowflakeBackendConfig) and warehouse.role is None


def test_unset_variable(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\nserver:\n  host: ${MISSING_HOST}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == (
        "parlant.yaml:3:9: server.host: environment variable MISSING_HOST is not set"
    )


UNUSED_ENVIRONMENT = """
version: 1
server:
  host: ${FILE_HOST:-localhost}
environments:
  prod:
    server:
      host: ${PROD_HOST}
  dev:
    server:
      host: dev.example
"""


def test_unused_environment_needs_no_variables(write: WriteFile) -> None:
    write("parlant.yaml", UNUSED_ENVIRONMENT)
    config = load_config("parlant.yaml", env="dev").config
    assert config.server.host == "dev.example"
    assert config.environments["prod"]["server"]["host"] == "${PROD_HOST}"


def test_used_environment_needs_its_variables(write: WriteFile) -> None:
    write("parlant.yaml", UNUSED_ENVIRONMENT)
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", env="prod")
    assert str(caught.value) == (
        "parlant.yaml:7:13: server.host: environment variable PROD_HOST is not set"
    )


def test_overridden_value_needs_no_variable(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\nserver:\n  host: ${NEVER_SET}\n")
    loaded = load_config("parlant.yaml", overrides=["server.host=from-set"])
    assert loaded.config.server.host == "from-set"


def test_set_values_are_interpolated(write: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H", "from-variable")
    write("parlant.yaml", "version: 1\n")
    assert load_config("parlant.yaml", overrides=["server.host=${H}"]).config.server.host == (
        "from-variable"
    )


def test_unset_variable_in_set(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", overrides=["server.host=${NOPE}"])
    assert str(caught.value) == (
        "--set server.host=${NOPE}: server.host: environment variable NOPE is not set"
    )


@pytest.mark.parametrize("value", ["${}", "${1X}", "${A-b}", "'${A'", "'${A:b}'"])
def test_malformed(write: WriteFile, value: str) -> None:
    write("parlant.yaml", f"version: 1\nserver:\n  host: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == (
        "parlant.yaml:3:9: server.host: malformed interpolation: expected ${VAR} or ${VAR:-default}"
    )


def test_keys_are_not_interpolated(write: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAME", "warehouse")
    write("parlant.yaml", "version: 1\nbackends:\n  ${NAME}: {type: transient}\n")
    assert list(load_config("parlant.yaml").config.backends) == ["${NAME}"]
