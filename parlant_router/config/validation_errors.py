"""A pydantic `ValidationError` of the config models as one located `ConfigError`.

Pydantic says what is wrong and at which location of the data; the positioned tree
knows which file, line and column wrote that location. `locate_validation_error` joins
the two for the first error, in the package's own words (a `ConfigIssue` raised by a
model's validator keeps its message, key path and conflicting keys), and masks every
secret value so that no message can carry one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from parlant_router.config.models import BACKEND_TYPES, ConfigIssue
from parlant_router.config.yaml_tree import KeyPath, Position, PositionedTree
from parlant_router.errors import ConfigError, did_you_mean, mask_secrets

# Shorter values would be masked inside ordinary words of the message.
_MIN_MASKED_LENGTH = 4


def locate_validation_error(
    error: ValidationError, tree: PositionedTree, secrets: Iterable[str], root: Position
) -> ConfigError:
    """The first error of `error` (raised validating `tree.data`), located in `tree`.

    `secrets` are the secret values of the config, masked as ``***``; `root` is the
    position of errors that no written key explains (a key missing from the file).
    """
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
    message = mask_secrets(message, (s for s in secrets if len(s) >= _MIN_MASKED_LENGTH))
    return position.error(message, path)


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


def _describe(error: ErrorDetails) -> tuple[KeyPath, str, bool]:
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
