"""A bounded "recently seen" set: event ids for de-duplication, departed contacts' tombstones."""

from __future__ import annotations

from collections.abc import Hashable


class Recent:
    """Between half and all of the last `size` items added, for a set add per item.

    Two generations of size/2: when the newer one fills up it becomes the older one and the
    older is dropped whole. Cheaper than an LRU update per item, and memory stays bounded.
    """

    __slots__ = ("_generation", "_newer", "_older")

    def __init__(self, size: int) -> None:
        self._generation = max(size // 2, 1)
        self._newer: set[Hashable] = set()
        self._older: set[Hashable] = set()

    def __contains__(self, item: object) -> bool:
        return item in self._newer or item in self._older

    def __len__(self) -> int:
        return len(self._newer) + len(self._older)

    def add(self, item: Hashable) -> None:
        """Remember `item` (again: it stays in the newer generation)."""
        newer = self._newer
        newer.add(item)
        if len(newer) >= self._generation:
            self._older, self._newer = newer, set()

    def first(self, item: Hashable) -> bool:
        """Remember `item`; True when it was not remembered yet (one call on per-event paths)."""
        newer = self._newer
        if item in newer or item in self._older:
            return False
        newer.add(item)  # `add`, inlined: this runs once per event
        if len(newer) >= self._generation:
            self._older, self._newer = newer, set()
        return True
