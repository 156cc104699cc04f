"""The models of parlant.yaml (pydantic v2).

Every model forbids unknown keys. Validation failures that concern a specific
key are raised as `ConfigIssue`, which carries the key path, so the loader can
point at the exact line of the file (see `parlant_router.config.loading`). Relative
paths are resolved against ``base_dir`` from the validation context (the loader
passes the config file's directory).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from parlant_router.config.durations import Duration
from parlant_router.config.naming import (
    TABLE_BACKEND_TYPES,
    TABLE_PREFIX_PATTERN,
    effective_table_prefix,
    every_stored_name,
    stored_prefix,
)
from parlant_router.errors import did_you_mean
from parlant_router.nlp.services import check_nlp_name
from parlant_router.snowflake.credentials import (
    SECRET_OPTIONS,
    AuthField,
    SnowflakeCredentials,
    auth_conflict,
    check_options,
    is_secret_option,
    masked_options,
)
from parlant_router.snowflake.errors import SnowflakeConfigurationError
from parlant_router.stores.catalog import (
    RETAINED_STORE_NAMES,
    STORE_NAMES,
    STORES,
    VECTOR_STORE_NAMES,
)

_TABLE_PREFIX_RE = re.compile(TABLE_PREFIX_PATTERN)
_FACTORY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
_FACTORY_RE = re.compile(_FACTORY_PATTERN)

SECRET_KEYS: frozenset[str] = frozenset(
    {"password", "token", "private_key_passphrase", "programmatic_access_token", "url"}
)
"""Keys whose values are secrets: never printed, logged or put in an error."""


def holds_secret(annotation: Any) -> bool:
    """Whether a field annotated `annotation` holds a secret (a `SecretStr`, or one in it)."""
    return annotation is SecretStr or any(holds_secret(a) for a in get_args(annotation))


def model_keys(model: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    """(key as written, annotation) of each field of `model`."""
    for name, field in model.model_fields.items():
        yield field.alias or name, field.annotation


def _yaml_kind(value: Any, *, strict: bool) -> str | None:
    """What YAML made of an unquoted secret that is not a string, when it may have changed it.

    A number or a date is never meant (YAML 1.1 reads `012345` as 5349); a boolean only for a
    `strict` key, since flags among connector options look secret too."""
    if isinstance(value, bool):
        return "boolean" if strict else None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (datetime.date, datetime.time)):
        return "date"
    return None


class ConfigIssue(ValueError):
    """A validation failure at a key path relative to the model (or field) that raised it.

    ``at_key`` says the problem is the key itself (unknown name), so the error
    points at the key rather than at its value. ``conflicts`` name other keys the
    issue is about; the error points at whichever of them was set last.
    """

    def __init__(
        self,
        path: Iterable[str],
        message: str,
        *,
        at_key: bool = False,
        conflicts: Iterable[tuple[str, ...]] = (),
        see_also: Iterable[tuple[str, ...]] = (),
    ) -> None:
        self.path = tuple(path)
        self.message = message
        self.at_key = at_key
        self.conflicts = tuple(conflicts)
        """Other paths the issue is equally about (a conflict between keys)."""
        self.see_also = tuple(see_also)
        """Other paths the message refers to; the error names where each was written."""
        super().__init__(f"{'.'.join(self.path)}: {message}" if self.path else message)


class ConfigIssues(ValueError):
    """Several `ConfigIssue`s found by one validator; each is reported on its own line."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues))


def _raise_issues(issues: Sequence[ConfigIssue]) -> None:
    """Raise the one issue, or all of them as `ConfigIssues`; nothing when there are none."""
    if len(issues) == 1:
        raise issues[0]
    if issues:
        raise ConfigIssues(issues)


def _issue_error(issue: ConfigIssue, data: Any) -> InitErrorDetails:
    """`issue` as one of the errors of a `ValidationError` (located by its path)."""
    return InitErrorDetails(type="value_error", loc=(), input=data, ctx={"error": issue})


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    try:
        path = value.expanduser()
    except RuntimeError:  # `~someone` with no such user
        raise ConfigIssue((), f"cannot expand '~' in {str(value)!r}: no such user") from None
    base_dir = (info.context or {}).get("base_dir")
    if base_dir is not None and not path.is_absolute():
        path = Path(os.path.normpath(Path(base_dir) / path))
    return path


class _Model(BaseModel):
    """Strict base: unknown keys are refused with a did-you-mean, numbers may stand for strings."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        # `account: 12345` in YAML is a number; it means a string. Secrets are refused
        # instead (`_mistyped_secrets`): YAML may have changed them (`012345` reads as 5349).
        coerce_numbers_to_str=True,
    )

    @classmethod
    def _expand(cls, data: Any) -> Any:
        """Hook for shorthands, applied before key checks."""
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _check_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        data = cls._expand(data)
        if not isinstance(data, dict):
            return handler(data)
        names = {field.alias or name for name, field in cls.model_fields.items()}
        allowed = names | set(cls.model_fields)
        issues = [
            ConfigIssue(
                (str(key),),
                f"unknown key {str(key)!r}{did_you_mean(str(key), sorted(names))}",
                at_key=True,
            )
            for key in data
            if key not in allowed
        ]
        mistyped = cls._mistyped_secrets(data)
        # An empty value (typically `${VAR:-}`) means "not set" for optional keys.
        cleaned = {key: value for key, value in data.items() if key in allowed}
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if cleaned.get(key) == "" and field.default is None and not field.is_required():
                cleaned[key] = None
        if not issues and not mistyped:
            return handler(cleaned)
        # Validate the rest anyway, so that its mistakes are reported in the same run; a
        # mistyped secret stands in as a string, so that it is not also reported missing.
        for issue in mistyped:
            *parents, last = issue.path
            node = cleaned
            for parent in parents:
                copied = dict(node[parent])  # not the caller's mapping
                node[parent] = copied
                node = copied
            node[last] = ""
        errors = [_issue_error(issue, data) for issue in issues + mistyped]
        try:
            handler(cleaned)
        except ValidationError as error:
            errors.extend(
                InitErrorDetails(
                    type=details["type"],
                    loc=details["loc"],
                    input=details["input"],
                    ctx=details.get("ctx", {}),
                )
                for details in error.errors(include_url=False)
            )
        raise ValidationError.from_exception_data(cls.__name__, errors)

    @classmethod
    def _mistyped_secrets(cls, data: dict[str, Any]) -> list[ConfigIssue]:
        """A secret key, or a secret `options` entry, whose YAML value is not a string."""
        found: list[tuple[tuple[str, ...], str]] = []
        for key, annotation in model_keys(cls):
            kind = _yaml_kind(data.get(key), strict=True) if holds_secret(annotation) else None
            if kind is not None:
                found.append(((key,), kind))
        options = data.get("options") if "options" in cls.model_fields else None
        for name, value in options.items() if isinstance(options, dict) else ():
            if is_secret_option(str(name)):
                kind = _yaml_kind(value, strict=name in SECRET_OPTIONS)
                if kind is not None:
                    found.append((("options", str(name)), kind))
        # The value itself is never shown: it is a secret.
        return [
            ConfigIssue(
                path,
                f"must be a string, but YAML reads the unquoted value as a {kind}, which can "
                "change it; quote the value",
            )
            for path, kind in found
        ]


class ServerConfig(_Model):
    """How the Parlant server runs (what `p.Server` / `parlant-server` take)."""

    host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(
        default=8800, ge=0, le=65535, description="Port of the HTTP API (0: any free port)."
    )
    tool_service_port: int = Field(
        default=8818, ge=0, le=65535, description="Port of Parlant's built-in tool service."
    )
    nlp: str = Field(
        default="offline",
        description=(
            "NLP service: `offline` (no network, no key), a Parlant service name "
            "(openai, anthropic, snowflake, ...) or `pkg.mod:factory`."
        ),
    )
    migrate: bool = Field(
        default=True, description="Let Parlant migrate stores written by older versions."
    )
    log_level: Literal["trace", "debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="Server log level."
    )
    home: Path = Field(
        default=Path("parlant-data"),
        validate_default=True,
        description="Where Parlant writes its own files (PARLANT_HOME); relative to this file.",
    )
    modules: list[str] = Field(
        default_factory=list,
        description="Python modules to load, as `parlant-server --module` does.",
    )
    listener: Literal["notify", "poll"] = Field(
        default="notify",
        description=(
            "How clients waiting for events learn of new ones: `notify` (woken by this "
            "server's own writes, no statements while waiting) or `poll` (Parlant's "
            "listener, a query every 0.25 s per waiting client; for several servers "
            "writing one database)."
        ),
    )
    replicas: Literal["one", "many"] = Field(
        default="one",
        description=(
            "`one`: this server is the only process writing its stores. `many`: several "
            "server processes share the stores (replicas behind a load balancer); event "
            "offsets and session updates are made safe across processes and each process's "
            "read cache follows the others' writes within `max_staleness`. Needs the "
            "sessions store on a snowflake backend."
        ),
    )
    max_staleness: float = Field(
        default=1.0,
        ge=0.1,
        le=3600,
        description=(
            "With `replicas: many`: seconds within which a write of one server process is "
            "seen by the others' reads and waiting clients (each process polls the change "
            "table every half of it)."
        ),
    )
    prune_interval: Duration = Field(
        default=datetime.timedelta(hours=1),
        description=(
            "How often the server deletes what a store's `retention` lets go (the first pass "
            "runs 30 s after startup, or after one interval if that is shorter). With "
            "`replicas: many`, one replica at a time does it."
        ),
    )

    @field_validator("nlp")
    @classmethod
    def _check_nlp(cls, value: str) -> str:
        # Caught at load time (exit 2, FILE:LINE) rather than when the server starts.
        check_nlp_name(value)
        return value.strip()

    @field_validator("home")
    @classmethod
    def _resolve_home(cls, value: Path, info: ValidationInfo) -> Path:
        resolved = _resolve_path(value, info)
        assert resolved is not None  # a Path in gives a Path out
        return resolved


DEFAULT_CACHE_BYTES = 64 * 2**20
"""The read cache's bound per store when none is configured (64 MiB)."""


class CacheConfig(_Model):
    """The per-process read cache of a store's documents (`cache: false` turns it off).

    On by default on snowflake backends, where every read is a round trip; off on json and
    custom ones (set `cache: true` to enable it). A transient backend has none, and neither
    has mongodb: Parlant's MongoDB adapter answers an update with whatever matches the filter
    afterwards, not the document it updated, so a cache could not follow its writes.
    The cache is exact while one server process writes the store (see docs/production.md).
    """

    enabled: bool = Field(
        default=True, description="Keep documents read, answer repeats in memory."
    )
    max_size: ByteSize = Field(
        default=ByteSize(DEFAULT_CACHE_BYTES),
        description="Bound of the documents kept per store, e.g. `64MiB`, `1GB` (JSON size).",
    )

    @classmethod
    def _expand(cls, data: Any) -> Any:
        return {"enabled": data} if isinstance(data, bool) else data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        return {
            "anyOf": [{"type": "boolean", "description": "Shorthand for `{enabled: ...}`."}, schema]
        }


CACHED_BY_DEFAULT: frozenset[str] = frozenset({"snowflake"})
"""Backend types whose stores get the read cache unless the file says otherwise."""


_NO_CACHE: dict[str, str] = {
    "transient": "it keeps documents in memory already",
    "mongodb": "Parlant's MongoDB adapter does not return the document an update changed, "
    "so a cache could not follow its writes",
}
"""Backend types that refuse `cache`, and why."""


def _cache_enabled(*layers: CacheConfig | None, default: bool = False) -> bool:
    enabled = default
    for layer in layers:
        if layer is not None and "enabled" in layer.model_fields_set:
            enabled = layer.enabled
    return enabled


def cache_bytes(backend: BackendConfig, route: StoreRoute) -> int | None:
    """The read cache bound of a store on `backend` (None: no cache), store over backend."""
    layers = (backend.cache, route.cache)
    if not _cache_enabled(*layers, default=backend.type in CACHED_BY_DEFAULT):
        return None
    size = DEFAULT_CACHE_BYTES
    for layer in layers:
        if layer is not None and "max_size" in layer.model_fields_set:
            size = int(layer.max_size)
    return size


class _BackendModel(_Model):
    """What every backend entry takes besides its own settings."""

    cache: CacheConfig | None = Field(
        default=None,
        description="Read cache of the stores on this backend (default: on for snowflake, off "
        "for json and custom, none on transient and mongodb); a store's own `cache:` "
        "overrides it.",
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # `options` may carry secrets (a connector's passcode, a factory's password).
        for name, value in super().__repr_args__():
            yield name, masked_options(value) if name == "options" else value


SnowflakeAuthMethod = Literal[AuthField, "emulator", "env"]


class SnowflakeBackendConfig(_BackendModel):
    """Snowflake, through parlant_router.snowflake.SnowflakeDocumentDatabase.

    Authentication is one choice among `password`, `token` (OAuth), `token_file`,
    `private_key_file` (+ `private_key_passphrase`), `programmatic_access_token`,
    `connection_name` (connections.toml) and `emulator`. With none of them
    (`auth_method == "env"`), the whole connection is read when connecting from the
    `SNOWFLAKE_*` environment variables Parlant's upstream adapter reads, and connection keys
    in the file are refused.
    """

    AUTH_KEYS: ClassVar[tuple[SnowflakeAuthMethod, ...]] = (
        *SnowflakeCredentials.AUTH_FIELDS,
        "emulator",
    )

    CREDENTIAL_KEYS: ClassVar[frozenset[str]] = frozenset(
        field.name for field in dataclasses.fields(SnowflakeCredentials)
    )
    """Keys of this file that are SnowflakeCredentials fields of the same name."""

    ENV_CONNECTION_KEYS: ClassVar[tuple[str, ...]] = (
        "account",
        "user",
        "host",
        "port",
        "protocol",
        "authenticator",
        "warehouse",
        "database",
        "schema_",
        "role",
        "query_tag",
        "session_parameters",
        "connections_file",
        "options",
        "private_key_passphrase",
    )

    type: Literal["snowflake"] = Field(description="Backend type.")
    account: str | None = Field(default=None, description="Account identifier (e.g. `abc-xy123`).")
    user: str | None = Field(default=None, description="User to authenticate as.")
    host: str | None = Field(
        default=None, description="Host name, when it is not derived from account."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Port, when it is not the default 443."
    )
    protocol: Literal["https", "http"] | None = Field(
        default=None, description="Protocol, when it is not the default https."
    )
    authenticator: str | None = Field(
        default=None,
        description="Connector authenticator (e.g. `oauth`, `snowflake_jwt`); usually implied.",
    )
    warehouse: str | None = Field(default=None, description="Warehouse that runs the queries.")
    database: str | None = Field(
        default=None, description="Database of the tables (emulator default: PARLANT)."
    )
    schema_: str | None = Field(
        default=None, alias="schema", description="Schema of the tables (emulator default: PUBLIC)."
    )
    role: str | None = Field(
        default=None, description="Role to use; empty or absent: the user's default."
    )
    query_tag: str | None = Field(default=None, description="QUERY_TAG set on every session.")
    connection_name: str | None = Field(
        default=None, description="Authentication: a named connection from connections.toml."
    )
    connections_file: Path | None = Field(
        default=None,
        description="connections.toml to read connection_name from (default: the connector's).",
    )
    password: SecretStr | None = Field(
        default=None, description="Authentication: password (secret)."
    )
    token: SecretStr | None = Field(
        default=None, description="Authentication: OAuth access token (secret)."
    )
    token_file: Path | None = Field(
        default=None,
        description="Authentication: file holding an OAuth token, re-read on every connect (SPCS).",
    )
    private_key_file: Path | None = Field(
        default=None, description="Authentication: PEM private key file (key-pair authentication)."
    )
    private_key_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase of private_key_file (secret)."
    )
    programmatic_access_token: SecretStr | None = Field(
        default=None, description="Authentication: a programmatic access token (secret)."
    )
    session_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Snowflake session parameters set on connect."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Other snowflake.connector.connect arguments (login_timeout, "
            "client_session_keep_alive, ...); not for secrets or keys that have a field here."
        ),
    )
    emulator: Path | None = Field(
        default=None,
        description=(
            "Run the embedded Snowflake emulator, persisting under this directory; "
            "credentials are then optional."
        ),
    )
    pool_size: int = Field(default=4, ge=1, description="Connections kept open to Snowflake.")
    connection_wait_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Seconds an operation waits for a free connection of the pool before failing "
            "with a clear error (every connection busy)."
        ),
    )
    table_type: Literal["standard", "hybrid"] = Field(
        default="standard", description="Kind of table created for new collections."
    )

    @field_validator("token_file", "private_key_file", "connections_file", "emulator")
    @classmethod
    def _resolve_paths(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_path(value, info)

    @property
    def auth_method(self) -> SnowflakeAuthMethod:
        """The authentication choice; ``"env"`` when none is named (SNOWFLAKE_* at connect time)."""
        for key in self.AUTH_KEYS:
            if getattr(self, key) is not None:
                return key
        return "env"

    def credentials(self) -> SnowflakeCredentials:
        """These settings as ``SnowflakeCredentials``, to connect with.

        With no authentication method named (``auth_method == "env"``) they are read from
        the ``SNOWFLAKE_*`` environment variables, now. Not for the emulator, whose
        connection comes from the emulator once it runs. Raises
        ``SnowflakeConfigurationError`` (without secrets) when the settings do not add up.
        """
        if self.auth_method == "env":
            return SnowflakeCredentials.from_env()
        if self.emulator is not None:
            raise SnowflakeConfigurationError(
                "the emulator's connection settings come from the emulator once it runs"
            )
        settings: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            key = field.alias or name
            if key in self.CREDENTIAL_KEYS:
                value = getattr(self, name)
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                elif isinstance(value, dict):
                    value = dict(value)  # not shared with this model, which stays mutable
                settings[key] = value
        return SnowflakeCredentials(**settings)

    @model_validator(mode="after")
    def _check_connection(self) -> SnowflakeBackendConfig:
        # SnowflakeCredentials owns the rules about credentials; here are only the file's own.
        try:
            if self.emulator is not None:
                for method in SnowflakeCredentials.AUTH_FIELDS:
                    if getattr(self, method) is not None:
                        raise auth_conflict(method, "emulator")
            # Checked whatever the method: options end up in reprs even when unused.
            named = {field.alias or name for name, field in type(self).model_fields.items()}
            check_options(self.options, reserved=named)
            if self.auth_method not in ("env", "emulator"):
                self.credentials()
        except SnowflakeConfigurationError as error:
            raise self._issue(error) from None
        if self.auth_method == "env":
            # The router then reads the whole connection from SNOWFLAKE_*, as Parlant's upstream
            # adapter does; a key set here would be silently ignored, so it is refused.
            for key in self.ENV_CONNECTION_KEYS:
                if getattr(self, key):
                    raise ConfigIssue(
                        (key,) if key != "schema_" else ("schema",),
                        "no authentication method is set, so the connection comes from the "
                        "SNOWFLAKE_* environment variables and this key would be ignored; set one "
                        "of password, token, token_file, private_key_file, connection_name, "
                        "emulator",
                    )
        if self.emulator is not None:
            if self.table_type == "hybrid":
                raise ConfigIssue(("table_type",), "the emulator has no hybrid tables")
            # The emulator creates these; a real account has no such default.
            self.database = self.database or "PARLANT"
            self.schema_ = self.schema_ or "PUBLIC"
        return self

    @staticmethod
    def _issue(error: SnowflakeConfigurationError) -> ConfigIssue:
        """A credentials problem as a ``ConfigIssue`` at the file's key of the same name.

        An ``options.<name>`` entry is refused for its name, so the ``ConfigIssue`` points at
        the name.
        """
        path = tuple(error.field.split(".", 1)) if error.field else ()
        return ConfigIssue(
            path,
            error.reason,
            at_key=len(path) > 1,
            conflicts=[(name,) for name in error.conflicts],
        )


class JsonBackendConfig(_BackendModel):
    """Parlant's JSON-file database: one `<store>.json` per store in `directory`."""

    type: Literal["json"] = Field(description="Backend type.")
    directory: Path = Field(description="Directory of the JSON files; relative to this file.")

    @field_validator("directory")
    @classmethod
    def _resolve_directory(cls, value: Path, info: ValidationInfo) -> Path:
        resolved = _resolve_path(value, info)
        assert resolved is not None
        return resolved


class TransientBackendConfig(_BackendModel):
    """In memory: lost when the server stops."""

    type: Literal["transient"] = Field(description="Backend type.")


class MongoBackendConfig(_BackendModel):
    """MongoDB (needs the `mongodb` extra)."""

    type: Literal["mongodb"] = Field(description="Backend type.")
    url: SecretStr = Field(description="Connection URL, e.g. `mongodb://host:27017` (secret).")
    database: str = Field(default="parlant", description="Database that holds the collections.")


class CustomBackendConfig(_BackendModel):
    """A DocumentDatabase built by your own factory."""

    type: Literal["custom"] = Field(description="Backend type.")
    factory: str = Field(
        pattern=_FACTORY_PATTERN,
        description="`pkg.mod:callable` returning the DocumentDatabase.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the factory."
    )

    @field_validator("factory", mode="before")
    @classmethod
    def _check_factory(cls, value: Any) -> Any:
        if isinstance(value, str) and not _FACTORY_RE.match(value):
            raise ConfigIssue(
                (), f"{value!r} is not an import path like `my_package.module:make_db`"
            )
        return value


BackendConfig = Annotated[
    SnowflakeBackendConfig
    | JsonBackendConfig
    | TransientBackendConfig
    | MongoBackendConfig
    | CustomBackendConfig,
    Field(discriminator="type"),
]
BACKEND_MODELS: tuple[type[_BackendModel], ...] = get_args(get_args(BackendConfig)[0])
BACKEND_TYPES: tuple[str, ...] = tuple(
    get_args(member.model_fields["type"].annotation)[0] for member in BACKEND_MODELS
)
"""The `type:` values, in the order of BackendConfig's members."""


class StoreRoute(_Model):
    """Where one Parlant store lives. `sessions: warehouse` is short for `{backend: warehouse}`."""

    backend: str = Field(description="Name of a backend under `backends`.")
    table_prefix: str | None = Field(
        default=None,
        pattern=TABLE_PREFIX_PATTERN,
        description=(
            "Prefix of the store's tables (snowflake, mongodb); "
            "default `PARLANT_<STORE>_`. Passed as given to custom factories; "
            "json and transient backends have no tables and ignore it."
        ),
    )
    vector: Literal["snowflake", "transient", "chroma", "qdrant"] | None = Field(
        default=None,
        description=(
            "Vector database of a vector-backed store (journeys, glossary, ...): `snowflake` "
            "(embeddings stored in the store's own tables; the default on a snowflake "
            "backend), `transient` (in memory, rebuilt at each start; the default elsewhere), "
            "`chroma` or `qdrant` (local files)."
        ),
    )
    cache: CacheConfig | None = Field(
        default=None,
        description="This store's read cache, over its backend's `cache:` (e.g. `false`).",
    )
    vector_directory: Path | None = Field(
        default=None,
        description="Persistence directory of chroma/qdrant; default `<server.home>/vectors/<store>`.",
    )
    retention: Duration | None = Field(
        default=None,
        description=(
            "sessions, evaluations: how long to keep what is no longer active, e.g. `90d` "
            "(sessions whose last event is older are deleted with their events; evaluations "
            "by their creation). Off when not set."
        ),
    )

    @classmethod
    def _expand(cls, data: Any) -> Any:
        return {"backend": data} if isinstance(data, str) else data

    @field_validator("table_prefix", mode="before")
    @classmethod
    def _check_prefix(cls, value: Any) -> Any:
        # Refused, never rewritten: a silently changed prefix would point at other tables.
        if isinstance(value, str) and not _TABLE_PREFIX_RE.match(value):
            raise ConfigIssue(
                (),
                f"{value!r} is not a valid table prefix: use letters, digits and underscores, "
                "not starting with a digit",
            )
        return value

    @field_validator("vector_directory")
    @classmethod
    def _resolve_vector_directory(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_path(value, info)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        return {
            "anyOf": [
                {"type": "string", "description": "Shorthand for `{backend: <name>}`."},
                schema,
            ]
        }


class ParlantConfig(_Model):
    """parlant.yaml: the server, the backends, and which backend holds each store."""

    version: Literal[1] = Field(description="Format version of this file; always 1.")
    server: ServerConfig = Field(
        default_factory=lambda: ServerConfig.model_validate({}), description="The Parlant server."
    )
    backends: dict[str, BackendConfig] = Field(
        default_factory=dict, description="Named databases the stores can use."
    )
    stores: dict[str, StoreRoute] = Field(
        default_factory=dict,
        description="Parlant store -> backend. A store not listed keeps Parlant's default.",
    )
    environments: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        # Blocks are kept as written (uninterpolated); a literal secret in one stays out of reprs.
        repr=False,
        description=(
            "Per-environment overrides (merged over this file with --env / PARLANT_ENV); "
            "`null` deletes a key."
        ),
    )

    @field_validator("stores", mode="before")
    @classmethod
    def _check_store_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            _raise_issues(
                [
                    ConfigIssue(
                        (str(name),),
                        f"unknown store {str(name)!r}{did_you_mean(str(name), STORE_NAMES)}",
                        at_key=True,
                    )
                    for name in value
                    if name not in STORE_NAMES
                ]
            )
        return value

    @model_validator(mode="after")
    def _check_routes(self) -> ParlantConfig:
        issues: list[ConfigIssue] = []
        for store, route in self.stores.items():
            issues.extend(self._route_issues(store, route))
        issues.extend(self._table_collisions())
        _raise_issues(issues)
        if self.server.replicas == "many":
            self._check_replicas()
        return self

    def _route_issues(self, store: str, route: StoreRoute) -> Iterator[ConfigIssue]:
        """What is wrong with one store's route on its own."""
        path = ("stores", store)
        backend = self.backends.get(route.backend)
        if backend is None:
            defined = ", ".join(sorted(self.backends)) or "none"
            yield ConfigIssue(
                (*path, "backend"),
                f"backend {route.backend!r} is not defined"
                f"{did_you_mean(route.backend, self.backends)}; defined: {defined}",
            )
            return
        if route.retention is not None and store not in RETAINED_STORE_NAMES:
            yield ConfigIssue(
                (*path, "retention"),
                f"only {', '.join(RETAINED_STORE_NAMES)} take a retention",
            )
        if store not in VECTOR_STORE_NAMES:
            for key in ("vector", "vector_directory"):
                if key in route.model_fields_set:
                    yield ConfigIssue(
                        (*path, key),
                        f"only vector-backed stores ({', '.join(VECTOR_STORE_NAMES)}) "
                        "take a vector database",
                    )
        else:
            if route.vector_directory is not None and route.vector not in ("chroma", "qdrant"):
                yield ConfigIssue(
                    (*path, "vector_directory"), "needs `vector: chroma` or `vector: qdrant`"
                )
            if route.vector == "snowflake" and backend.type != "snowflake":
                yield ConfigIssue(
                    (*path, "vector"),
                    f"'snowflake' keeps the vectors in the store's own snowflake tables, but "
                    f"backend {route.backend!r} is {backend.type}: route the store to a "
                    "snowflake backend, or use transient, chroma or qdrant",
                )
        refused = _NO_CACHE.get(backend.type)
        if refused is not None and _cache_enabled(backend.cache, route.cache):
            yield ConfigIssue(
                (*path, "cache")
                if route.cache is not None
                else ("backends", route.backend, "cache"),
                f"a {backend.type} backend has no read cache: {refused}",
            )
        if route.cache is not None and route.cache.enabled and not STORES[store].cache_partitions:
            yield ConfigIssue(
                (*path, "cache"), f"store {store!r} is not cached (turns do not read it)"
            )

    def _table_collisions(self) -> Iterator[ConfigIssue]:
        """Two stores whose tables (collections) would share a name in one database.

        Every table counts: each collection's, the metadata one (which records one store's
        schema version) and each `<TABLE>_FAILED_MIGRATIONS`, where a migration moves the
        documents it cannot read: a shared one moves another store's documents there. Json
        stores cannot collide (a file per store name), nor transient ones; custom factories
        name their own tables.
        """
        seen_prefixes: dict[tuple[str, str], str] = {}
        seen_tables: dict[tuple[tuple[Any, ...], str], str] = {}
        for store, route in self.stores.items():
            backend = self.backends.get(route.backend)
            if backend is None or backend.type not in TABLE_BACKEND_TYPES:
                continue
            prefix = effective_table_prefix(store, backend.type, route.table_prefix)
            assert prefix is not None  # snowflake and mongodb always have one
            at = ("stores", store, "table_prefix") if route.table_prefix else ("stores", store)
            folded = stored_prefix(prefix, backend.type)
            other = seen_prefixes.setdefault((route.backend, folded), store)
            if other != store:
                yield ConfigIssue(
                    at,
                    f"table prefix {prefix!r} is also used by store {other!r} on backend "
                    f"{route.backend!r}; they would share Parlant's metadata table",
                )
                continue
            scope = _table_scope(route.backend, backend)
            reported = False
            for table in every_stored_name(store, prefix, backend.type):
                other = seen_tables.setdefault((scope, table), store)
                if other == store or reported:
                    continue  # one line per store; its other tables still count for later ones
                reported = True
                other_route = self.stores[other]
                where = (
                    f" on backend {other_route.backend!r} (same database and schema)"
                    if other_route.backend != route.backend
                    else ""
                )
                other_at = ("stores", other, "table_prefix") if other_route.table_prefix else ()
                yield ConfigIssue(
                    at,
                    f"table {table} is also a table of store {other!r}{where}",
                    see_also=[other_at or ("stores", other)],
                )

    def _check_replicas(self) -> None:
        """`server.replicas: many`: refuse what several processes would corrupt."""
        sessions = self.stores.get("sessions")
        backend = None if sessions is None else self.backends[sessions.backend]
        if sessions is None or backend is None or backend.type != "snowflake":
            where = (
                "is not routed (Parlant's default keeps it in each process)"
                if sessions is None or backend is None
                else f"is on {backend.type} backend {sessions.backend!r}"
            )
            raise ConfigIssue(
                ("server", "replicas"),
                "`many` needs stores.sessions on a snowflake backend, whose conditional "
                f"writes keep offsets and session updates safe across processes; sessions {where}",
            )
        if getattr(backend, "table_type", "standard") == "hybrid":
            raise ConfigIssue(
                ("backends", sessions.backend, "table_type"),
                "with server.replicas: many the sessions' backend needs standard tables: an "
                "event is appended by a MERGE that relies on Snowflake locking the table, and "
                "hybrid tables lock rows (see docs/snowflake.md)",
            )
        for store, route in self.stores.items():
            routed_to = self.backends[route.backend]
            if routed_to.type == "json":
                raise ConfigIssue(
                    ("stores", store, "backend"),
                    f"backend {route.backend!r} is a json backend: each server process rewrites "
                    "its files whole, so with server.replicas: many processes would overwrite "
                    "each other's writes; use a snowflake backend",
                )
            if routed_to.type != "snowflake" and cache_bytes(routed_to, route) is not None:
                raise ConfigIssue(
                    (*("stores", store), "cache")
                    if route.cache is not None
                    else ("backends", route.backend, "cache"),
                    "with server.replicas: many the read cache needs a snowflake backend (the "
                    "other processes' writes reach it through its change table)",
                )
        if self.server.listener == "notify" and cache_bytes(backend, sessions) is None:
            raise ConfigIssue(
                ("server", "listener"),
                "`notify` with server.replicas: many needs the sessions store's read cache "
                "(other processes' writes reach waiting clients through it); enable it or "
                "use `listener: poll`",
            )


def _table_scope(name: str, backend: BackendConfig) -> tuple[Any, ...]:
    """Backends with the same scope keep their tables in one namespace (database, schema)."""
    if isinstance(backend, SnowflakeBackendConfig):
        if backend.auth_method == "env":
            # Every such backend connects with the same SNOWFLAKE_* variables.
            return ("snowflake", "env")
        where = backend.emulator or backend.account or backend.connection_name
        if where is not None and backend.database and backend.schema_:
            return (
                "snowflake",
                str(where).lower(),
                backend.database.upper(),
                backend.schema_.upper(),
            )
    if isinstance(backend, MongoBackendConfig):
        return ("mongodb", backend.url.get_secret_value(), backend.database)
    return ("backend", name)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of parlant.yaml, for editors (`parlant-router schema`)."""
    schema = ParlantConfig.model_json_schema()
    stores = schema["properties"]["stores"]
    # Name the stores so that editors complete them and flag misspellings.
    stores.pop("additionalProperties", None)
    stores["properties"] = {name: {"$ref": "#/$defs/StoreRoute"} for name in STORE_NAMES}
    stores["additionalProperties"] = False
    _allow_interpolation(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "parlant.yaml"
    return schema


_INTERPOLATED = {
    "type": "string",
    "pattern": r"\$\{[^}]+\}",
    "description": "${VAR} or ${VAR:-default}, converted after interpolation.",
}


def _allow_interpolation(node: Any) -> None:
    """Let numbers, booleans and choices also be written as `${VAR}` (converted after loading)."""
    if isinstance(node, list):
        for item in node:
            _allow_interpolation(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _allow_interpolation(value)
    if "const" not in node and (
        "enum" in node or node.get("type") in ("integer", "number", "boolean")
    ):
        kept = {k: node.pop(k) for k in ("title", "description", "default") if k in node}
        original = dict(node)
        node.clear()
        node.update(kept)
        node["anyOf"] = [original, _INTERPOLATED]
