"""YAML read into plain data that remembers where every key and value was written.

A `PositionedTree` is the data of one config layer (or of all of them merged) plus the
`Position` of each key and value, by key path, so that an error about any key can name
the file, line and column that set it. `parse_yaml` builds one from YAML text, with
located errors that never quote the text (the line may hold a secret); `merge_patch`
applies one layer over another as an RFC 7386 merge patch, positions included.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from parlant_router.errors import ConfigError

KeyPath = tuple[str, ...]
"""A key's path from the root: mapping keys, and list indexes as strings."""

# Deeper than any real config: only a recursive alias gets there.
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Position:
    """Where a key or value was written: a file (with line and column) or a `--set`."""

    source: str
    line: int | None = None
    col: int | None = None
    layer: int = 0
    """Precedence of the layer that wrote it (higher: applied later)."""

    def error(self, message: str, path: KeyPath) -> ConfigError:
        """A `ConfigError` about the key at `path`, located here."""
        return ConfigError(
            message, file=self.source, line=self.line, col=self.col, key=".".join(path) or None
        )


@dataclass
class PositionedTree:
    """Plain data plus the position of every key and value in it, by key path."""

    data: dict[str, Any] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)

    def sub(self, prefix: KeyPath) -> PositionedTree:
        """The subtree at `prefix` (a mapping), its paths relative to it."""
        data: Any = self.data
        for key in prefix:
            data = data[key]
        n = len(prefix)
        return PositionedTree(
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

    def take(self, other: PositionedTree, path: KeyPath, *, below: bool) -> None:
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

    def error_at(self, path: KeyPath, message: str, root: Position) -> ConfigError:
        """A `ConfigError` about the value at `path`, located where it was written."""
        return self.position(path, at_key=False, root=root).error(message, path)


def merge_patch(target: PositionedTree, patch: PositionedTree) -> None:
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


def parse_yaml(text: str, source: str) -> PositionedTree:
    """Compose `text` keeping positions; duplicate keys and non-mapping roots are errors.

    `source` names the text in errors (a path as the user wrote it). Raises `ConfigError`.
    """
    tree = PositionedTree()
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


def _build(
    node: yaml.Node, path: KeyPath, tree: PositionedTree, loader: yaml.SafeLoader, source: str
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
            raise key_position.error(
                "YAML merge keys ('<<') are not supported; use environments instead", path
            )
        if not isinstance(key_node, yaml.ScalarNode):
            raise key_position.error("keys must be plain scalars", path)
        key = str(key_node.value)
        here = (*path, key)
        if key in mapping:
            first = tree.keys[here]
            raise key_position.error(f"duplicate key (first set at line {first.line})", here)
        tree.keys[here] = key_position
        # A scalar's error points at the value; a block's at its key.
        tree.values[here] = (
            _mark_position(source, value_node.start_mark)
            if isinstance(value_node, yaml.ScalarNode) or value_node.flow_style
            else key_position
        )
        mapping[key] = _build(value_node, here, tree, loader, source)
    return mapping
