"""The committed schema, the project's parlant.yaml and the starter template."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from parlant_router.cli import schema_text, starter_config
from parlant_router.config.loading import load_config
from parlant_router.config.models import SnowflakeBackendConfig
from parlant_router.config.routes import resolve_routes
from parlant_router.stores.catalog import STORE_NAMES

WriteFile = Callable[[str, str], Path]

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "parlant.schema.json"
PROJECT_CONFIG = REPO / "parlant.yaml"
SNOWFLAKE_VARIABLES = {
    "SNOWFLAKE_ACCOUNT": "acc-1",
    "SNOWFLAKE_USER": "parlant",
    "SNOWFLAKE_PASSWORD": "not-a-real-password",
    "SNOWFLAKE_WAREHOUSE": "wh",
    "SNOWFLAKE_DATABASE": "prod_db",
    "SNOWFLAKE_SCHEMA": "app",
}


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "schemas/parlant.schema.json is stale: run `make schema`"
    )


def test_schema_names_the_stores_and_backend_types() -> None:
    schema = json.loads(schema_text())
    assert sorted(schema["properties"]["stores"]["properties"]) == sorted(STORE_NAMES)
    mapping = schema["properties"]["backends"]["additionalProperties"]["discriminator"]["mapping"]
    assert sorted(mapping) == ["custom", "json", "mongodb", "snowflake", "transient"]
    password = schema["$defs"]["SnowflakeBackendConfig"]["properties"]["password"]["anyOf"][0]
    assert password.get("writeOnly") is True


@pytest.mark.parametrize("text", [PROJECT_CONFIG.read_text(encoding="utf-8"), starter_config()])
def test_yaml_files_point_editors_at_the_schema(text: str) -> None:
    assert text.startswith("# yaml-language-server: $schema=")


def test_project_config_runs_anywhere() -> None:
    loaded = load_config(PROJECT_CONFIG)
    config = loaded.config
    assert config.server.nlp == "offline"
    assert config.server.home == REPO / "parlant-data"
    warehouse = config.backends["warehouse"]
    assert isinstance(warehouse, SnowflakeBackendConfig)
    assert warehouse.emulator == REPO / "parlant-data" / "snowflake"
    routes = resolve_routes(config)
    assert [r.store for r in routes] == list(STORE_NAMES)
    assert {r.backend_name for r in routes} == {"warehouse"}
    prefixes = {r.store: r.table_prefix for r in routes}
    assert prefixes["sessions"] == "PARLANT_SESSIONS_"
    assert prefixes["customers"] == "PARLANT_CUSTOMERS_"
    assert prefixes["context_variables"] == "PARLANT_CONTEXT_VARIABLES_"
    assert prefixes["guideline_tool_associations"] == "PARLANT_GUIDELINE_TOOL_ASSOCIATIONS_"


def test_project_config_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SNOWFLAKE_VARIABLES.items():
        monkeypatch.setenv(name, value)
    config = load_config(PROJECT_CONFIG, env="prod").config
    assert (config.server.nlp, config.server.host) == ("openai", "0.0.0.0")
    warehouse = config.backends["warehouse"]
    assert isinstance(warehouse, SnowflakeBackendConfig)
    assert warehouse.emulator is None and warehouse.auth_method == "password"
    assert warehouse.role is None  # SNOWFLAKE_ROLE unset: the user's default role
    monkeypatch.setenv("SNOWFLAKE_ROLE", "PARLANT_APP")
    warehouse = load_config(PROJECT_CONFIG, env="prod").config.backends["warehouse"]
    assert isinstance(warehouse, SnowflakeBackendConfig) and warehouse.role == "PARLANT_APP"
    sessions = resolve_routes(config)[0]
    assert sessions.location.startswith("PROD_DB.APP.PARLANT_SESSIONS_SESSIONS, ")


def test_starter_template_loads(workdir: Path) -> None:
    (workdir / "parlant.yaml").write_text(starter_config(), encoding="utf-8")
    config = load_config("parlant.yaml").config
    assert [r.store for r in resolve_routes(config)] == [
        "sessions",
        "customers",
        "context_variables",
        "agents",
    ]


def test_template_is_package_data() -> None:
    # `init` reads the template from the installed package, so it must be shipped.
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    package_data = next(
        line for line in pyproject.splitlines() if line.startswith("parlant_router =")
    )
    assert '"templates/*.yaml"' in package_data


def schema_errors(text: str) -> list[str]:
    # jsonschema comes with Parlant; editors run the same Draft 2020-12 checks.
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    return [error.message for error in validator.iter_errors(yaml.safe_load(text))]


@pytest.mark.parametrize("text", [PROJECT_CONFIG.read_text(encoding="utf-8"), starter_config()])
def test_shipped_files_satisfy_the_schema(text: str) -> None:
    assert schema_errors(text) == []


def test_schema_accepts_interpolation_and_shorthand() -> None:
    text = (
        "version: 1\nserver: {port: '${PORT:-8800}', migrate: '${MIGRATE}'}\n"
        "backends: {m: {type: transient}}\nstores: {sessions: m}\n"
    )
    assert schema_errors(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nstores: {sesions: m}\n",
        "version: 1\nserver: {prot: 1}\n",
        "version: 1\nserver: {port: lots}\n",
        "version: 1\nbackends: {w: {type: snowflake, acount: a}}\n",
        "version: 1\nbackends: {w: {type: snowflak}}\n",
        "version: 1\nstores: {sessions: {backend: m, table_prefix: 1-x}}\n",
    ],
)
def test_schema_flags_what_the_loader_refuses(text: str) -> None:
    assert schema_errors(text) != []
