"""A secret never appears in an error, a repr or a route, even next to the mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.config.routes import resolve_routes
from parlant_router.errors import ConfigError

WriteFile = Callable[[str, str], Path]

PASSWORD = "pw-Zq81-secret"
TOKEN = "tok-7781-secret"
MONGO_URL = "mongodb://admin:mongo-Pw-991@db.example:27017"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PASSWORD", PASSWORD)
    monkeypatch.setenv("SF_TOKEN", TOKEN)
    monkeypatch.setenv("MONGO_URL", MONGO_URL)


def assert_clean(text: str) -> None:
    for secret in (PASSWORD, TOKEN, MONGO_URL, "mongo-Pw-991"):
        assert secret not in text


GOOD = """
version: 1
backends:
  warehouse:
    type: snowflake
    account: acc
    user: u
    password: ${SF_PASSWORD}
    database: db
    schema: sc
  mongo: {type: mongodb, url: '${MONGO_URL}'}
stores:
  sessions: warehouse
  customers: mongo
"""


def test_not_in_repr_nor_routes(write: WriteFile) -> None:
    write("parlant.yaml", GOOD)
    loaded = load_config("parlant.yaml")
    assert_clean(repr(loaded))
    assert_clean(str(loaded.config.model_dump()))
    routes = resolve_routes(loaded.config)
    assert [r.store for r in routes] == ["sessions", "customers"]
    assert_clean(repr(routes))
    for route in routes:
        assert_clean(route.location)


@pytest.mark.parametrize(
    ("neighbour", "expected"),
    [
        ("    warehouse: [1]\n", "backends.warehouse.warehouse: input should be a valid string"),
        ("    pasword: x\n", "backends.warehouse.pasword: unknown key 'pasword'"),
        ("    token: ${SF_TOKEN}\n", "backends.warehouse.token: 'password' and 'token' are both"),
        ("    pool_size: ${SF_PASSWORD}\n", "backends.warehouse.pool_size: input should be"),
        ("    table_type: ${SF_PASSWORD}\n", "backends.warehouse.table_type: input should be"),
    ],
)
def test_not_in_errors_about_neighbours(write: WriteFile, neighbour: str, expected: str) -> None:
    write(
        "parlant.yaml",
        "version: 1\nbackends:\n  warehouse:\n    type: snowflake\n    account: a\n    user: u\n"
        f"    password: ${{SF_PASSWORD}}\n{neighbour}",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert expected in str(caught.value)
    assert_clean(str(caught.value))
    assert_clean(repr(caught.value))


def test_secret_used_where_a_name_is_echoed_is_masked(write: WriteFile) -> None:
    # The error message quotes the bad value; that value is also the password.
    write(
        "parlant.yaml",
        "version: 1\nbackends:\n  w: {type: snowflake, account: a, user: u, "
        "password: '${SF_PASSWORD}'}\n  x: {type: '${SF_PASSWORD}'}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value).startswith(
        "parlant.yaml:4:13: backends.x.type: unknown backend type '***'"
    )
    assert_clean(str(caught.value))


def test_secret_in_a_set_is_masked(write: WriteFile) -> None:
    write("parlant.yaml", GOOD)
    with pytest.raises(ConfigError) as caught:
        load_config(
            "parlant.yaml",
            overrides=[f"backends.warehouse.password={PASSWORD}", "backends.warehouse.token=t2"],
        )
    assert str(caught.value) == (
        "--set backends.warehouse.token=***: backends.warehouse.token: 'password' and 'token' "
        "are both set: choose one authentication method"
    )


def test_secret_not_in_yaml_errors(write: WriteFile) -> None:
    # PyYAML's own messages quote the offending line; ours must not.
    write("parlant.yaml", f"version: 1\nbackends:\n  w:\n    password: {PASSWORD}\n   x: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value).startswith("parlant.yaml:")
    assert_clean(str(caught.value))


def test_literal_secret_in_an_environment_block_not_in_repr(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        f"version: 1\nenvironments:\n  prod:\n    backends:\n      w: {{password: {PASSWORD}}}\n",
    )
    loaded = load_config("parlant.yaml")
    assert loaded.config.environments["prod"]["backends"]["w"]["password"] == PASSWORD
    assert_clean(repr(loaded))


def test_programmatic_access_token_is_a_masked_auth_choice(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: acc\n    user: u\n"
        "    programmatic_access_token: ${SF_TOKEN}\n    options: {login_timeout: 7}\n"
        "stores:\n  sessions: w\n",
    )
    loaded = load_config("parlant.yaml")
    backend = loaded.config.backends["w"]
    assert backend.auth_method == "programmatic_access_token"  # type: ignore[union-attr]
    assert_clean(repr(loaded))
    credentials = backend.credentials()  # type: ignore[union-attr]
    assert_clean(repr(credentials))
    kwargs = credentials.to_connect_kwargs()
    assert kwargs["token"] == TOKEN
    assert kwargs["login_timeout"] == 7


def test_a_secret_in_options_is_refused_without_echoing_it(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: acc\n    user: u\n"
        "    password: ${SF_PASSWORD}\n    options:\n      token: ${SF_TOKEN}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == (
        "parlant.yaml:9:7: backends.w.options.token: 'token' has its own key (or is a secret): "
        "set it there, not in options"
    )
    assert_clean(str(caught.value))


async def test_check_masks_a_programmatic_access_token_that_an_error_echoes(
    write: WriteFile, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parlant_router.backends.snowflake import SnowflakeBackend
    from parlant_router.check import check_stores

    async def echoing_open(self: SnowflakeBackend) -> None:
        # A driver error that quotes the request it sent, token included.
        raise RuntimeError(f"login refused: authenticator=PROGRAMMATIC_ACCESS_TOKEN token={TOKEN}")

    monkeypatch.setattr(SnowflakeBackend, "open", echoing_open)
    # check binds Parlant's home process-wide: undo it after the test.
    monkeypatch.setenv("PARLANT_HOME", str(workdir / "home"))
    write(
        "parlant.yaml",
        "version: 1\nserver: {home: home}\nbackends:\n  w:\n    type: snowflake\n"
        "    account: acc\n    user: u\n    programmatic_access_token: ${SF_TOKEN}\n"
        "stores:\n  sessions: w\n",
    )
    (result,) = await check_stores(load_config("parlant.yaml"))
    assert not result.ok
    assert "token=***" in result.detail
    assert_clean(result.detail)
