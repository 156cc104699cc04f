"""Which values of a configuration are secrets: to mask wherever a value can be echoed.

A key is secret by its model (`SECRET_KEYS`, fields typed `SecretStr`), by its name (an
`options` entry that looks secret, a misspelt secret key) or by where it sits (anything in a
backend but its models' plain typed keys). `secret_path` judges a key path of the tree before
validation (for `--set` and `${VAR}` errors); `backend_secrets` lists the secret values of a
validated configuration (for `check`, which prints what drivers say).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import get_origin

from pydantic import BaseModel, SecretStr

from parlant_router.config.models import (
    BACKEND_MODELS,
    SECRET_KEYS,
    CacheConfig,
    ParlantConfig,
    ServerConfig,
    SnowflakeBackendConfig,
    StoreRoute,
    holds_secret,
    model_keys,
)
from parlant_router.errors import did_you_mean
from parlant_router.snowflake.credentials import is_secret_option
from parlant_router.stores.catalog import STORE_NAMES


def backend_secrets(config: ParlantConfig) -> list[str]:
    """The values of every backend's SECRET_KEYS and secret `options` entries
    (`is_secret_option`), and the secret SNOWFLAKE_* variables a backend without an
    authentication method connects with: to mask in text that might echo them."""
    found: list[str] = []
    for backend in config.backends.values():
        for key in sorted(SECRET_KEYS):
            value = getattr(backend, key, None)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
        for name, value in getattr(backend, "options", {}).items():
            if is_secret_option(str(name)) and isinstance(value, str) and value:
                found.append(value)
        if isinstance(backend, SnowflakeBackendConfig) and backend.auth_method == "env":
            # The connection then authenticates with these, read when connecting.
            found.extend(os.environ.get(name, "") for name in _ENV_SECRETS)
    return [value for value in found if value]


_ENV_SECRETS = ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_TOKEN")
"""The secret SNOWFLAKE_* variables a backend without an authentication method reads."""


def is_secret_key(name: str) -> bool:
    """Whether a key named `name` may hold a secret, wherever it is written.

    A key the models know is secret when it is in SECRET_KEYS; any other name (an `options`
    entry, a misspelt key) when it looks secret or is a near miss of a secret key
    (`pasword`), since a misspelt secret key still holds the secret.
    """
    if name in SECRET_KEYS:
        return True
    if name in _known_keys():
        return False
    return is_secret_option(name) or bool(did_you_mean(name, SECRET_KEYS))


def secret_path(path: Sequence[str]) -> bool:
    """Whether the value at `path` of the config tree may be a secret, so no message shows it.

    True under a secret key (`is_secret_key`) at any depth, and in a backend for anything but
    its models' plain keys: an `options` or `session_parameters` entry, an unknown key, a whole
    backend. A path inside `environments.<env>` is judged as the path it sets.
    """
    path = tuple(path)
    if path[:1] == ("environments",):
        path = path[2:]
    if any(is_secret_key(part) for part in path):
        return True
    if path[:1] == ("backends",):
        return len(path) < 3 or path[2] not in _plain_backend_keys()
    return False


@functools.cache
def _known_keys() -> frozenset[str]:
    models: tuple[type[BaseModel], ...] = (
        ParlantConfig,
        ServerConfig,
        CacheConfig,
        StoreRoute,
        *BACKEND_MODELS,
    )
    return frozenset(key for model in models for key, _ in model_keys(model)) | set(STORE_NAMES)


@functools.cache
def _plain_backend_keys() -> frozenset[str]:
    """Backend keys whose values are never secrets: typed, and neither secret nor free-form."""
    return frozenset(
        key
        for model in BACKEND_MODELS
        for key, annotation in model_keys(model)
        if not holds_secret(annotation) and get_origin(annotation) is not dict
    )


__all__ = ["backend_secrets", "is_secret_key", "secret_path"]
