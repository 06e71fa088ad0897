"""A board's scope: the exact snapshot paths its TV may receive, matched segment by segment."""

from __future__ import annotations

from typing import Any

# Paths into the snapshot tree, e.g. ("queues", "sales") or ("trend", "total.today.waiting"):
# a queue named "sales.tenant-b" is the segment "sales.tenant-b", never under ("queues", "sales").
Path = tuple[str, ...]
Scope = tuple[Path, ...]

_ALL = None  # trie leaf: the whole subtree is in scope


def _trie(scope: Scope) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in scope:
        node = root
        for segment in path[:-1]:
            child: dict[str, Any] | None = node.setdefault(segment, {})
            if child is None:  # _ALL: a shorter path already covers this one
                break
            node = child
        else:
            if path:
                node[path[-1]] = _ALL
    return root


def _prune(tree: dict[str, Any], trie: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in trie.items():
        if key not in tree:
            continue
        value = tree[key]
        if sub is _ALL:
            out[key] = value
        elif isinstance(value, dict):
            inner = _prune(value, sub)
            if inner:
                out[key] = inner
    return out


def scoped_tree(tree: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The part of a snapshot tree under the scope's paths, by exact keys (shared subtrees)."""
    return _prune(tree, _trie(scope))

