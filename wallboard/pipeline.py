"""Ingest: validation, de-duplication and folding, with counts of what was refused and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from wallboard.aggregate import Aggregator, QueueLimitError
from wallboard.events import Event, EventError, parse_event

ACCEPTED, DUPLICATE, LATE = "accepted", "duplicate", "late"


class _SeenIds:
    """One source's event ids, in two generations of dedupe_size/2.

    Between half and all of the newest dedupe_size ids are remembered at any time, for a
    set add per event rather than an LRU update.
    """

    __slots__ = ("new", "old")

    def __init__(self) -> None:
        self.new: set[str] = set()
        self.old: set[str] = set()


class Pipeline:
    """The one entry point for events: sources and webhooks call `ingest`."""

    def __init__(self, aggregator: Aggregator, on_change: Callable[[], None] | None = None,
                 dedupe_size: int = 200_000) -> None:
        self.aggregator = aggregator
        self.on_change = on_change
        self._generation = max(dedupe_size // 2, 1)
        self._seen: dict[str | None, _SeenIds] = {}  # by source: ids are unique per source
        self.accepted: dict[str, int] = {}  # by source
        self.rejected: Counter[str] = Counter()  # by reason
        self.duplicates = 0
        self.late = 0

    @property
    def dedupe_ids(self) -> int:
        """How many event ids are remembered for de-duplication now."""
        return sum(len(s.new) + len(s.old) for s in self._seen.values())

    def reject(self, reason: str) -> None:
        """Count an event refused before it became an Event (bad JSON, bad field)."""
        self.rejected[reason] += 1

    def parse(self, raw: Any, source: str) -> Event:
        """Validate a decoded object; a failure is counted under its error code and re-raised."""
        try:
            return parse_event(raw, source)
        except EventError as exc:
            self.rejected[exc.code] += 1
            raise

    def ingest(self, event: Event) -> str:
        """Fold one valid event; returns accepted, duplicate or late."""
        eid, source = event.id, event.source
        if eid is not None:
            seen = self._seen.get(source)
            if seen is None:
                seen = self._seen[source] = _SeenIds()
            if eid in seen.new or eid in seen.old:
                self.duplicates += 1
                return DUPLICATE
            seen.new.add(eid)
            if len(seen.new) >= self._generation:
                seen.old, seen.new = seen.new, set()
        try:
            counted = self.aggregator.fold(event)
        except QueueLimitError as exc:
            self.rejected["queue_limit"] += 1
            raise EventError("queue", f"queue {exc} would exceed server.max_queues",
                             "queue_limit") from None
        source = source or ""
        # A plain dict: a Counter's += costs more than the rest of this method together.
        if source in self.accepted:
            self.accepted[source] += 1
        else:
            self.accepted[source] = 1
        if self.on_change is not None:
            self.on_change()
        if not counted:
            self.late += 1
            return LATE
        return ACCEPTED

    def ingest_raw(self, raw: Any, source: str) -> str:
        """Validate and fold one decoded object; raises EventError when invalid."""
        return self.ingest(self.parse(raw, source))
