"""A pydantic `ValidationError` of the config models as located `ConfigError`s.

Pydantic says what is wrong and at which location of the data; the positioned tree
knows which file, line and column wrote that location. `locate_validation_errors` joins
the two for every error pydantic found, in the package's own words (a `ConfigIssue` raised
by a model's validator keeps its message, key path and conflicting keys; `ConfigIssues`
are several of them), sorts them in file order and masks every secret value so that no
message can carry one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from parlant_router.config.models import BACKEND_TYPES, ConfigIssue, ConfigIssues
from parlant_router.config.yaml_tree import KeyPath, Position, PositionedTree
from parlant_router.errors import ConfigError, did_you_mean, mask_secrets

# Shorter values would be masked inside ordinary words of the message.
_MIN_MASKED_LENGTH = 4


def locate_validation_errors(
    error: ValidationError, tree: PositionedTree, secrets: Iterable[str], root: Position
) -> ConfigError:
    """Every error of `error` (raised validating `tree.data`), located in `tree`, as one
    `ConfigError` (see `ConfigError.combine`) in file order: layer, line, column.

    `secrets` are the secret values of the config, masked as ``***``; `root` is the
    position of errors that no written key explains (a key missing from the file).
    """
    masked = [s for s in secrets if len(s) >= _MIN_MASKED_LENGTH]
    located = [
        _locate(base, extra, message, at_key, issue, tree, masked, root)
        for details in error.errors(include_url=False, include_input=False)
        for base, extra, message, at_key, issue in _split(details, tree)
    ]
    located.sort(key=lambda item: (item[0].layer, item[0].line or 0, item[0].col or 0))
    return ConfigError.combine([error for _, error in located])


def _split(
    details: ErrorDetails, tree: PositionedTree
) -> Iterator[tuple[KeyPath, KeyPath, str, bool, ConfigIssue | None]]:
    """(base path, extra path, message, at_key, issue) of each mistake in one pydantic error."""
    base = _walk_loc(tree.data, details["loc"])
    found = (details.get("ctx") or {}).get("error")
    if isinstance(found, ConfigIssues):
        for issue in found.issues:
            yield base, issue.path, issue.message, issue.at_key, issue
        return
    extra, message, at_key = _describe(details)
    yield base, extra, message, at_key, found if isinstance(found, ConfigIssue) else None


def _locate(
    base: KeyPath,
    extra: KeyPath,
    message: str,
    at_key: bool,
    issue: ConfigIssue | None,
    tree: PositionedTree,
    secrets: Sequence[str],
    root: Position,
) -> tuple[Position, ConfigError]:
    path = base + extra
    position = tree.position(path, at_key=at_key, root=root)
    if issue is not None:
        # A conflict between keys is reported where the later-applied one was written.
        for other in issue.conflicts:
            candidate = tree.position(base + other, at_key=at_key, root=root)
            if candidate.layer > position.layer:
                path, position = base + other, candidate
        for other in issue.see_also:
            written = tree.position(base + other, at_key=True, root=root)
            message += f" ({'.'.join(base + other)} at {_where(written)})"
    # Belt and braces: no message may carry a secret, whatever produced it.
    return position, position.error(mask_secrets(message, secrets), path)


def _where(position: Position) -> str:
    """``FILE:LINE:COL`` of a position, as an error names its own."""
    return position.error("", ()).location


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
