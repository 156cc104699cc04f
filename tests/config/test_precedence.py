"""Layers, lowest first: defaults < file < environments.<env> < overlay file < --set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.config.models import JsonBackendConfig, SnowflakeBackendConfig

WriteFile = Callable[[str, str], Path]

BASE = """
version: 1
server:
  host: file-host
  port: 1001
  modules: [a, b]
backends:
  warehouse:
    type: snowflake
    emulator: snow
  files: {type: json, directory: data}
stores:
  sessions: warehouse
environments:
  prod:
    server:
      port: 2002
      modules: [c]
    backends:
      warehouse:
        emulator: null
        connection_name: prod
  empty:
"""


@pytest.fixture
def base(write: WriteFile) -> Path:
    return write("parlant.yaml", BASE)


def test_defaults_fill_what_the_file_does_not_say(write: WriteFile, workdir: Path) -> None:
    write("parlant.yaml", "version: 1\n")
    server = load_config("parlant.yaml").config.server
    assert (server.host, server.port, server.tool_service_port) == ("127.0.0.1", 8800, 8818)
    assert (server.nlp, server.migrate, server.log_level, server.modules) == (
        "offline",
        True,
        "info",
        [],
    )
    assert server.home == workdir / "parlant-data"


def test_file_beats_defaults(base: Path) -> None:
    loaded = load_config(base)
    assert loaded.env is None and loaded.path == base
    assert (loaded.config.server.host, loaded.config.server.port) == ("file-host", 1001)


def test_environment_block_merges_deeply_and_replaces_lists(base: Path) -> None:
    server = load_config(base, env="prod").config.server
    assert server.port == 2002  # from the block
    assert server.host == "file-host"  # kept from the file: mappings merge
    assert server.modules == ["c"]  # lists replace


def test_null_in_environment_deletes_a_key(base: Path) -> None:
    warehouse = load_config(base, env="prod").config.backends["warehouse"]
    assert isinstance(warehouse, SnowflakeBackendConfig)
    assert warehouse.emulator is None
    assert warehouse.auth_method == "connection_name"
    # The emulator's PARLANT/PUBLIC defaults went with it.
    assert (warehouse.database, warehouse.schema_) == (None, None)


def test_empty_environment_block_changes_nothing(base: Path) -> None:
    assert load_config(base, env="empty").config == load_config(base).config


def test_overlay_file_beats_environment_block(base: Path, write: WriteFile) -> None:
    write("parlant.prod.yaml", "server:\n  port: 3003\n")
    loaded = load_config(base, env="prod")
    assert loaded.config.server.port == 3003
    assert loaded.config.server.modules == ["c"]  # the block still applies beneath
    assert loaded.overlay == base.parent / "parlant.prod.yaml"


def test_overlay_alone_defines_an_environment(base: Path, write: WriteFile) -> None:
    write("parlant.staging.yaml", "server:\n  port: 4004\n")
    assert load_config(base, env="staging").config.server.port == 4004


def test_overlay_of_another_environment_is_ignored(base: Path, write: WriteFile) -> None:
    write("parlant.staging.yaml", "server:\n  port: 4004\n")
    assert load_config(base, env="prod").config.server.port == 2002
    assert load_config(base).config.server.port == 1001


def test_set_beats_overlay_and_later_set_wins(base: Path, write: WriteFile) -> None:
    write("parlant.prod.yaml", "server:\n  port: 3003\n")
    loaded = load_config(
        base, env="prod", overrides=["server.port=5005", "server.host=h1", "server.host=h2"]
    )
    assert (loaded.config.server.port, loaded.config.server.host) == (5005, "h2")


def test_set_values_are_yaml_scalars(base: Path) -> None:
    server = load_config(
        base, overrides=["server.migrate=false", "server.nlp=openai", "server.port=0x10"]
    ).config.server
    assert server.migrate is False
    assert server.nlp == "openai"
    assert server.port == 16


def test_set_null_deletes_and_set_creates(base: Path) -> None:
    config = load_config(
        base,
        overrides=[
            "server.host=null",
            "backends.extra.type=json",
            "backends.extra.directory=more",
            "stores.agents=extra",
        ],
    ).config
    assert config.server.host == "127.0.0.1"
    extra = config.backends["extra"]
    assert isinstance(extra, JsonBackendConfig)
    assert config.stores["agents"].backend == "extra"


def test_empty_set_value_is_an_empty_string(base: Path) -> None:
    # An empty optional value means "not set", so the role is absent, not deleted by YAML null.
    warehouse = load_config(base, overrides=["backends.warehouse.role="]).config.backends[
        "warehouse"
    ]
    assert isinstance(warehouse, SnowflakeBackendConfig) and warehouse.role is None


def test_environment_from_variable(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLANT_ENV", "prod")
    assert load_config(base).config.server.port == 2002
    assert load_config(base).env == "prod"
    monkeypatch.setenv("PARLANT_ENV", "")
    assert load_config(base).env is None


def test_explicit_environment_beats_the_variable(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLANT_ENV", "prod")
    assert load_config(base, env="empty").config.server.port == 1001


def test_config_path_from_variable_then_default(
    base: Path, write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_config().path == base  # ./parlant.yaml
    other = write("conf/other.yaml", "version: 1\nserver: {port: 7007}\n")
    monkeypatch.setenv("PARLANT_CONFIG", str(other))
    loaded = load_config()
    assert loaded.path == other and loaded.config.server.port == 7007


def test_relative_paths_resolve_against_the_config_directory(
    write: WriteFile, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = write(
        "conf/parlant.yaml",
        """
        version: 1
        server: {home: home}
        backends:
          warehouse: {type: snowflake, emulator: ../snow}
          files: {type: json, directory: data}
          keys: {type: snowflake, account: a, user: u, private_key_file: ~/key.pem}
        stores:
          glossary: {backend: files, vector: chroma, vector_directory: vec}
        """,
    )
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(config_file).config
    conf = workdir / "conf"
    assert config.server.home == conf / "home"
    warehouse, files, keys = (config.backends[n] for n in ("warehouse", "files", "keys"))
    assert isinstance(warehouse, SnowflakeBackendConfig) and warehouse.emulator == workdir / "snow"
    assert isinstance(files, JsonBackendConfig) and files.directory == conf / "data"
    assert isinstance(keys, SnowflakeBackendConfig)
    assert keys.private_key_file == Path.home() / "key.pem"
    assert config.stores["glossary"].vector_directory == conf / "vec"


def test_shorthand_store_means_backend(base: Path) -> None:
    route = load_config(base).config.stores["sessions"]
    assert route.backend == "warehouse" and route.table_prefix is None


def test_environments_are_kept_as_written(base: Path) -> None:
    environments = load_config(base, env="prod").config.environments
    assert environments["prod"]["backends"]["warehouse"] == {
        "emulator": None,
        "connection_name": "prod",
    }


def test_emulator_defaults_database_and_schema(base: Path) -> None:
    warehouse = load_config(base).config.backends["warehouse"]
    assert isinstance(warehouse, SnowflakeBackendConfig)
    assert (warehouse.database, warehouse.schema_, warehouse.auth_method) == (
        "PARLANT",
        "PUBLIC",
        "emulator",
    )
