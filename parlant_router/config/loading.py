"""Load parlant.yaml: assemble its layers, merge, interpolate and validate them.

The tree is built from layers, lowest first: built-in defaults, the file, its
`environments.<env>` block, the overlay file `<stem>.<env>.yaml` beside it, then
each `--set dotted.key=value`. Layers are applied as RFC 7386 merge patches
(mappings merge deeply, `null` deletes a key, anything else replaces). Every
key remembers the source, line and column it came from, so that an error
points at the place that set it. `${VAR}` interpolation runs last, on the
merged tree only, so variables of environments not in use are not required.

The pieces live beside this module: `yaml_tree` (positions, YAML, the merge),
`overrides` (`--set`), `interpolation` (`${VAR}`) and `validation_errors`
(pydantic's errors as located `ConfigError`s).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from parlant_router.config.interpolation import interpolate
from parlant_router.config.models import ParlantConfig
from parlant_router.config.overrides import check_set_path, parse_override
from parlant_router.config.validation_errors import locate_validation_errors
from parlant_router.config.yaml_tree import Position, PositionedTree, merge_patch, parse_yaml
from parlant_router.errors import ConfigError, did_you_mean

DEFAULT_CONFIG = "parlant.yaml"
_ENV_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


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


def _read_file(path: Path, source: str) -> PositionedTree:
    """The config file at `path` as a tree; `source` names it in errors as the user wrote it."""
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
    return parse_yaml(text, source)


def overlay_path(config_path: Path, env: str) -> Path:
    """The overlay file of `env` beside `config_path`: `parlant.yaml` -> `parlant.<env>.yaml`."""
    return config_path.with_name(f"{config_path.stem}.{env}{config_path.suffix}")


def _environment_block(
    file: PositionedTree, env: str, overlay_exists: bool, root: Position, origin: str
) -> PositionedTree:
    environments = file.data.get("environments")
    if environments is None:
        environments = {}
    if not isinstance(environments, dict):
        raise file.error_at(("environments",), "expected a mapping of environments", root)
    if env not in environments:
        if overlay_exists:
            return PositionedTree()
        defined = ", ".join(sorted(environments)) or "none"
        raise file.error_at(
            ("environments",),
            f"unknown environment {env!r}{origin}{did_you_mean(env, environments)}; "
            f"defined: {defined}",
            root,
        )
    block = environments[env]
    if block is None:
        return PositionedTree()
    if not isinstance(block, dict):
        raise file.error_at(("environments", env), "expected a mapping", root)
    sub = file.sub(("environments", env))
    _refuse_environments(sub)
    return sub


def _refuse_environments(tree: PositionedTree) -> None:
    if "environments" in tree.data:
        raise tree.keys[("environments",)].error(
            "environments can only be defined in the main config file", ("environments",)
        )


def _layers(
    path: Path, source: str, env: str | None, env_origin: str, overrides: Sequence[str]
) -> Iterator[tuple[str, PositionedTree]]:
    """The layers to merge, lowest precedence first (the defaults are the models' own)."""
    root = Position(source, 1, 1)
    file = _read_file(path, source)
    base = PositionedTree(
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
        yield "set", parse_override(item)
    # `environments` itself is kept as written (nulls and all), for the model.
    environments = file.data.get("environments")
    if isinstance(environments, dict):
        # `staging:` with nothing under it is an empty block, not an error.
        kept = {k: {} if v is None else v for k, v in environments.items()}
        yield "environments", PositionedTree({"environments": kept}, file.keys, file.values)
    elif environments is not None:
        yield "environments", PositionedTree({"environments": environments}, file.keys, file.values)


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
    tree = PositionedTree(data={"server": {}})
    for order, (kind, layer) in enumerate(
        _layers(config_path, given, env, env_origin, overrides), 1
    ):
        layer.stamp(order)
        if kind == "environments":
            tree.data["environments"] = layer.data["environments"]
            tree.take(layer, ("environments",), below=True)
        else:
            if kind == "set":
                check_set_path(tree, layer)
            merge_patch(tree, layer)
    secrets = interpolate(tree, root)
    try:
        config = ParlantConfig.model_validate(tree.data, context={"base_dir": config_path.parent})
    except ValidationError as error:
        raise locate_validation_errors(error, tree, secrets, root) from None
    overlay = overlay_path(config_path, env) if env is not None else None
    return LoadedConfig(
        path=config_path,
        env=env,
        config=config,
        overlay=overlay if overlay is not None and overlay.is_file() else None,
    )
