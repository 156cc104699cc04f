"""Every example configuration loads, resolves as documented, and works.

Examples that talk to a real Snowflake account are pointed at the embedded emulator with
`--set` overrides (their credentials are removed and `emulator` set), and their data
directories at tmp_path; the probes are `check_stores`, the code of `parlant-router check`.
examples/sdk/main.py runs as a real process in tests/e2e/test_sdk_example.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from parlant_router.check import check_stores
from parlant_router.config.loading import load_config
from parlant_router.config.routes import resolve_routes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _on_emulator(tmp_path: Path, *unset: str) -> list[str]:
    return [
        *(f"backends.warehouse.{key}=null" for key in unset),
        f"backends.warehouse.emulator={tmp_path / 'sf'}",
        f"server.home={tmp_path / 'home'}",
        "server.nlp=offline",
    ]


def _assert_all_pass(results: list[Any], expected: int) -> None:
    assert len(results) == expected
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]


async def test_seed_snowflake_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    path = EXAMPLES / "seed-snowflake" / "parlant.yaml"
    loaded = load_config(path)
    routes = {r.store: r for r in resolve_routes(loaded.config)}
    assert {s: r.table_prefix for s, r in routes.items()} == {
        "sessions": "PARLANT_SESSIONS_",
        "customers": "PARLANT_CUSTOMERS_",
        "context_variables": "PARLANT_CONTEXT_VARIABLES_",
    }
    # No credentials in the file: the seed's SNOWFLAKE_* variables, as the seed documents.
    for name, value in {
        "SNOWFLAKE_ACCOUNT": "abc-xy123",
        "SNOWFLAKE_USER": "parlant",
        "SNOWFLAKE_PASSWORD": "pw",
        "SNOWFLAKE_WAREHOUSE": "WH",
        "SNOWFLAKE_DATABASE": "DB",
        "SNOWFLAKE_SCHEMA": "SC",
    }.items():
        monkeypatch.setenv(name, value)
    kwargs = loaded.config.backends["warehouse"].credentials().to_connect_kwargs()  # type: ignore[union-attr]
    assert (kwargs["account"], kwargs["user"], kwargs["database"], kwargs["schema"]) == (
        "abc-xy123",
        "parlant",
        "DB",
        "SC",
    )

    on_emulator = load_config(path, overrides=_on_emulator(tmp_path))
    _assert_all_pass(await check_stores(on_emulator), 3)


async def test_spcs_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    for name, value in {
        "SNOWFLAKE_ACCOUNT": "abc-xy123",
        "SNOWFLAKE_HOST": "abc-xy123.snowflakecomputing.com",
        "SNOWFLAKE_DATABASE": "PARLANT_DB",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
        "SNOWFLAKE_WAREHOUSE": "PARLANT_WH",
    }.items():
        monkeypatch.setenv(name, value)
    path = EXAMPLES / "spcs" / "parlant.yaml"
    token = tmp_path / "token"
    token.write_text("first-token\n")
    loaded = load_config(path, overrides=[f"backends.warehouse.token_file={token}"])
    assert loaded.config.server.host == "0.0.0.0"
    assert len(resolve_routes(loaded.config)) == 13

    # The session token file is read at every connect: a refreshed token is picked up.
    credentials = loaded.config.backends["warehouse"].credentials()  # type: ignore[union-attr]
    first = credentials.to_connect_kwargs()
    assert (first["authenticator"], first["token"]) == ("oauth", "first-token")
    token.write_text("refreshed-token\n")
    assert credentials.to_connect_kwargs()["token"] == "refreshed-token"
    assert "first-token" not in repr(credentials)

    shipped = yaml.safe_load(path.read_text())
    assert shipped["backends"]["warehouse"]["token_file"] == "/snowflake/session/token"

    spec = yaml.safe_load((EXAMPLES / "spcs" / "spec.yaml").read_text())["spec"]
    (container,) = spec["containers"]
    assert container["command"][:2] == ["parlant-router", "run"]
    port = loaded.config.server.port
    assert container["readinessProbe"] == {"port": port, "path": "/healthz"}
    assert [e["port"] for e in spec["endpoints"]] == [port]
    assert container["env"]["SNOWFLAKE_WAREHOUSE"] == "PARLANT_WH"
    home = str(loaded.config.server.home)
    assert [m["mountPath"] for m in container["volumeMounts"]] == [home]

    on_emulator = load_config(path, overrides=_on_emulator(tmp_path, "token_file", "host"))
    _assert_all_pass(await check_stores(on_emulator, write=False), 13)


async def test_mixed_example(tmp_path: Path) -> None:
    path = EXAMPLES / "mixed" / "parlant.yaml"
    loaded = load_config(
        path,
        overrides=[
            f"backends.warehouse.emulator={tmp_path / 'sf'}",
            f"backends.files.directory={tmp_path / 'files'}",
            f"server.home={tmp_path / 'home'}",
        ],
    )
    kinds = {r.store: (r.backend.type, r.table_prefix) for r in resolve_routes(loaded.config)}
    assert kinds["sessions"] == ("snowflake", "CHAT_SESSIONS_")
    assert kinds["customers"] == ("json", None)
    assert kinds["context_variables"] == ("transient", None)
    assert kinds["journeys"] == ("json", None)
    _assert_all_pass(await check_stores(loaded), len(kinds))
    assert (tmp_path / "files" / "customers.json").is_file()


async def test_environments_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCOUNT", "USER", "PASSWORD", "WAREHOUSE", "PRIVATE_KEY_FILE"):
        monkeypatch.setenv(f"SNOWFLAKE_{name}", f"value-of-{name.lower()}")
    path = EXAMPLES / "environments" / "parlant.yaml"

    base = load_config(path, overrides=_on_emulator(tmp_path))
    assert base.config.backends["warehouse"].emulator == tmp_path / "sf"  # type: ignore[union-attr]

    staging = load_config(path, env="staging")
    warehouse = staging.config.backends["warehouse"]
    assert (warehouse.emulator, warehouse.database) == (None, "PARLANT_STAGING")  # type: ignore[union-attr]
    assert staging.config.server.nlp == "openai"
    assert staging.overlay is None

    prod = load_config(path, env="prod")
    warehouse = prod.config.backends["warehouse"]
    assert (warehouse.database, warehouse.pool_size) == ("PARLANT_PROD", 8)  # type: ignore[union-attr]
    assert prod.overlay == path.with_name("parlant.prod.yaml")
    prefixes = {r.store: r.table_prefix for r in resolve_routes(prod.config)}
    assert prefixes["sessions"] == "PROD_SESSIONS_"
    assert prefixes["context_variables"] == "PARLANT_CONTEXT_VARIABLES_"
    assert (prod.config.server.host, prod.config.server.log_level) == ("0.0.0.0", "warning")

    _assert_all_pass(await check_stores(base), 4)
