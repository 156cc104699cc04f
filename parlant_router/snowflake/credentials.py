"""How to authenticate to Snowflake: every choice the connector supports that Parlant needs.

``SnowflakeCredentials.to_connect_kwargs()`` builds a *fresh* dict of connector keyword
arguments on every call, so a token file (Snowpark Container Services rotates
``/snowflake/session/token``) is re-read at every connect and reconnect.

Secrets are excluded from ``repr``/``str`` and never appear in an error message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from parlant_router.errors import looks_secret
from parlant_router.snowflake.errors import SnowflakeConfigurationError

#: Where Snowpark Container Services mounts the service's OAuth token.
SPCS_TOKEN_PATH = Path("/snowflake/session/token")
#: Connector defaults set unless given: seconds to log in (the connector's own is 120), and
#: the bound on one statement with the connector's retries of failed requests (its own is
#: none). A statement of this adapter is at most ~1 MB and runs in seconds; the bound also
#: cancels a statement that runs longer, on the server.
LOGIN_TIMEOUT_SECONDS = 60
NETWORK_TIMEOUT_SECONDS = 120

AuthField = Literal[
    "password",
    "token",
    "token_file",
    "private_key_file",
    "programmatic_access_token",
    "connection_name",
]
"""A field of ``SnowflakeCredentials`` that names a way to authenticate."""


@dataclass(frozen=True)
class SnowflakeCredentials:
    """Connection settings and one way to authenticate.

    Authentication is at most one of ``AUTH_FIELDS`` (none when ``authenticator`` alone says
    how, e.g. ``externalbrowser``):

    - ``password`` (``authenticator`` defaults to the connector's ``snowflake``);
    - ``token``: an OAuth access token;
    - ``token_file``: a file holding an OAuth token, re-read at every connect (SPCS);
    - ``private_key_file`` (+ ``private_key_passphrase``): key-pair authentication;
    - ``programmatic_access_token``: a Snowflake PAT;
    - ``connection_name``: a connections.toml entry; fields set here override the entry's.

    ``account`` is required (and ``user`` with a password or a key pair), except with
    ``connection_name``, whose entry may carry them. A contradiction raises
    ``SnowflakeConfigurationError`` naming the field at fault in ``field``.
    """

    AUTH_FIELDS: ClassVar[tuple[AuthField, ...]] = get_args(AuthField)
    """The ways to authenticate, at most one of which is set."""

    account: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    private_key_file: Path | None = None
    private_key_passphrase: str | None = field(default=None, repr=False)
    programmatic_access_token: str | None = field(default=None, repr=False)
    authenticator: str | None = None
    connection_name: str | None = None
    #: Where ``connection_name`` is looked up (default: the connector's, e.g.
    #: ``$SNOWFLAKE_HOME/connections.toml``).
    connections_file: Path | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema: str | None = None
    query_tag: str | None = None
    session_parameters: Mapping[str, Any] = field(default_factory=dict)
    #: Other connector arguments (``login_timeout``, ``network_timeout``,
    #: ``client_session_keep_alive``, ``passcode``, ...); the values of secret ones
    #: (`is_secret_option`) are shown as ``***`` in ``repr``.
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        chosen = [name for name in self.AUTH_FIELDS if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise auth_conflict(chosen[0], chosen[1])
        if self.private_key_passphrase is not None and self.private_key_file is None:
            raise _invalid(
                "needs 'private_key_file' (key-pair authentication)",
                field="private_key_passphrase",
            )
        if not chosen and self.authenticator is None:
            raise _invalid(
                "no way to authenticate: set password, token, token_file, private_key_file, "
                "programmatic_access_token, authenticator or connection_name"
            )
        check_options(self.options)
        # What the connector refuses to connect without (a connections.toml entry may hold it).
        needs = _REQUIRED_BY.get(chosen[0], ("account",)) if chosen else ("account",)
        method = chosen[0] if chosen else self.authenticator
        for name in needs:
            if getattr(self, name) is None:
                raise _invalid(f"required by {method} authentication", field=name)

    @property
    def method(self) -> str:
        """The authentication in use, for messages: ``password``, ``oauth``, ``key-pair`` ..."""
        if self.password is not None:
            return "password"
        if self.token is not None:
            return "oauth"
        if self.token_file is not None:
            return f"oauth token file {self.token_file}"
        if self.private_key_file is not None:
            return "key-pair"
        if self.programmatic_access_token is not None:
            return "programmatic access token"
        if self.authenticator is not None:
            return self.authenticator
        return f"connection {self.connection_name!r}"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        spcs_token_path: Path = SPCS_TOKEN_PATH,
    ) -> SnowflakeCredentials:
        """Read the ``SNOWFLAKE_*`` variables exactly as Parlant's upstream adapter does.

        Required: SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_WAREHOUSE, SNOWFLAKE_DATABASE,
        SNOWFLAKE_SCHEMA, and SNOWFLAKE_PASSWORD or SNOWFLAKE_TOKEN (the token wins and switches
        to OAuth). Optional: SNOWFLAKE_ROLE, SNOWFLAKE_HOST, SNOWFLAKE_AUTHENTICATOR (with a
        password). Inside Snowpark Container Services (no password or token, but the service
        token file exists) the token file is used and SNOWFLAKE_USER/SNOWFLAKE_WAREHOUSE become
        optional, as SPCS does not set them.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name) or None

        token, password = get("SNOWFLAKE_TOKEN"), get("SNOWFLAKE_PASSWORD")
        in_spcs = token is None and password is None and spcs_token_path.is_file()
        required = ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_DATABASE", "SNOWFLAKE_SCHEMA"]
        if not in_spcs:
            required[1:1] = ["SNOWFLAKE_USER", "SNOWFLAKE_WAREHOUSE"]
        missing = [name for name in required if get(name) is None]
        if token is None and password is None and not in_spcs:
            missing.append("SNOWFLAKE_PASSWORD or SNOWFLAKE_TOKEN")
        if missing:
            raise SnowflakeConfigurationError(
                "Missing Snowflake configuration: set the environment variables "
                + ", ".join(missing)
            )

        common: dict[str, Any] = {
            "account": get("SNOWFLAKE_ACCOUNT"),
            "user": get("SNOWFLAKE_USER"),
            "warehouse": get("SNOWFLAKE_WAREHOUSE"),
            "database": get("SNOWFLAKE_DATABASE"),
            "schema": get("SNOWFLAKE_SCHEMA"),
            "role": get("SNOWFLAKE_ROLE"),
            "host": get("SNOWFLAKE_HOST"),
        }
        if token is not None:
            return cls(token=token, **common)
        if password is not None:
            # Upstream's default, kept so that the connector sees the same arguments.
            authenticator = get("SNOWFLAKE_AUTHENTICATOR") or "snowflake"
            return cls(password=password, authenticator=authenticator, **common)
        return cls(token_file=spcs_token_path, **common)

    def replace(self, **changes: Any) -> SnowflakeCredentials:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect``, built fresh for this connect."""
        kwargs: dict[str, Any] = dict(self.options)
        if self.connection_name is not None:
            # The connector merges connections.toml under these explicit values.
            kwargs["connection_name"] = self.connection_name
            if self.connections_file is not None:
                kwargs["connections_file_path"] = self.connections_file
        for name in ("account", "user", "host", "port", "protocol", "role", "warehouse"):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        if self.database is not None:
            kwargs["database"] = self.database
        if self.schema is not None:
            kwargs["schema"] = self.schema
        if self.authenticator is not None:
            kwargs["authenticator"] = self.authenticator

        if self.password is not None:
            kwargs["password"] = self.password
        elif self.token is not None:
            kwargs["authenticator"] = "oauth"
            kwargs["token"] = self.token
        elif self.token_file is not None:
            kwargs["authenticator"] = "oauth"
            kwargs["token"] = self._read_token_file(self.token_file)
        elif self.private_key_file is not None:
            kwargs["private_key"] = self._load_private_key(self.private_key_file)
        elif self.programmatic_access_token is not None:
            kwargs["authenticator"] = "PROGRAMMATIC_ACCESS_TOKEN"
            kwargs["token"] = self.programmatic_access_token

        session_parameters = dict(self.session_parameters)
        if self.query_tag is not None:
            session_parameters["QUERY_TAG"] = self.query_tag
        if session_parameters:
            kwargs["session_parameters"] = session_parameters
        if self.connection_name is None:
            # The connector's defaults retry a failing request without end (network_timeout
            # None), holding a pooled connection and its thread; explicit values (options,
            # or connections.toml under connection_name) win.
            kwargs.setdefault("login_timeout", LOGIN_TIMEOUT_SECONDS)
            kwargs.setdefault("network_timeout", NETWORK_TIMEOUT_SECONDS)
        return kwargs

    @staticmethod
    def _read_token_file(path: Path) -> str:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SnowflakeConfigurationError(
                f"Snowflake token file {path} cannot be read: {error.strerror or type(error).__name__}"
            ) from None
        if not token:
            raise SnowflakeConfigurationError(f"Snowflake token file {path} is empty")
        return token

    def _load_private_key(self, path: Path) -> bytes:
        from cryptography.hazmat.primitives import serialization

        passphrase = (
            self.private_key_passphrase.encode("utf-8")
            if self.private_key_passphrase is not None
            else None
        )
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise SnowflakeConfigurationError(
                f"Snowflake private key file {path} cannot be read: "
                f"{error.strerror or type(error).__name__}"
            ) from None
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except (ValueError, TypeError):
            # cryptography's messages can echo key material details; keep ours generic.
            raise SnowflakeConfigurationError(
                f"Snowflake private key file {path} cannot be loaded: not a PEM private key, "
                "or the passphrase is missing or wrong"
            ) from None
        return key.private_bytes(
            encoding=serialization.Encoding.DER,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        # The dataclass repr, with the values of secret options masked.
        shown = (
            (f.name, masked_options(self.options) if f.name == "options" else getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.repr
        )
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in shown)})"

    def __str__(self) -> str:
        return repr(self)


_REQUIRED_BY: dict[str, tuple[str, ...]] = {
    "password": ("account", "user"),
    "private_key_file": ("account", "user"),
    "connection_name": (),
}
"""Fields an authentication method needs; ``account`` alone for the others."""

# Our fields, and the connector's other names for a secret or a token file.
_RESERVED_OPTIONS = frozenset(f.name for f in dataclasses.fields(SnowflakeCredentials)) | {
    "private_key",
    "private_key_file_pwd",
    "token_file_path",
}


SECRET_OPTIONS: frozenset[str] = frozenset(
    {
        "password",
        "passcode",
        "proxy_password",
        "token",
        "session_token",
        "master_token",
        "oauth_client_secret",
        "private_key",
        "private_key_passphrase",
        "private_key_file_pwd",
        "programmatic_access_token",
    }
)
"""``snowflake.connector.connect`` arguments that carry a secret."""


def is_secret_option(name: str) -> bool:
    """Whether the ``options`` entry `name` holds a secret: one of ``SECRET_OPTIONS`` or a
    name that looks secret (`looks_secret`)."""
    return name in SECRET_OPTIONS or looks_secret(name)


def masked_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` with the value of every secret entry (`is_secret_option`) shown as ``***``."""
    return {
        name: "***" if is_secret_option(str(name)) else value for name, value in options.items()
    }


def _invalid(
    reason: str, *, field: str | None = None, conflicts: Iterable[str] = ()
) -> SnowflakeConfigurationError:
    return SnowflakeConfigurationError(
        reason, subject="Snowflake credentials", field=field, conflicts=conflicts
    )


def auth_conflict(first: str, second: str) -> SnowflakeConfigurationError:
    """The error for two ways to authenticate set together; ``second`` is the one at fault."""
    return _invalid(
        f"{first!r} and {second!r} are both set: choose one authentication method",
        field=second,
        conflicts=(first,),
    )


def check_options(options: Mapping[str, Any], reserved: Iterable[str] = ()) -> None:
    """Refuse an ``options`` entry that has its own field (or is in ``reserved``) or a secret.

    Options are shown in ``repr``, and an entry named like a field would silently compete
    with it, so the first such entry raises ``SnowflakeConfigurationError`` with
    ``field="options.<name>"``.
    """
    refused = _RESERVED_OPTIONS | frozenset(reserved)
    for name in options:
        if name in refused:
            raise _invalid(
                f"{name!r} has its own key (or is a secret): set it there, not in options",
                field=f"options.{name}",
            )


__all__ = [
    "SECRET_OPTIONS",
    "SPCS_TOKEN_PATH",
    "AuthField",
    "SnowflakeCredentials",
    "auth_conflict",
    "check_options",
    "is_secret_option",
    "masked_options",
]
