"""Memory accounting for the fold benchmark: deep object sizes and window rings."""

from __future__ import annotations

import sys
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from wallboard.fold.aggregate import Aggregator


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by `obj` and everything it references (shared config and zones excluded)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, ZoneInfo | BaseModel | type):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in obj)
    else:
        if hasattr(obj, "__dict__"):
            size += deep_size(vars(obj), seen)
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    size += deep_size(getattr(obj, name), seen)
    return size


def rings_of(obj: Any, depth: int = 3) -> list[Any]:
    """Bucket rings (objects with `slots` and `ring_len`) reachable from `obj`."""
    if hasattr(obj, "slots") and hasattr(obj, "ring_len"):
        return [obj]
    if depth == 0 or isinstance(obj, str | bytes | int | float | ZoneInfo | BaseModel):
        return []
    if isinstance(obj, dict):
        children: list[Any] = list(obj.values())
    elif isinstance(obj, list | tuple):
        children = list(obj)
    else:
        names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
        children = [getattr(obj, n) for n in names if hasattr(obj, n)]
        children += list(getattr(obj, "__dict__", {}).values())
    return [ring for child in children for ring in rings_of(child, depth - 1)]


def window_memory(aggregator: Aggregator) -> dict[str, dict[str, int]]:
    """Per queue: leaves, allocated ring buckets (of the rings' length) and bytes of windows."""
    out: dict[str, dict[str, int]] = {}
    for (queue, _channel), leaf in aggregator.leaves.items():
        row = out.setdefault(queue or "<unassigned>",
                             {"leaves": 0, "buckets": 0, "ring_len": 0, "bytes": 0})
        row["leaves"] += 1
        for ring in rings_of(leaf):
            row["buckets"] += sum(b is not None for b in ring.slots)
            row["ring_len"] += ring.ring_len
        row["bytes"] += deep_size(leaf)
    return out


def parts(obj: Any) -> dict[str, dict[str, int]]:
    """Length and bytes of each container attribute of `obj` (what a structure holds)."""
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    names += list(getattr(obj, "__dict__", {}))
    out = {}
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, dict | list | set | tuple):
            out[name] = {"len": len(value), "bytes": deep_size(value)}
    return out
