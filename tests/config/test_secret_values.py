"""Secret values: refused when YAML did not read them as strings, masked in reprs and --set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.config.models import SnowflakeBackendConfig
from parlant_router.config.secrets import backend_secrets
from parlant_router.errors import ConfigError

WriteFile = Callable[[str, str], Path]

HEAD = "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: acc\n    user: u\n"
QUOTE = "must be a string, but YAML reads the unquoted value as a {}, which can change it; quote the value"


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("012345", "number"),  # YAML 1.1 octal: 5349
        ("123_456", "number"),
        ("1.50", "number"),
        ("yes", "boolean"),
        ("2024-01-02", "date"),
    ],
)
def test_a_secret_that_yaml_did_not_read_as_a_string_is_refused(
    write: WriteFile, written: str, kind: str
) -> None:
    write("parlant.yaml", f"{HEAD}    password: {written}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == f"parlant.yaml:7:15: backends.w.password: {QUOTE.format(kind)}"


def test_mongodb_url_and_secret_options_are_refused_too(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        f"{HEAD}    password: p\n    options: {{passcode: 012345, login_timeout: 30, "
        "client_request_mfa_token: true}\n  m: {type: mongodb, url: 1234}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    # A flag that looks secret (client_request_mfa_token) may be a boolean; a number may not.
    assert str(caught.value).splitlines() == [
        f"parlant.yaml:8:25: backends.w.options.passcode: {QUOTE.format('number')}",
        f"parlant.yaml:9:27: backends.m.url: {QUOTE.format('number')}",
    ]


def test_a_set_value_is_read_as_yaml_and_refused_the_same_way(write: WriteFile) -> None:
    write("parlant.yaml", f"{HEAD}    password: p\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", overrides=["backends.w.password=012345"])
    assert str(caught.value) == (
        f"--set backends.w.password=***: backends.w.password: {QUOTE.format('number')}"
    )


@pytest.mark.parametrize(
    ("written", "overrides"),
    [
        ("'012345'", []),
        ("${PW}", []),  # interpolation always gives a string
        ("p", ["backends.w.password='012345'"]),
    ],
)
def test_quoted_or_interpolated_secrets_are_kept_exactly(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch, written: str, overrides: list[str]
) -> None:
    monkeypatch.setenv("PW", "012345")
    write("parlant.yaml", f"{HEAD}    password: {written}\n")
    backend = load_config("parlant.yaml", overrides=overrides).config.backends["w"]
    assert isinstance(backend, SnowflakeBackendConfig)
    assert backend.credentials().to_connect_kwargs()["password"] == "012345"


def test_secret_options_are_masked_in_reprs_and_still_reach_the_connector(
    write: WriteFile,
) -> None:
    secrets = {
        "passcode": "S3cr3t-opt-1",
        "oauth_client_secret": "S3cr3t-opt-2",
        "proxy_password": "S3cr3t-opt-3",
        "session_token": "S3cr3t-opt-4",
    }
    entries = ", ".join(f"{name}: {value}" for name, value in secrets.items())
    write(
        "parlant.yaml",
        f"{HEAD}    password: p\n    options: {{{entries}, login_timeout: 30}}\n"
        "  f: {type: custom, factory: 'my.mod:make', options: {api_token: S3cr3t-opt-5}}\n",
    )
    loaded = load_config("parlant.yaml")
    backend = loaded.config.backends["w"]
    assert isinstance(backend, SnowflakeBackendConfig)
    credentials = backend.credentials()
    for text in (repr(loaded), repr(credentials), str(credentials)):
        assert "S3cr3t-opt" not in text
        assert "'login_timeout': 30" in text or "custom" in text
    assert "'passcode': '***'" in repr(credentials)
    kwargs = credentials.to_connect_kwargs()
    assert {name: kwargs[name] for name in secrets} == secrets
    assert loaded.config.backends["f"].options == {"api_token": "S3cr3t-opt-5"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("backends.w.password=[S3cr3t-x]", "backends.w.password=***"),
        ("backends.w.pasword=S3cr3t-x", "backends.w.pasword=***"),
        ("backends.w.password.x=S3cr3t-x", "backends.w.password.x=***"),
        ("backends.w.options.passcode=[S3cr3t-x]", "backends.w.options.passcode=***"),
        ("backends.w.options.login_timeout=[S3cr3t-x]", "backends.w.options.login_timeout=***"),
        ("backends.w.session_parameters.X=[S3cr3t-x]", "backends.w.session_parameters.X=***"),
        ("backends.w=S3cr3t-x", "backends.w=***"),
        ("server.password=S3cr3t-x", "server.password=***"),
        ("backends.w.password:S3cr3t-x", "***"),
        ("backends.w.port=[x]", "backends.w.port=[x]"),
        ("server.port=[x]", "server.port=[x]"),
        ("stores.agents.backend=[x]", "stores.agents.backend=[x]"),
    ],
)
def test_a_set_value_is_echoed_only_under_plain_keys(
    write: WriteFile, override: str, shown: str
) -> None:
    write("parlant.yaml", f"{HEAD}    password: p\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", overrides=[override])
    assert str(caught.value).startswith(f"--set {shown}: ")
    assert "S3cr3t-x" not in str(caught.value)


def test_check_masks_secret_options_and_the_snowflake_variables_it_connects_with(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "S3cr3t-env-pw")
    write(
        "parlant.yaml",
        f"{HEAD}    password: S3cr3t-pw\n    options: {{passcode: S3cr3t-pc, login_timeout: 30}}\n"
        "  e: {type: snowflake}\n",
    )
    assert sorted(backend_secrets(load_config("parlant.yaml").config)) == [
        "S3cr3t-env-pw",
        "S3cr3t-pc",
        "S3cr3t-pw",
    ]
