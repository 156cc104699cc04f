"""Load parlant.yaml: layers, positions, interpolation, validation.

The tree is built from layers, lowest first: built-in defaults, the file, its
`environments.<env>` block, the overlay file `<stem>.<env>.yaml` beside it, then
each `--set dotted.key=value`. Layers are applied as RFC 7386 merge patches
(mappings merge deeply, `null` deletes a key, anything else replaces). Every
key remembers the source, line and column it came from, so that an error
points at the place that set it. `${VAR}` interpolation runs last, on the
merged tree only, so variables of environments not in use are not required.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from parlant_router.config.models import (
    BACKEND_TYPES,
    SECRET_KEYS,
    ConfigIssue,
    ParlantConfig,
    did_you_mean,
)
from parlant_router.errors import ConfigError

KeyPath = tuple[str, ...]

DEFAULT_CONFIG = "parlant.yaml"
_ENV_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_INTERPOLATION_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_MAX_DEPTH = 64


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    path: Path
    """The config file, absolute."""
    env: str | None
    """The environment applied, if any."""
    config: ParlantConfig
    overlay: Path | None = None
    """The overlay file `<stem>.<env>.yaml` that was applied, if there was one."""


@dataclass(frozen=True)
class Position:
    """Where a key or value was written: a file (with line and column) or a `--set`."""

    source: str
    line: int | None = None
    col: int | None = None
    layer: int = 0
    """Precedence of the layer that wrote it (higher: applied later)."""


@dataclass
class _Tree:
    """Plain data plus the position of every key and value in it, by key path."""

    data: dict[str, Any] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)

    def sub(self, prefix: KeyPath) -> _Tree:
        """The subtree at `prefix` (a mapping), its paths relative to it."""
        data: Any = self.data
        for key in prefix:
            data = data[key]
        n = len(prefix)
        return _Tree(
            data=data if isinstance(data, dict) else {},
            keys={p[n:]: pos for p, pos in self.keys.items() if p[:n] == prefix and len(p) > n},
            values={p[n:]: pos for p, pos in self.values.items() if p[:n] == prefix and len(p) > n},
        )

    def stamp(self, layer: int) -> None:
        """Mark every position as written by the layer of precedence `layer`."""
        self.keys = {p: dataclasses.replace(pos, layer=layer) for p, pos in self.keys.items()}
        self.values = {p: dataclasses.replace(pos, layer=layer) for p, pos in self.values.items()}

    def drop(self, prefix: KeyPath) -> None:
        """Forget the positions at and below `prefix`."""
        n = len(prefix)
        for index in (self.keys, self.values):
            for path in [p for p in index if p[:n] == prefix]:
                del index[path]

    def take(self, other: _Tree, path: KeyPath, *, below: bool) -> None:
        """Copy `other`'s positions at `path` (and below it when `below`)."""
        n = len(path)
        for mine, theirs in ((self.keys, other.keys), (self.values, other.values)):
            for p, pos in theirs.items():
                if p == path or (below and p[:n] == path):
                    mine[p] = pos

    def position(self, path: KeyPath, *, at_key: bool, root: Position) -> Position:
        """The best position for an error at `path`: itself, else its nearest written ancestor."""
        if at_key and path in self.keys:
            return self.keys[path]
        if path in self.values:
            return self.values[path]
        index = self.keys if at_key else self.values
        for n in range(len(path) - 1, 0, -1):
            if path[:n] in index:
                return index[path[:n]]
        return root


def _merge(target: _Tree, patch: _Tree) -> None:
    """Apply `patch` to `target` as an RFC 7386 merge patch, positions included."""

    def merge(into: dict[str, Any], changes: dict[str, Any], path: KeyPath) -> None:
        for key, value in changes.items():
            here = (*path, key)
            if value is None:
                into.pop(key, None)
                target.drop(here)
            elif isinstance(value, dict):
                if not isinstance(into.get(key), dict):
                    into[key] = {}
                    target.drop(here)
                # The newest layer that touched a mapping is the one an error about it names.
                target.take(patch, here, below=False)
                merge(into[key], value, here)
            else:
                into[key] = copy.deepcopy(value)
                target.drop(here)
                target.take(patch, here, below=True)

    merge(target.data, patch.data, ())


def _mark_position(source: str, mark: Any) -> Position:
    return Position(source, mark.line + 1, mark.column + 1)


def _yaml_error(error: yaml.YAMLError, source: str, text: str) -> ConfigError:
    # Only the problem text: a MarkedYAMLError's str() quotes the line, which may hold a secret.
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "invalid YAML"
        if error.context:
            problem = f"{problem} ({error.context})"
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        return ConfigError(f"invalid YAML: {problem}", file=source, line=line, col=col)
    if isinstance(error, yaml.reader.ReaderError):
        # Raised while reading, before there are marks: locate the character ourselves.
        before = text[: error.position]
        line = before.count("\n") + 1
        col = error.position - (before.rfind("\n") + 1) + 1
        character = f" (#x{error.character:04x})" if isinstance(error.character, int) else ""
        return ConfigError(
            f"invalid YAML: {error.reason}{character}", file=source, line=line, col=col
        )
    return ConfigError("invalid YAML", file=source)


def _parse_yaml(text: str, source: str) -> _Tree:
    """Compose `text` keeping positions; duplicate keys and non-mapping roots are errors."""
    tree = _Tree()
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as error:
        raise _yaml_error(error, source, text) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return tree
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError(
                "expected a mapping of keys (like `version: 1`) at the top level",
                file=source,
                line=root.start_mark.line + 1,
                col=root.start_mark.column + 1,
            )
        tree.data = _build(root, (), tree, loader, source)
        return tree
    except yaml.YAMLError as error:
        raise _yaml_error(error, source, text) from None
    finally:
        loader.dispose()


def _build(
    node: yaml.Node, path: KeyPath, tree: _Tree, loader: yaml.SafeLoader, source: str
) -> Any:
    if len(path) > _MAX_DEPTH:
        raise ConfigError(
            "nested too deeply (a recursive alias?)",
            file=source,
            line=node.start_mark.line + 1,
            key=".".join(path),
        )
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, child in enumerate(node.value):
            here = (*path, str(index))
            tree.keys[here] = tree.values[here] = _mark_position(source, child.start_mark)
            items.append(_build(child, here, tree, loader, source))
        return items
    assert isinstance(node, yaml.MappingNode)
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key_position = _mark_position(source, key_node.start_mark)
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise ConfigError(
                "YAML merge keys ('<<') are not supported; use environments instead",
                file=source,
                line=key_position.line,
                col=key_position.col,
                key=".".join(path) or None,
            )
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(
                "keys must be plain scalars",
                file=source,
                line=key_position.line,
                col=key_position.col,
                key=".".join(path) or None,
            )
        key = str(key_node.value)
        here = (*path, key)
        if key in mapping:
            first = tree.keys[here]
            raise ConfigError(
                f"duplicate key (first set at line {first.line})",
                file=source,
                line=key_position.line,
                col=key_position.col,
                key=".".join(here),
            )
        tree.keys[here] = key_position
        # A scalar's error points at the value; a block's at its key.
        tree.values[here] = (
            _mark_position(source, value_node.start_mark)
            if isinstance(value_node, yaml.ScalarNode) or value_node.flow_style
            else key_position
        )
        mapping[key] = _build(value_node, here, tree, loader, source)
    return mapping


def _read_file(path: Path, source: str) -> _Tree:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=source) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=source) from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file", file=source) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", file=source) from None
    return _parse_yaml(text, source)


def _set_source(item: str) -> str:
    key, _, value = item.partition("=")
    last = key.rsplit(".", 1)[-1]
    return f"--set {key}={'***' if last in SECRET_KEYS else value}"


def _parse_override(item: str) -> _Tree:
    """`dotted.key=value` as a one-path tree; the value is a YAML scalar (`null` deletes)."""
    if "=" not in item:
        raise ConfigError("expected KEY=VALUE (e.g. --set server.port=8801)", file=f"--set {item}")
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
    tree = _Tree()
    node_data = tree.data
    for n in range(1, len(path) + 1):
        tree.keys[path[:n]] = tree.values[path[:n]] = position
    for part in path[:-1]:
        node_data = node_data.setdefault(part, {})
    node_data[path[-1]] = value
    return tree


def _check_set_path(tree: _Tree, override: _Tree) -> None:
    """A `--set` may not go through a value that is not a mapping (`server.port.x=1`)."""
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


def _override_path(override: _Tree) -> KeyPath:
    """The full key path a one-path `--set` tree sets."""
    return max(override.keys, key=len)


def _interpolate(tree: _Tree, root: Position) -> set[str]:
    """Replace `${VAR}`, `${VAR:-default}` and `$${` in every string outside `environments`.

    Returns the values that ended up under secret keys, to keep them out of errors.
    """
    secrets: set[str] = set()

    def substitute(text: str, path: KeyPath) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            body = match.group(1)
            parsed = _VARIABLE_RE.match(body) if body is not None else None
            if parsed is None:
                raise _error_at(
                    tree, path, "malformed interpolation: expected ${VAR} or ${VAR:-default}", root
                )
            name, default = parsed.group(1), parsed.group(2)
            value = os.environ.get(name)
            if default is not None:
                return value or default
            if value is None:
                raise _error_at(tree, path, f"environment variable {name} is not set", root)
            return value

        return _INTERPOLATION_RE.sub(replace, text)

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            result = substitute(node, path) if "$" in node else node
            if path and path[-1] in SECRET_KEYS and result:
                secrets.add(result)
            return result
        if isinstance(node, dict):
            return {
                k: v if path == () and k == "environments" else walk(v, (*path, k))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v, (*path, str(i))) for i, v in enumerate(node)]
        return node

    tree.data = walk(tree.data, ())
    return secrets


def _error_at(tree: _Tree, path: KeyPath, message: str, root: Position) -> ConfigError:
    position = tree.position(path, at_key=False, root=root)
    return ConfigError(
        message,
        file=position.source,
        line=position.line,
        col=position.col,
        key=".".join(path) or None,
    )


def _walk_loc(data: Any, loc: Sequence[int | str]) -> KeyPath:
    """Pydantic's error location as the key path in our data (union tags dropped)."""
    path: list[str] = []
    node: Any = data
    for item in loc:
        key = str(item)
        if (
            len(path) == 2
            and path[0] == "backends"
            and isinstance(node, dict)
            and node.get("type") == key
            and key in BACKEND_TYPES
        ):
            continue  # the discriminated union's tag, not a key
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            node = None
        path.append(key)
    return tuple(path)


def _describe(error: ErrorDetails) -> tuple[tuple[str, ...], str, bool]:
    """(extra path, message, at_key) for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    issue = ctx.get("error")
    if isinstance(issue, ConfigIssue):
        return issue.path, issue.message, issue.at_key
    if kind == "missing":
        return (), "required key is missing", True
    if kind == "extra_forbidden":
        return (), "unknown key", True
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        return (
            ("type",),
            f"unknown backend type {tag!r}{did_you_mean(tag, BACKEND_TYPES)}; "
            f"expected one of {', '.join(BACKEND_TYPES)}",
            False,
        )
    if kind == "union_tag_not_found":
        return ("type",), f"required key is missing: one of {', '.join(BACKEND_TYPES)}", True
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return (), "expected a mapping", False
    if kind == "string_pattern_mismatch":
        return (), f"does not match the pattern {ctx.get('pattern')}", False
    if kind == "value_error":
        # Our validators' own one-line messages, without pydantic's "Value error, " prefix.
        return (), str((error.get("ctx") or {}).get("error", error["msg"])), False
    message = str(error["msg"])
    return (), message[0].lower() + message[1:], False


def _validation_error(
    error: ValidationError, tree: _Tree, secrets: set[str], root: Position
) -> ConfigError:
    first = error.errors(include_url=False, include_input=False)[0]
    extra, message, at_key = _describe(first)
    base = _walk_loc(tree.data, first["loc"])
    path = base + extra
    position = tree.position(path, at_key=at_key, root=root)
    issue = (first.get("ctx") or {}).get("error")
    if isinstance(issue, ConfigIssue):
        # A conflict between keys is reported where the later-applied one was written.
        for other in issue.conflicts:
            candidate = tree.position(base + other, at_key=at_key, root=root)
            if candidate.layer > position.layer:
                path, position = base + other, candidate
    # Belt and braces: no message may carry a secret, whatever produced it.
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            message = message.replace(secret, "***")
    return ConfigError(
        message,
        file=position.source,
        line=position.line,
        col=position.col,
        key=".".join(path) or None,
    )


def overlay_path(config_path: Path, env: str) -> Path:
    """The overlay file of `env` beside `config_path`: `parlant.yaml` -> `parlant.<env>.yaml`."""
    return config_path.with_name(f"{config_path.stem}.{env}{config_path.suffix}")


def _environment_block(
    file: _Tree, env: str, overlay_exists: bool, root: Position, origin: str
) -> _Tree:
    environments = file.data.get("environments")
    if environments is None:
        environments = {}
    if not isinstance(environments, dict):
        raise _error_at(file, ("environments",), "expected a mapping of environments", root)
    if env not in environments:
        if overlay_exists:
            return _Tree()
        defined = ", ".join(sorted(environments)) or "none"
        raise _error_at(
            file,
            ("environments",),
            f"unknown environment {env!r}{origin}{did_you_mean(env, environments)}; "
            f"defined: {defined}",
            root,
        )
    block = environments[env]
    if block is None:
        return _Tree()
    if not isinstance(block, dict):
        raise _error_at(file, ("environments", env), "expected a mapping", root)
    sub = file.sub(("environments", env))
    _refuse_environments(sub)
    return sub


def _refuse_environments(tree: _Tree) -> None:
    if "environments" in tree.data:
        position = tree.keys[("environments",)]
        raise ConfigError(
            "environments can only be defined in the main config file",
            file=position.source,
            line=position.line,
            col=position.col,
            key="environments",
        )


def _layers(
    path: Path, source: str, env: str | None, env_origin: str, overrides: Sequence[str]
) -> Iterator[tuple[str, _Tree]]:
    """The layers to merge, lowest precedence first (the defaults are the models' own)."""
    root = Position(source, 1, 1)
    file = _read_file(path, source)
    base = _Tree(
        data={k: v for k, v in file.data.items() if k != "environments"},
        keys=file.keys,
        values=file.values,
    )
    yield "file", base
    if env is not None:
        overlay = overlay_path(path, env)
        overlay_source = str(overlay_path(Path(source), env))
        yield "environment", _environment_block(file, env, overlay.is_file(), root, env_origin)
        if overlay.is_file():
            overlay_tree = _read_file(overlay, overlay_source)
            _refuse_environments(overlay_tree)
            yield "overlay", overlay_tree
    for item in overrides:
        yield "set", _parse_override(item)
    # `environments` itself is kept as written (nulls and all), for the model.
    environments = file.data.get("environments")
    if isinstance(environments, dict):
        # `staging:` with nothing under it is an empty block, not an error.
        kept = {k: {} if v is None else v for k, v in environments.items()}
        yield "environments", _Tree({"environments": kept}, file.keys, file.values)
    elif environments is not None:
        yield "environments", _Tree({"environments": environments}, file.keys, file.values)


def load_config(
    path: str | Path | None = None,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
) -> LoadedConfig:
    """Load, merge, interpolate and validate a config file.

    `path` defaults to `$PARLANT_CONFIG`, else `./parlant.yaml`; `env` to
    `$PARLANT_ENV` (empty: none). `overrides` are `dotted.key=value` strings
    applied last. Raises `ConfigError` (one line, located, secret-free).
    """
    given = str(path) if path is not None else os.environ.get("PARLANT_CONFIG") or DEFAULT_CONFIG
    config_path = Path(given).expanduser().absolute()
    # Named in errors, so that a forgotten PARLANT_ENV in the shell is easy to spot.
    env_origin = ""
    if env is None:
        env = os.environ.get("PARLANT_ENV") or None
        env_origin = " (from PARLANT_ENV)"
    root = Position(given, 1, 1)
    if env is not None and not _ENV_NAME_RE.match(env):
        raise ConfigError(f"bad environment name {env!r}{env_origin}", file=given)

    # Built-in defaults are the models' own; `server` is named so that its defaults
    # (server.home) are validated, and so resolved against the file's directory.
    tree = _Tree(data={"server": {}})
    for order, (kind, layer) in enumerate(
        _layers(config_path, given, env, env_origin, overrides), 1
    ):
        layer.stamp(order)
        if kind == "environments":
            tree.data["environments"] = layer.data["environments"]
            tree.take(layer, ("environments",), below=True)
        else:
            if kind == "set":
                _check_set_path(tree, layer)
            _merge(tree, layer)
    secrets = _interpolate(tree, root)
    try:
        config = ParlantConfig.model_validate(tree.data, context={"base_dir": config_path.parent})
    except ValidationError as error:
        raise _validation_error(error, tree, secrets, root) from None
    overlay = overlay_path(config_path, env) if env is not None else None
    return LoadedConfig(
        path=config_path,
        env=env,
        config=config,
        overlay=overlay if overlay is not None and overlay.is_file() else None,
    )
