"""`--set dotted.key=value`: one command-line override as a one-path config layer.

The value is a YAML scalar (`null` deletes the key). Errors name the override as their
source, `--set key=value`, with the value shown as `***` whenever it may be a secret
(`secrets.secret_path`: a secret key or a near miss of one, anything under one, any
`options` entry, any backend key that is not a plain setting).
"""

from __future__ import annotations

from typing import Any

import yaml

from parlant_router.config.secrets import secret_path
from parlant_router.config.yaml_tree import KeyPath, Position, PositionedTree
from parlant_router.errors import ConfigError


def parse_override(item: str) -> PositionedTree:
    """`dotted.key=value` as a one-path tree, every key on it positioned at the override.

    Raises `ConfigError` for a missing `=`, a bad key path, a key under `environments`
    (applied before any `--set`) or a value that is not a YAML scalar.
    """
    if "=" not in item:
        # Without `=` there is no telling the key from a value (`password:x`) but by its look.
        shown = "***" if secret_path(item.split(".")) else item
        raise ConfigError("expected KEY=VALUE (e.g. --set server.port=8801)", file=f"--set {shown}")
    source = _set_source(item)
    key, _, raw = item.partition("=")
    path = tuple(key.split("."))
    if not key or any(not part or part != part.strip() for part in path):
        raise ConfigError(
            "bad key path: expected dotted keys like server.port", file=source, key=key or None
        )
    if path[0] == "environments":
        raise ConfigError(
            "environments are applied before --set; set the keys themselves, or use --env",
            file=source,
            key=key,
        )
    value: Any = ""
    if raw.strip():
        try:
            loader = yaml.SafeLoader(raw)
        except yaml.YAMLError:
            raise ConfigError("the value is not valid YAML", file=source, key=key) from None
        try:
            node = loader.get_single_node()
            if not isinstance(node, yaml.ScalarNode):
                raise ConfigError(
                    "the value must be a YAML scalar (a string, number, boolean or null)",
                    file=source,
                    key=key,
                )
            value = loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise ConfigError("the value is not valid YAML", file=source, key=key) from None
        finally:
            loader.dispose()
    position = Position(source)
    tree = PositionedTree()
    node_data = tree.data
    for n in range(1, len(path) + 1):
        tree.keys[path[:n]] = tree.values[path[:n]] = position
    for part in path[:-1]:
        node_data = node_data.setdefault(part, {})
    node_data[path[-1]] = value
    return tree


def check_set_path(tree: PositionedTree, override: PositionedTree) -> None:
    """A `--set` may not go through a value that is not a mapping (`server.port.x=1`).

    `tree` is the merge of the layers below `override`, a tree from `parse_override`.
    """
    node: Any = tree.data
    changes: Any = override.data
    path: KeyPath = ()
    while isinstance(changes, dict) and changes:
        ((key, changes),) = changes.items()
        path = (*path, key)
        node = node.get(key) if isinstance(node, dict) else None
        if isinstance(changes, dict) and node is not None and not isinstance(node, dict):
            position = override.keys[path]
            raise ConfigError(
                f"bad key path: {'.'.join(path)} is a value, not a mapping",
                file=position.source,
                key=".".join(_override_path(override)),
            )


def _set_source(item: str) -> str:
    key, _, value = item.partition("=")
    return f"--set {key}={'***' if secret_path(key.split('.')) else value}"


def _override_path(override: PositionedTree) -> KeyPath:
    """The full key path a one-path `--set` tree sets."""
    return max(override.keys, key=len)
