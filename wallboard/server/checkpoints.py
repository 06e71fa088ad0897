"""Checkpoints in /metrics: loads at start by result, the loaded one's age, writes and pauses."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wallboard.ingest.checkpointer import LOAD_RESULTS, CheckpointStats


class CheckpointCollector:
    """Prometheus view of the journal's checkpoints (memory only)."""

    def __init__(self, stats: CheckpointStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        stats = self.stats
        loads = CounterMetricFamily(
            "wallboard_checkpoint_loads",
            "Checkpoints considered at start, by result: loaded, or why one was passed over "
            "(missing: none stored; corrupt, version, fingerprint, stale, unreadable)",
            labels=["result"])
        for result in LOAD_RESULTS:
            loads.add_metric([result], stats.loads[result])
        yield loads
        yield GaugeMetricFamily(
            "wallboard_checkpoint_loaded_age_seconds",
            "Age of the checkpoint the start loaded, when it loaded it (NaN: none)",
            value=float("nan") if stats.loaded_age_s is None else stats.loaded_age_s)
        yield CounterMetricFamily("wallboard_checkpoint_saves",
                                  "Checkpoints written since start", value=stats.saves)
        yield CounterMetricFamily("wallboard_checkpoint_save_failures",
                                  "Checkpoints that could not be taken or written",
                                  value=stats.save_failures)
        yield GaugeMetricFamily("wallboard_checkpoint_bytes",
                                "Size of the newest checkpoint written", value=stats.last_bytes)
        yield GaugeMetricFamily(
            "wallboard_checkpoint_pause_seconds",
            "How long taking the newest checkpoint held the event loop", value=stats.last_pause_s)
