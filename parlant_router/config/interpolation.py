"""`${VAR}` interpolation of the strings of a merged config tree.

`${VAR}` is the environment variable (an error when unset), `${VAR:-default}` falls back
to `default` when it is unset or empty, and `$${` writes a literal `${`. It runs on the
merged tree only, and not inside `environments`, so that the variables of environments
not in use are not required.
"""

from __future__ import annotations

import os
import re
from typing import Any

from parlant_router.config.secrets import secret_path
from parlant_router.config.yaml_tree import KeyPath, Position, PositionedTree

_INTERPOLATION_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


def interpolate(tree: PositionedTree, root: Position) -> set[str]:
    """Replace `${VAR}`, `${VAR:-default}` and `$${` in every string outside `environments`.

    Errors are `ConfigError`s located where the string was written (`root` when it has no
    position). Returns the values that may be secrets (`secrets.secret_path`), to keep them out of
    errors.
    """
    secrets: set[str] = set()

    def substitute(text: str, path: KeyPath) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            body = match.group(1)
            parsed = _VARIABLE_RE.match(body) if body is not None else None
            if parsed is None:
                raise tree.error_at(
                    path, "malformed interpolation: expected ${VAR} or ${VAR:-default}", root
                )
            name, default = parsed.group(1), parsed.group(2)
            value = os.environ.get(name)
            if default is not None:
                return value or default
            if value is None:
                raise tree.error_at(path, f"environment variable {name} is not set", root)
            return value

        return _INTERPOLATION_RE.sub(replace, text)

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            result = substitute(node, path) if "$" in node else node
            if result and secret_path(path):
                secrets.add(result)
            return result
        if isinstance(node, dict):
            return {
                k: v if path == () and k == "environments" else walk(v, (*path, k))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v, (*path, str(i))) for i, v in enumerate(node)]
        if node is not None and not isinstance(node, bool) and secret_path(path):
            secrets.add(str(node))  # a secret YAML read as a number is refused, not shown
        return node

    tree.data = walk(tree.data, ())
    return secrets
