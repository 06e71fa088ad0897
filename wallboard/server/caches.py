"""In-memory caches in /metrics: each one's entries now and the bound it never passes.

Every cache the server keeps between requests or events has a bound by design (a cap, two
generations, or the configured limits); this exports each one's size beside its bound, so a
soak or an operator sees growth at a glance (docs/metrics.md, docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from wallboard.config.settings import Settings
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.state import MAX_DEPARTED
from wallboard.ingest.pipeline import Pipeline
from wallboard.kpi.history import History
from wallboard.server.families import MAX_PREFIXES
from wallboard.server.hub import Hub


class CacheCollector:
    """`wallboard_cache_entries` and `wallboard_cache_limit`, one series per cache."""

    def __init__(self, settings: Settings, hub: Hub, pipeline: Pipeline,
                 aggregator: Aggregator, history: History,
                 prefixes: Callable[[], int]) -> None:
        self.settings, self.hub, self.pipeline = settings, hub, pipeline
        self.aggregator, self.history, self.prefixes = aggregator, history, prefixes

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Per cache: (entries now, bound)."""
        server = self.settings.server
        history = self.history
        sizes = {
            "recent_event_ids": (self.pipeline.dedupe_ids, self.pipeline.dedupe_size),
            "departed_contacts": (len(self.aggregator.state.departed), MAX_DEPARTED),
            "admission_places": (self.pipeline.admission.held(),
                                 server.max_queues + server.max_teams + server.max_agents),
            "metric_prefixes": (self.prefixes(), MAX_PREFIXES),
            "history_samples": (sum(len(ring) for ring in history.samples.values()),
                                len(history.samples) * history.size),
        }
        sizes.update(self.hub.cache_sizes())
        return sizes

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        entries = GaugeMetricFamily("wallboard_cache_entries",
                                    "Entries held now in an in-memory cache", labels=["cache"])
        limits = GaugeMetricFamily("wallboard_cache_limit",
                                   "The most entries an in-memory cache holds (its bound)",
                                   labels=["cache"])
        for name, (now, bound) in sorted(self.sizes().items()):
            entries.add_metric([name], now)
            limits.add_metric([name], bound)
        yield entries
        yield limits
