"""Ingest: validation, de-duplication and folding, with counts of what was refused and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from wallboard.aggregate import Aggregator, QueueLimitError
from wallboard.events import Event, EventError, parse_event

ACCEPTED, DUPLICATE, LATE = "accepted", "duplicate", "late"


class Pipeline:
    """The one entry point for events: sources and webhooks call `ingest`."""

    def __init__(self, aggregator: Aggregator, on_change: Callable[[], None] = lambda: None,
                 dedupe_size: int = 200_000) -> None:
        self.aggregator = aggregator
        self.on_change = on_change
        # Two generations of dedupe_size/2 ids: between half and all of the newest dedupe_size
        # ids are remembered at any time, for a set add per event rather than an LRU update.
        self._generation = max(dedupe_size // 2, 1)
        self._seen: set[tuple[str | None, str]] = set()
        self._older: set[tuple[str | None, str]] = set()
        self.accepted: Counter[str] = Counter()  # by source
        self.rejected: Counter[str] = Counter()  # by reason
        self.duplicates = 0
        self.late = 0

    @property
    def dedupe_ids(self) -> int:
        """How many event ids are remembered for de-duplication now."""
        return len(self._seen) + len(self._older)

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
        if event.id is not None:
            key = (event.source, event.id)
            seen = self._seen
            if key in seen or key in self._older:
                self.duplicates += 1
                return DUPLICATE
            seen.add(key)
            if len(seen) >= self._generation:
                self._older, self._seen = seen, set()
        try:
            counted = self.aggregator.fold(event)
        except QueueLimitError as exc:
            self.rejected["queue_limit"] += 1
            raise EventError("queue", f"queue {exc} would exceed server.max_queues",
                             "queue_limit") from None
        self.accepted[event.source or ""] += 1
        self.on_change()
        if not counted:
            self.late += 1
            return LATE
        return ACCEPTED

    def ingest_raw(self, raw: Any, source: str) -> str:
        """Validate and fold one decoded object; raises EventError when invalid."""
        return self.ingest(self.parse(raw, source))
