"""The layer merge against RFC 7386's own pseudo-code, with positions kept in step."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from parlant_router.config.yaml_tree import KeyPath, Position, PositionedTree, merge_patch

KEYS = st.sampled_from(["a", "b", "c", "d"])
SCALARS = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"]), st.booleans())
VALUES = st.recursive(
    st.one_of(SCALARS, st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=4)


def rfc7386(target: Any, patch: Any) -> Any:
    """MergePatch(Target, Patch) exactly as section 2 of RFC 7386 writes it."""
    if isinstance(patch, dict):
        if not isinstance(target, dict):
            target = {}
        for name, value in patch.items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = rfc7386(target.get(name), value)
        return target
    return patch


def tree_of(data: dict[str, Any], source: str) -> PositionedTree:
    """A tree whose every key is positioned, as the YAML reader produces."""
    tree = PositionedTree(data=copy.deepcopy(data))

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = [(str(i), v) for i, v in enumerate(node)]
        else:
            return
        for key, value in items:
            here = (*path, key)
            tree.keys[here] = tree.values[here] = Position(source, len(here))
            walk(value, here)

    walk(tree.data, ())
    return tree


def paths(node: Any, path: KeyPath = ()) -> set[KeyPath]:
    found: set[KeyPath] = set()
    items = (
        list(node.items())
        if isinstance(node, dict)
        else [(str(i), v) for i, v in enumerate(node)]
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        found.add((*path, key))
        found |= paths(value, (*path, key))
    return found


@settings(max_examples=100, deadline=None)
@given(st.lists(DOCUMENTS, min_size=1, max_size=4))
def test_layers_merge_as_rfc7386_and_every_key_keeps_a_position(
    layers: list[dict[str, Any]],
) -> None:
    tree = PositionedTree()
    expected: dict[str, Any] = {}
    for number, layer in enumerate(layers):
        merge_patch(tree, tree_of(layer, f"layer{number}"))
        expected = rfc7386(expected, copy.deepcopy(layer))
    assert tree.data == expected
    # No key without a position, and no position left behind for a deleted key.
    assert set(tree.keys) == paths(tree.data)
    assert set(tree.values) == paths(tree.data)


@settings(max_examples=50, deadline=None)
@given(DOCUMENTS, DOCUMENTS)
def test_a_replaced_value_points_at_the_layer_that_wrote_it(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    tree = PositionedTree()
    merge_patch(tree, tree_of(first, "first"))
    merge_patch(tree, tree_of(second, "second"))
    for path in paths(tree.data):
        value: Any = second
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            # Set by the second layer as a whole: it and everything below come from there.
            assert tree.values[path].source == "second"
