"""A small harness: an aggregator on a virtual clock, fed canonical event dicts."""

from __future__ import annotations

from typing import Any

from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.kpi.snapshot import SnapshotBuilder

T0 = 1_795_000_000.0  # 2026-11-18, a Wednesday


class Engine:
    """Aggregator + pipeline + snapshot builder driven by a clock the test sets."""

    def __init__(self, config: dict[str, Any], now: float = T0) -> None:
        self.now = now
        self.settings = parse_settings(config, "<test>")
        self.aggregator = Aggregator(self.settings, clock=lambda: self.now)
        self.pipeline = Pipeline(self.aggregator)
        self.builder = SnapshotBuilder(self.aggregator)
        self._n = 0

    def send(self, event: dict[str, Any], at: float | None = None) -> str:
        """Deliver one event at server time `at` (default: max(now, event ts))."""
        self.now = max(self.now, event["ts"]) if at is None else at
        if "id" not in event:
            self._n += 1
            event = {**event, "id": f"auto-{self._n}"}
        return self.pipeline.ingest(self.pipeline.parse(event, "test"))

    def snapshot(self, at: float | None = None) -> dict[str, Any]:
        """The snapshot at `at` (default: now)."""
        if at is not None:
            self.now = at
        self.aggregator.advance(self.now)  # the hub's tick: time moves, then the read
        return self.builder.build(self.now)
