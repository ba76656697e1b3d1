"""Nested dicts of arrays (Flax variables, checkpoints) and their flat path views."""

from __future__ import annotations


def flatten_paths(tree, prefix: tuple = ()) -> dict:
    """``{'a': {'b': x}}`` -> ``{('a', 'b'): x}``, the inverse of :func:`nest`."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(flatten_paths(v, (*prefix, k)))
    return out


def nest(flat: dict[tuple[str, ...], object]) -> dict:
    """``{('a','b','kernel'): x}`` -> ``{'a': {'b': {'kernel': x}}}``."""
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return tree
